//! Migrating a service's database with its own migration role, so the service can run as a
//! role that cannot change the schema.
//!
//! Each service has two PostgreSQL roles (docs/security.md, `deploy/postgres/service-roles.sql`):
//!
//! - the **migration role** owns the service's database objects and runs its migrations;
//!   the service reaches it through its migration URL (`--database-migration-url`) at
//!   start-up only, and closes that connection once migrated;
//! - the **runtime role** (the ordinary `--database-url`) reads and writes rows. It owns
//!   nothing, so it cannot create, alter or drop tables, and it is granted nothing on
//!   another service's tables.
//!
//! After migrating, [`migrate`] grants the runtime role exactly what the service needs on
//! what the migration role owns in the service's schema: `USAGE` on the schema,
//! `SELECT, INSERT, UPDATE, DELETE` on its tables (not on the migration history) and
//! `USAGE, SELECT` on its sequences. The grants are made again at every start, so the
//! tables a new migration adds are covered. Without a migration URL (one admin URL, as
//! the tests and a laptop use) the runtime URL migrates, as before, and nothing is granted.

use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{PgConnection, PgPool};
use thiserror::Error;

/// The name of sqlx's migration history table in each service's schema.
const HISTORY_TABLE: &str = "_sqlx_migrations";

/// Prefix of the advisory lock (per schema) that the runtime role's grants are made under.
const GRANT_LOCK_PREFIX: &str = "orderflow.grant_runtime_privileges/";

/// Why a service's database could not be migrated.
#[derive(Debug, Error)]
pub enum MigrationError {
    /// The migration URL could not be used.
    #[error("database migration URL: {0}")]
    Connect(#[from] crate::Error),
    /// A migration failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] MigrateError),
    /// The runtime role could not be granted its privileges.
    #[error("granting the runtime role {role:?} its privileges on schema {schema}: {source}")]
    Grant {
        /// The runtime role.
        role: String,
        /// The service's schema.
        schema: String,
        /// What PostgreSQL said.
        #[source]
        source: sqlx::Error,
    },
    /// Reading the runtime role's name failed.
    #[error("reading the runtime role: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where and how a service's database is migrated.
#[derive(Debug, Clone, Copy)]
pub struct MigrationTarget<'a> {
    /// The migration role's URL; `None` migrates through the runtime pool.
    pub migration_url: Option<&'a str>,
    /// The PostgreSQL schema holding the service's tables (`public` for the consumer).
    pub schema: &'a str,
    /// How long to keep retrying an unreachable migration URL.
    pub connect_deadline: Duration,
}

/// Runs `migrator` as the migration role and grants the runtime role (the user of
/// `runtime`) what it needs on the schema's tables; see the module documentation.
pub async fn migrate(
    migrator: &Migrator,
    runtime: &PgPool,
    target: MigrationTarget<'_>,
) -> Result<(), MigrationError> {
    let Some(url) = target.migration_url.filter(|url| !url.trim().is_empty()) else {
        migrator.run(runtime).await?;
        return Ok(());
    };
    let owner = crate::db::connect(url, 1, target.connect_deadline).await?;
    let migrated = async {
        migrator.run(&owner).await?;
        let runtime_role: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(runtime)
            .await?;
        let mut conn = owner.acquire().await?;
        let owner_role: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&mut *conn)
            .await?;
        if owner_role != runtime_role {
            grant_runtime_privileges(&mut conn, target.schema, &runtime_role)
                .await
                .map_err(|source| MigrationError::Grant {
                    role: runtime_role.clone(),
                    schema: target.schema.to_string(),
                    source,
                })?;
            tracing::info!(
                schema = target.schema,
                migration_role = %owner_role,
                runtime_role = %runtime_role,
                "database migrated by the migration role; runtime role granted row access"
            );
        }
        Ok::<_, MigrationError>(())
    }
    .await;
    owner.close().await;
    migrated
}

/// Grants `role` row access to the tables and sequences the current user owns in
/// `schema` (the migration history excepted), in one transaction.
async fn grant_runtime_privileges(
    conn: &mut PgConnection,
    schema: &str,
    role: &str,
) -> sqlx::Result<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
           AND c.relname <> $2
         ORDER BY 1",
    )
    .bind(schema)
    .bind(HISTORY_TABLE)
    .fetch_all(&mut *conn)
    .await?;
    let sequences: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind = 'S' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
         ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&mut *conn)
    .await?;
    let (schema_id, role_id) = (quote_ident(schema), quote_ident(role));
    let mut statements = vec![format!("GRANT USAGE ON SCHEMA {schema_id} TO {role_id}")];
    statements.extend(tables.iter().map(|table| {
        format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {schema_id}.{} TO {role_id}",
            quote_ident(table)
        )
    }));
    statements.extend(sequences.iter().map(|sequence| {
        format!(
            "GRANT USAGE, SELECT ON SEQUENCE {schema_id}.{} TO {role_id}",
            quote_ident(sequence)
        )
    }));
    // Replicas starting together grant at the same moment, and PostgreSQL refuses a
    // GRANT whose catalog row another transaction is changing ("tuple concurrently
    // updated"): one lock per schema makes them take turns.
    let lock = format!(
        "SELECT pg_advisory_xact_lock(hashtextextended({}, 0))",
        quote_literal(&format!("{GRANT_LOCK_PREFIX}{schema}"))
    );
    let script = format!("BEGIN; {lock}; {}; COMMIT;", statements.join("; "));
    sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `text` as a PostgreSQL string literal: in single quotes, inner quotes doubled.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `name` as a PostgreSQL identifier: in double quotes, inner quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("order_service"), "\"order_service\"");
        assert_eq!(quote_ident("a\"; DROP"), "\"a\"\"; DROP\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
