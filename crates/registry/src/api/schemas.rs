//! `/schemas/...`: schemas by global id.

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::wire::ConfluentJson;
use crate::avro_schema::AVRO;
use crate::error::{RegistryError, Result};
use crate::schema_registry::SchemaRegistry;

/// `?deleted=true`: also soft-deleted schemas (clients decoding old records ask this).
#[derive(Debug, Default, Deserialize)]
pub struct DeletedFlag {
    #[serde(default)]
    deleted: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SchemaString {
    schema: String,
    /// Omitted for AVRO, as Confluent does.
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_type: Option<String>,
}

#[derive(Serialize)]
pub(super) struct SubjectAndVersion {
    subject: String,
    version: i32,
}

fn parse_id(text: &str) -> Result<i32> {
    text.parse()
        .map_err(|_| RegistryError::SchemaNotFound(format!("Schema {text} not found")))
}

pub(super) async fn by_id(
    State(registry): State<SchemaRegistry>,
    Path(id): Path<String>,
    Query(flag): Query<DeletedFlag>,
) -> Result<ConfluentJson<SchemaString>> {
    let stored = registry.schema_by_id(parse_id(&id)?, flag.deleted).await?;
    let schema_type = (stored.schema_type != AVRO).then_some(stored.schema_type);
    Ok(ConfluentJson(SchemaString {
        schema: stored.schema_text,
        schema_type,
    }))
}

pub(super) async fn versions_of_id(
    State(registry): State<SchemaRegistry>,
    Path(id): Path<String>,
    Query(flag): Query<DeletedFlag>,
) -> Result<ConfluentJson<Vec<SubjectAndVersion>>> {
    let pairs = registry
        .subject_versions_of_schema(parse_id(&id)?, flag.deleted)
        .await?;
    Ok(ConfluentJson(
        pairs
            .into_iter()
            .map(|(subject, version)| SubjectAndVersion { subject, version })
            .collect(),
    ))
}

pub(super) async fn types() -> ConfluentJson<[&'static str; 1]> {
    ConfluentJson([AVRO])
}
