//! `/config` and `/config/{subject}`: compatibility levels.
//!
//! As in Confluent's API, reads answer `{"compatibilityLevel": ...}` and writes take and
//! answer `{"compatibility": ...}`.

use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::wire::{ConfluentBody, ConfluentJson};
use crate::compatibility::CompatibilityLevel;
use crate::error::{RegistryError, Result};
use crate::schema_registry::SchemaRegistry;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConfigRead {
    compatibility_level: CompatibilityLevel,
}

/// Body of `PUT /config[/{subject}]`, and its answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConfigWrite {
    compatibility: String,
}

/// `?defaultToGlobal=true` on `GET /config/{subject}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalFallback {
    #[serde(default)]
    default_to_global: bool,
}

pub(super) async fn get_global(
    State(registry): State<SchemaRegistry>,
) -> Result<ConfluentJson<ConfigRead>> {
    let level = registry.config(None).await?.unwrap_or_default();
    Ok(ConfluentJson(ConfigRead {
        compatibility_level: level,
    }))
}

pub(super) async fn put_global(
    State(registry): State<SchemaRegistry>,
    ConfluentBody(body): ConfluentBody<ConfigWrite>,
) -> Result<ConfluentJson<ConfigWrite>> {
    let level: CompatibilityLevel = body.compatibility.parse()?;
    registry.set_config(None, level).await?;
    Ok(ConfluentJson(written(level)))
}

pub(super) async fn get_subject(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    Query(fallback): Query<GlobalFallback>,
) -> Result<ConfluentJson<ConfigRead>> {
    let level = if fallback.default_to_global {
        Some(registry.effective_config(&subject).await?)
    } else {
        registry.config(Some(&subject)).await?
    };
    let level = level.ok_or(RegistryError::SubjectConfigNotFound(subject))?;
    Ok(ConfluentJson(ConfigRead {
        compatibility_level: level,
    }))
}

pub(super) async fn put_subject(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
    ConfluentBody(body): ConfluentBody<ConfigWrite>,
) -> Result<ConfluentJson<ConfigWrite>> {
    let level: CompatibilityLevel = body.compatibility.parse()?;
    registry.set_config(Some(&subject), level).await?;
    Ok(ConfluentJson(written(level)))
}

pub(super) async fn delete_subject(
    State(registry): State<SchemaRegistry>,
    Path(subject): Path<String>,
) -> Result<ConfluentJson<ConfigRead>> {
    let previous = registry.delete_config(Some(&subject)).await?;
    let level = previous.ok_or(RegistryError::SubjectConfigNotFound(subject))?;
    Ok(ConfluentJson(ConfigRead {
        compatibility_level: level,
    }))
}

fn written(level: CompatibilityLevel) -> ConfigWrite {
    ConfigWrite {
        compatibility: level.as_str().to_string(),
    }
}
