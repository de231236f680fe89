//! `/compatibility/subjects/{subject}/versions[/{version}]`: test a schema without registering it.

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::subjects::SchemaRequest;
use super::wire::{ConfluentBody, ConfluentJson};
use crate::error::Result;
use crate::schema_registry::SchemaRegistry;
use crate::store::versions::VersionSelector;

/// `?verbose=true` adds the reasons to the answer.
#[derive(Debug, Default, Deserialize)]
pub struct VerboseFlag {
    #[serde(default)]
    verbose: bool,
}

#[derive(Serialize)]
pub(super) struct CompatibilityAnswer {
    is_compatible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Vec<String>>,
}

pub(super) async fn against_version(
    State(registry): State<SchemaRegistry>,
    Path((subject, version)): Path<(String, String)>,
    Query(flag): Query<VerboseFlag>,
    ConfluentBody(request): ConfluentBody<SchemaRequest>,
) -> Result<ConfluentJson<CompatibilityAnswer>> {
    let selector: VersionSelector = version.parse()?;
    answer(&registry, &subject, Some(selector), flag, &request).await
}

pub(super) async fn against_level(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    Query(flag): Query<VerboseFlag>,
    ConfluentBody(request): ConfluentBody<SchemaRequest>,
) -> Result<ConfluentJson<CompatibilityAnswer>> {
    answer(&registry, &subject, None, flag, &request).await
}

async fn answer(
    registry: &SchemaRegistry,
    subject: &str,
    against: Option<VersionSelector>,
    flag: VerboseFlag,
    request: &SchemaRequest,
) -> Result<ConfluentJson<CompatibilityAnswer>> {
    let messages = registry
        .check_compatibility(subject, against, request.submission())
        .await?;
    Ok(ConfluentJson(CompatibilityAnswer {
        is_compatible: messages.is_empty(),
        messages: flag.verbose.then_some(messages),
    }))
}
