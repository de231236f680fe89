//! order-producer: writes order events to Kafka.
//!
//! `order-producer serve` is the HTTP order service with a transactional outbox and its
//! relay ([`order_service`]).
//!
//! `order-producer generate` is the load generator: realistic, seeded order
//! lifecycles as Confluent-framed Avro, keyed by order id, partitioned like the Java
//! client, with optional duplicates and poison records for exercising consumers.
//! The pieces are library modules so tests and benchmarks drive them without a process.

pub mod delivery;
pub mod error;
pub mod generate;
pub mod generate_args;
pub mod lifecycle;
pub mod metrics;
pub mod order_service;
pub mod partition;
pub mod poison;
pub mod producer_settings;
pub mod progress;
pub mod rate_limit;
pub mod summary;
pub mod topic_check;
pub mod trace_context;

pub use error::{ProducerError, Result};
pub use generate::{generate, run_command};
pub use generate_args::GenerateArgs;
pub use partition::{murmur2, partition_for_key};
pub use summary::Summary;
