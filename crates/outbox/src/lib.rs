//! orderflow-outbox: the order service's transactional outbox.
//!
//! The order service writes an order change and its event into the `outbox` table in one
//! PostgreSQL transaction; the relay publishes the rows to Kafka and marks them sent; the
//! ops CLI (`orderflow outbox`) and the chaos harness read and repair them. All of them
//! reach the table through this crate, so its SQL and its state rules live in one place:
//!
//! - [`schema`]: the service's PostgreSQL schema and its migrations (the `orders` table
//!   shares the outbox's first migration, so the whole schema migrates here);
//! - [`queries`]: every statement run on the outbox (SQL in `sql/`);
//! - [`database_url`]: how the service and the CLI find the service's database.

pub mod database_url;
pub mod queries;
pub mod schema;

pub use queries::{NewOutboxRow, OutboxEntry, OutboxRow, Unsent};
