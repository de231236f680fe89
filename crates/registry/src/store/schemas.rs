//! The `registry_schemas` table: one row per distinct schema, ids global and stable.

use sqlx::{PgConnection, PgExecutor};

use crate::error::Result;

/// A stored schema.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSchema {
    /// Global schema id.
    pub id: i32,
    /// `AVRO`.
    pub schema_type: String,
    /// The schema text as first registered.
    pub schema_text: String,
}

/// The id of the schema whose normalized form is `normalized`, if it was ever stored.
pub async fn find_id(
    db: impl PgExecutor<'_>,
    schema_type: &str,
    normalized: &str,
) -> Result<Option<i32>> {
    let id = sqlx::query_scalar(
        "SELECT id FROM registry_schemas
         WHERE schema_type = $1
           AND fingerprint = sha256(convert_to($2, 'UTF8'))
           AND normalized = $2",
    )
    .bind(schema_type)
    .bind(normalized)
    .fetch_optional(db)
    .await?;
    Ok(id)
}

/// The id of the schema, inserting it first if it is new. Concurrent callers with the
/// same schema get the same id: the unique fingerprint makes the loser's insert a no-op
/// that waits for the winner's commit, after which the select sees the winner's row.
pub async fn get_or_insert(
    db: &mut PgConnection,
    schema_type: &str,
    normalized: &str,
    schema_text: &str,
) -> Result<i32> {
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO registry_schemas (schema_type, normalized, fingerprint, schema_text)
         VALUES ($1, $2, sha256(convert_to($2, 'UTF8')), $3)
         ON CONFLICT (schema_type, fingerprint) DO NOTHING
         RETURNING id",
    )
    .bind(schema_type)
    .bind(normalized)
    .bind(schema_text)
    .fetch_optional(&mut *db)
    .await?;
    match inserted {
        Some(id) => Ok(id),
        None => find_id(&mut *db, schema_type, normalized)
            .await?
            .ok_or_else(|| {
                // Only a sha256 collision between two different schemas gets here.
                sqlx::Error::Protocol(format!("schema fingerprint collision for {normalized}"))
                    .into()
            }),
    }
}

/// The schema with this id. Unless `include_deleted`, only schemas that are live under
/// at least one subject are visible, as in Confluent's registry.
pub async fn by_id(
    db: impl PgExecutor<'_>,
    id: i32,
    include_deleted: bool,
) -> Result<Option<StoredSchema>> {
    let row = sqlx::query_as(
        "SELECT s.id, s.schema_type, s.schema_text FROM registry_schemas s
         WHERE s.id = $1
           AND ($2 OR EXISTS (SELECT 1 FROM registry_subject_versions v
                              WHERE v.schema_id = s.id AND NOT v.deleted))",
    )
    .bind(id)
    .bind(include_deleted)
    .fetch_optional(db)
    .await?;
    Ok(row)
}
