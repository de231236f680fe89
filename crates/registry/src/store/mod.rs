//! PostgreSQL storage of schemas, subject versions and compatibility settings.
//!
//! Each submodule owns one table and holds its queries. Functions take any executor so
//! the registration path can run them inside one transaction.

pub mod config;
pub mod schemas;
pub mod versions;

use sqlx::PgPool;

use crate::error::Result;

/// Creates or upgrades the registry tables (migrations embedded at compile time).
pub async fn migrate(pool: &PgPool) -> Result<()> {
    sqlx::migrate!("./migrations").run(pool).await?;
    Ok(())
}
