//! Shared runtime pieces of every orderflow binary: Kafka client settings, the shutdown
//! tree, the metrics and health HTTP server, backoff, logging, database connections.

pub mod backoff;
pub mod bounded_read;
pub mod client_properties;
pub mod db;
pub mod db_migration;
mod error;
pub mod example_secrets;
pub mod kafka;
pub mod ops_server;
pub mod partitioner;
pub mod shutdown;
pub mod telemetry;

pub use error::{Error, Result};
