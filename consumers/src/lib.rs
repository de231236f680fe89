//! order-consumer: the consumer-group worker engine and the order projection.
//!
//! Records are scheduled per key (records of one order in offset order, different
//! orders concurrently), applied in batched PostgreSQL transactions that write the
//! dedup row and the effect together, dead-lettered when they cannot be processed,
//! and committed only up to the first record that is not done.

pub mod assignment;
pub mod back_pressure;
pub mod circuit_breaker;
pub mod config;
pub mod dead_letter;
pub mod dead_letter_ledger;
pub mod dedup_retention;
pub mod dedup_store;
pub mod dispatch;
pub mod effect_batch;
pub mod engine;
pub mod engine_state;
pub mod error;
pub mod event_decoder;
pub mod group_protocol;
pub mod key_scheduler;
pub mod metrics;
pub mod offset_tracker;
pub mod processing;
pub mod projection;
pub mod rebalance;
pub mod retry;
pub mod summary;

pub use config::ConsumerArgs;
pub use engine::{EngineDeps, EngineSettings, run};
pub use error::{Error, Result};
pub use summary::Summary;
