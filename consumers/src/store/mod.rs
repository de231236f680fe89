//! The store: the consumer's PostgreSQL database. The dedup table and the order
//! projection (written together in one transaction), the dead-letter ledger, the
//! deletion of expired dedup rows, the migrations of the whole database, and the
//! rules that tell a database-wide failure from a record's own.

pub(crate) mod db_error;
pub(crate) mod dead_letter_ledger;
pub mod dedup_retention;
pub mod dedup_store;
pub mod projection;

/// Embedded migrations of the consumer's database (processed_events, orders,
/// dead_lettered).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
