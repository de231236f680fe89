//! The order service's schema and migrations.
//!
//! Its tables live in the PostgreSQL schema [`SCHEMA`] and its migration history in
//! `order_service._sqlx_migrations`, so one database can also host the consumer, whose
//! tables (its own `orders` projection among them) and history stay in `public`.

use sqlx::migrate::Migrator;

/// The PostgreSQL schema holding the service's tables; the SQL names it explicitly.
pub const SCHEMA: &str = "order_service";

/// The service's migration history, apart from any other service's in the same database.
const MIGRATIONS_TABLE: &str = "order_service._sqlx_migrations";

/// The migrations as embedded (`crates/outbox/migrations`); use [`migrator`] to run them.
static EMBEDDED: Migrator = sqlx::migrate!("./migrations");

/// The migrator of the service's database: creates [`SCHEMA`] and records the applied
/// versions in the schema's own table.
pub fn migrator() -> Migrator {
    let mut migrator = Migrator::with_migrations(EMBEDDED.iter().cloned().collect());
    migrator.create_schema(SCHEMA);
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
}
