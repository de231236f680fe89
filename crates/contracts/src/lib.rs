//! The contracts between orderflow's producers, consumers and tools, each written once:
//! a renamed header or topic rule changes here and every reader and writer follows.
//!
//! - [`record`]: the key and headers of an order event record.
//! - [`dead_letter`]: the dead-letter topic's name and the `dlq-*` headers, with the
//!   typed [`DeadLetterHeaders`](dead_letter::DeadLetterHeaders) reader and writer.
//! - [`produce_error`]: which Kafka produce errors retrying can help.
//!
//! The crate is small on purpose (rdkafka and chrono only): the lag engine and the ops
//! CLI read dead-letter headers without compiling the Avro codec or the consumer engine.

pub mod dead_letter;
pub mod produce_error;
pub mod record;
