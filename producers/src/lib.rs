//! order-producer: writes order events to Kafka.
//!
//! `order-producer serve` is the HTTP order service with a transactional outbox and its
//! relay ([`order_service`]: `http` calls `store`, the relay reads the outbox through
//! `orderflow_outbox`).
//!
//! `order-producer generate` is the load generator ([`generator`]). The modules at this
//! level are what both share: the producer's settings, partitioning, the topic check,
//! trace context and metrics. The pieces are library modules so tests and benchmarks
//! drive them without a process.

pub mod cli;
pub mod generator;
pub mod metrics;
pub mod order_service;
pub mod partition;
pub mod producer_settings;
pub(crate) mod publish_span;
pub(crate) mod topic_check;
pub mod trace_context;

pub use generator::{GenerateArgs, ProducerError, Result, Summary, generate, run_command};
pub use partition::{murmur2, partition_for_key};
