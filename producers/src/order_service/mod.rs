//! `order-producer serve`: the HTTP order service with a transactional outbox.
//!
//! A request changes an order row and inserts the resulting event into the `outbox`
//! table in one PostgreSQL transaction ([`store::order_store`]). The event is encoded as the
//! final Kafka record value (Confluent-framed Avro) at that moment. The [`relay`], a
//! background task of the same process, publishes unsent outbox rows with the idempotent
//! producer and marks them sent only after the broker acknowledged them, so an order
//! event is on the topic if and only if its order change committed (at least once; the
//! `event_id` lets consumers drop the rare duplicate after a crash between ack and mark).

pub(crate) mod database_readiness;
pub mod housekeeping;
pub mod http;
pub(crate) mod outbox_wake;
pub(crate) mod relay;
pub(crate) mod relay_guarantee;
pub(crate) mod relay_health;
pub(crate) mod relay_ownership;
pub(crate) mod relay_slot;
pub mod serve_args;
pub(crate) mod service;
pub mod service_error;
pub(crate) mod store;

pub use serve_args::ServeArgs;
pub use service::{RunningService, start};
pub use service_error::{ServiceError, ServiceResult};
