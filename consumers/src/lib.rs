//! order-consumer: the consumer-group worker engine and the order projection.
//!
//! Records are scheduled per key (records of one order in offset order, different
//! orders concurrently), applied in batched PostgreSQL transactions that write the
//! dedup row and the effect together, dead-lettered when they cannot be processed,
//! and committed only up to the first record that is not done.
//!
//! # A record's trip from poll to commit
//!
//! 1. [`engine`] polls it from the consumer (the poll loop) and hands it on.
//! 2. [`partitions`] registers its offset under its partition's epoch (the
//!    assignment and its offset tracker): from now on it holds the commit back.
//! 3. [`scheduling`] queues it behind the earlier records of its key; dispatch
//!    hands it to a worker in a batch, with the later records of its key there.
//! 4. [`worker`] decodes it, applies the batch in one transaction and judges what
//!    failed (retry with backoff, the database's circuit breaker, attempts).
//! 5. [`store`] writes the dedup row and the order projection in that transaction
//!    (or the dead-letter ledger's row for a record that cannot be processed).
//! 6. [`dead_letter`] writes it to the dead-letter topic, only if it is poison.
//! 7. Marked done, its offset becomes committable; the engine's commit cycle sends
//!    the first offset not done ([`engine::commits`]), and a revoke or shutdown
//!    releases the partition the same way.
//!
//! The subsystems depend downwards only: `engine` → `worker` → `scheduling` →
//! `partitions`, and `worker` → `dead_letter`, `store`. [`config`] turns flags into
//! the engine's settings; [`metrics`] and [`error`] are shared by all.

pub(crate) mod config;
pub mod dead_letter;
pub mod engine;
pub mod error;
pub(crate) mod metrics;
pub(crate) mod partitions;
pub(crate) mod scheduling;
pub mod store;
pub mod worker;

pub use config::ConsumerArgs;
pub use engine::summary::Summary;
pub use engine::{EngineDeps, EngineSettings, run};
pub use error::{Error, Result};
pub use partitions::group_protocol::GroupProtocol;
pub use scheduling::Ordering;
pub use store::MIGRATOR;
pub use worker::decode::{DecodeFailure, EventDecoder};
