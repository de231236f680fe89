//! The `registry_subject_versions` table: which schema is version N of a subject.

use sqlx::{PgConnection, PgExecutor};

use crate::error::Result;

/// One version of a subject, joined with its schema.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VersionRow {
    /// Version number within the subject, from 1.
    pub version: i32,
    /// Global schema id.
    pub schema_id: i32,
    /// `AVRO`.
    pub schema_type: String,
    /// The schema text.
    pub schema_text: String,
}

/// Which version of a subject to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSelector {
    /// The highest live version.
    Latest,
    /// A given version number.
    Number(i32),
}

/// `SELECT` of [`VersionRow`] columns followed by `$tail` (a literal), as one static string.
macro_rules! select_versions {
    ($tail:literal) => {
        concat!(
            "SELECT v.version, v.schema_id, s.schema_type, s.schema_text
             FROM registry_subject_versions v JOIN registry_schemas s ON s.id = v.schema_id ",
            $tail
        )
    };
}

/// Serialises registrations under one subject until the transaction ends, so version
/// numbers are assigned one at a time and the compatibility check sees the latest state.
pub async fn lock_subject(db: &mut PgConnection, subject: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7741))")
        .bind(subject)
        .execute(db)
        .await?;
    Ok(())
}

/// Live (not soft-deleted) versions of `subject`, oldest first.
pub async fn live(db: impl PgExecutor<'_>, subject: &str) -> Result<Vec<VersionRow>> {
    let rows = sqlx::query_as(select_versions!(
        "WHERE v.subject = $1 AND NOT v.deleted ORDER BY v.version"
    ))
    .bind(subject)
    .fetch_all(db)
    .await?;
    Ok(rows)
}

/// Version numbers of `subject`, oldest first; soft-deleted ones only if `include_deleted`.
pub async fn numbers(
    db: impl PgExecutor<'_>,
    subject: &str,
    include_deleted: bool,
) -> Result<Vec<i32>> {
    let numbers = sqlx::query_scalar(
        "SELECT version FROM registry_subject_versions
         WHERE subject = $1 AND ($2 OR NOT deleted) ORDER BY version",
    )
    .bind(subject)
    .bind(include_deleted)
    .fetch_all(db)
    .await?;
    Ok(numbers)
}

/// One version of `subject`; soft-deleted ones only if `include_deleted`.
pub async fn one(
    db: impl PgExecutor<'_>,
    subject: &str,
    selector: VersionSelector,
    include_deleted: bool,
) -> Result<Option<VersionRow>> {
    let number = match selector {
        VersionSelector::Latest => None,
        VersionSelector::Number(n) => Some(n),
    };
    let row = sqlx::query_as(select_versions!(
        "WHERE v.subject = $1 AND ($2 OR NOT v.deleted)
           AND ($3::int4 IS NULL OR v.version = $3)
         ORDER BY v.version DESC LIMIT 1"
    ))
    .bind(subject)
    .bind(include_deleted)
    .bind(number)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// The live version of `subject` that holds schema `schema_id`, if any.
pub async fn live_version_of_schema(
    db: impl PgExecutor<'_>,
    subject: &str,
    schema_id: i32,
) -> Result<Option<VersionRow>> {
    let row = sqlx::query_as(select_versions!(
        "WHERE v.subject = $1 AND v.schema_id = $2 AND NOT v.deleted"
    ))
    .bind(subject)
    .bind(schema_id)
    .fetch_optional(db)
    .await?;
    Ok(row)
}

/// Adds the next version of `subject` (one past every version ever used, soft-deleted
/// ones included, as Confluent numbers them). Call under [`lock_subject`].
pub async fn insert_next(db: &mut PgConnection, subject: &str, schema_id: i32) -> Result<i32> {
    let version = sqlx::query_scalar(
        "INSERT INTO registry_subject_versions (subject, version, schema_id)
         SELECT $1, COALESCE(MAX(version), 0) + 1, $2
         FROM registry_subject_versions WHERE subject = $1
         RETURNING version",
    )
    .bind(subject)
    .bind(schema_id)
    .fetch_one(db)
    .await?;
    Ok(version)
}

/// Subjects with at least one live version (or any version if `include_deleted`), sorted.
pub async fn subjects(db: impl PgExecutor<'_>, include_deleted: bool) -> Result<Vec<String>> {
    let subjects = sqlx::query_scalar(
        "SELECT DISTINCT subject FROM registry_subject_versions
         WHERE $1 OR NOT deleted ORDER BY subject",
    )
    .bind(include_deleted)
    .fetch_all(db)
    .await?;
    Ok(subjects)
}

/// (subject, version) pairs holding schema `schema_id`, sorted.
pub async fn of_schema(
    db: impl PgExecutor<'_>,
    schema_id: i32,
    include_deleted: bool,
) -> Result<Vec<(String, i32)>> {
    let pairs = sqlx::query_as(
        "SELECT subject, version FROM registry_subject_versions
         WHERE schema_id = $1 AND ($2 OR NOT deleted) ORDER BY subject, version",
    )
    .bind(schema_id)
    .bind(include_deleted)
    .fetch_all(db)
    .await?;
    Ok(pairs)
}

/// Marks every live version of `subject` deleted; returns their numbers.
pub async fn soft_delete(db: impl PgExecutor<'_>, subject: &str) -> Result<Vec<i32>> {
    let mut numbers: Vec<i32> = sqlx::query_scalar(
        "UPDATE registry_subject_versions SET deleted = true
         WHERE subject = $1 AND NOT deleted RETURNING version",
    )
    .bind(subject)
    .fetch_all(db)
    .await?;
    numbers.sort_unstable();
    Ok(numbers)
}

/// Removes every version of `subject`; returns their numbers. Schemas stay, so their ids
/// remain stable if registered again.
pub async fn hard_delete(db: impl PgExecutor<'_>, subject: &str) -> Result<Vec<i32>> {
    let mut numbers: Vec<i32> = sqlx::query_scalar(
        "DELETE FROM registry_subject_versions WHERE subject = $1 RETURNING version",
    )
    .bind(subject)
    .fetch_all(db)
    .await?;
    numbers.sort_unstable();
    Ok(numbers)
}

impl std::str::FromStr for VersionSelector {
    type Err = crate::error::RegistryError;

    /// `latest`, `-1` (Confluent's alias of latest) or a version in `1..=2^31-1`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "latest" | "-1" => Ok(Self::Latest),
            _ => match text.parse::<i32>() {
                Ok(n) if n > 0 => Ok(Self::Number(n)),
                _ => Err(crate::error::RegistryError::InvalidVersion(
                    text.to_string(),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::VersionSelector;

    #[test]
    fn version_selectors_parse_like_confluent() {
        assert_eq!(
            "latest".parse::<VersionSelector>().unwrap(),
            VersionSelector::Latest
        );
        assert_eq!(
            "-1".parse::<VersionSelector>().unwrap(),
            VersionSelector::Latest
        );
        assert_eq!(
            "7".parse::<VersionSelector>().unwrap(),
            VersionSelector::Number(7)
        );
        for bad in ["0", "-2", "abc", "2147483648", ""] {
            let err = bad.parse::<VersionSelector>().unwrap_err();
            assert_eq!(err.error_code(), 42202, "{bad}");
        }
    }
}
