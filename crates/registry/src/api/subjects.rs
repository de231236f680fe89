//! `/subjects/...`: register, look up, list, read and delete subject versions.

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::wire::{ConfluentBody, ConfluentJson};
use crate::error::Result;
use crate::schema_registry::{SchemaRegistry, SchemaSubmission, SubjectVersion};
use crate::store::versions::VersionSelector;

/// Body of register, look-up and compatibility requests.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRequest {
    schema: String,
    schema_type: Option<String>,
    references: Option<Vec<serde_json::Value>>,
}

impl SchemaRequest {
    /// The submission the service works on.
    pub fn submission(&self) -> SchemaSubmission<'_> {
        SchemaSubmission {
            schema: &self.schema,
            schema_type: self.schema_type.as_deref(),
            has_references: self
                .references
                .as_ref()
                .is_some_and(|refs| !refs.is_empty()),
        }
    }
}

/// `?deleted=true` and `?permanent=true`.
#[derive(Debug, Default, Deserialize)]
pub struct DeleteFlags {
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    permanent: bool,
}

#[derive(Serialize)]
pub(super) struct RegisteredId {
    id: i32,
}

pub(super) async fn register(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    ConfluentBody(request): ConfluentBody<SchemaRequest>,
) -> Result<ConfluentJson<RegisteredId>> {
    let id = registry.register(&subject, request.submission()).await?;
    Ok(ConfluentJson(RegisteredId { id }))
}

pub(super) async fn lookup(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    ConfluentBody(request): ConfluentBody<SchemaRequest>,
) -> Result<ConfluentJson<SubjectVersion>> {
    let found = registry.lookup(&subject, request.submission()).await?;
    Ok(ConfluentJson(found))
}

pub(super) async fn list(
    State(registry): State<SchemaRegistry>,
    Query(flags): Query<DeleteFlags>,
) -> Result<ConfluentJson<Vec<String>>> {
    Ok(ConfluentJson(registry.subjects(flags.deleted).await?))
}

pub(super) async fn versions(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    Query(flags): Query<DeleteFlags>,
) -> Result<ConfluentJson<Vec<i32>>> {
    Ok(ConfluentJson(
        registry.versions(&subject, flags.deleted).await?,
    ))
}

pub(super) async fn version(
    State(registry): State<SchemaRegistry>,
    Path((subject, version)): Path<(String, String)>,
    Query(flags): Query<DeleteFlags>,
) -> Result<ConfluentJson<SubjectVersion>> {
    let selector: VersionSelector = version.parse()?;
    let found = registry.version(&subject, selector, flags.deleted).await?;
    Ok(ConfluentJson(found))
}

pub(super) async fn delete(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    Query(flags): Query<DeleteFlags>,
) -> Result<ConfluentJson<Vec<i32>>> {
    let deleted = registry.delete_subject(&subject, flags.permanent).await?;
    Ok(ConfluentJson(deleted))
}
