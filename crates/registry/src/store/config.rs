//! The `registry_config` table: compatibility level, global and per subject.

use sqlx::PgExecutor;

use crate::compatibility::CompatibilityLevel;
use crate::error::Result;

/// Key of the global row (the REST API cannot address an empty subject).
const GLOBAL: &str = "";

/// The level set for `subject`, or the global one when `subject` is `None`.
pub async fn get(
    db: impl PgExecutor<'_>,
    subject: Option<&str>,
) -> Result<Option<CompatibilityLevel>> {
    let level: Option<String> =
        sqlx::query_scalar("SELECT compatibility FROM registry_config WHERE subject = $1")
            .bind(subject.unwrap_or(GLOBAL))
            .fetch_optional(db)
            .await?;
    // The table's CHECK constraint only admits valid names.
    Ok(level.and_then(|name| name.parse().ok()))
}

/// Sets the level of `subject`, or the global one when `subject` is `None`.
pub async fn set(
    db: impl PgExecutor<'_>,
    subject: Option<&str>,
    level: CompatibilityLevel,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO registry_config (subject, compatibility) VALUES ($1, $2)
         ON CONFLICT (subject) DO UPDATE SET compatibility = EXCLUDED.compatibility",
    )
    .bind(subject.unwrap_or(GLOBAL))
    .bind(level.as_str())
    .execute(db)
    .await?;
    Ok(())
}

/// Removes the level of `subject` (or the global one); returns what was set.
pub async fn delete(
    db: impl PgExecutor<'_>,
    subject: Option<&str>,
) -> Result<Option<CompatibilityLevel>> {
    let level: Option<String> = sqlx::query_scalar(
        "DELETE FROM registry_config WHERE subject = $1 RETURNING compatibility",
    )
    .bind(subject.unwrap_or(GLOBAL))
    .fetch_optional(db)
    .await?;
    Ok(level.and_then(|name| name.parse().ok()))
}
