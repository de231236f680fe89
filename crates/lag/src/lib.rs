//! Consumer lag of every group: offsets, lag in records and seconds, rates, catch-up
//! time and a Burrow-like status per partition and group; the Prometheus exporter and
//! the built-in dashboard that serve them.
//!
//! [`LagEngine::poll`] runs one cycle and returns a [`Snapshot`]; [`serve::run`] polls
//! in the background and serves `/metrics`, `/api/*` and the dashboard.

pub mod aggregate;
pub mod compute;
pub mod config;
pub mod engine;
mod error;
pub mod history;
pub mod kafka;
pub mod metrics;
pub mod model;
pub mod produce_timeline;
pub mod serve;
pub mod state;
pub mod table;
pub mod web;
pub mod window;

pub use config::EngineConfig;
pub use engine::LagEngine;
pub use error::{LagError, Result};
pub use model::{GroupLag, PartitionLag, Snapshot, Status};
