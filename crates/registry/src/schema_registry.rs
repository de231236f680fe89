//! The registry's operations (register, look up, check, delete, configure), on top of
//! the PostgreSQL store. The HTTP layer only translates requests and responses.

use apache_avro::Schema;
use serde::Serialize;
use sqlx::PgPool;

use crate::avro_schema::{AVRO, ParsedSchema};
use crate::compatibility::CompatibilityLevel;
use crate::error::{RegistryError, Result, is_transient_database_error};
use crate::metrics::{RegistrationOutcome, RegistryMetrics};
use crate::store::versions::{VersionRow, VersionSelector};
use crate::store::{config, schemas, versions};

/// How many times a registration that lost a race to a concurrent one is retried.
const REGISTER_ATTEMPTS: u32 = 3;

/// A schema as submitted by a client.
#[derive(Debug, Clone, Copy)]
pub struct SchemaSubmission<'a> {
    /// The schema text (Avro JSON).
    pub schema: &'a str,
    /// `schemaType`; absent means AVRO.
    pub schema_type: Option<&'a str>,
    /// Whether the request named schema references (not supported here).
    pub has_references: bool,
}

impl SchemaSubmission<'_> {
    /// Parses the schema, rejecting other schema types and references.
    fn parse(&self) -> Result<ParsedSchema> {
        if let Some(kind) = self.schema_type
            && !kind.eq_ignore_ascii_case(AVRO)
        {
            return Err(RegistryError::InvalidSchema(format!(
                "schemaType '{kind}' is not supported by this registry; only AVRO is"
            )));
        }
        if self.has_references {
            return Err(RegistryError::InvalidSchema(
                "schema references are not supported by this registry".to_string(),
            ));
        }
        if self.schema.trim().is_empty() {
            return Err(RegistryError::InvalidSchema("Empty schema".to_string()));
        }
        ParsedSchema::parse(self.schema).map_err(RegistryError::InvalidSchema)
    }
}

/// One version of a subject, as Confluent's API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// Version within the subject.
    pub version: i32,
    /// Global schema id.
    pub id: i32,
    /// The schema text.
    pub schema: String,
}

impl SubjectVersion {
    fn from_row(subject: &str, row: VersionRow) -> Self {
        Self {
            subject: subject.to_string(),
            version: row.version,
            id: row.schema_id,
            schema: row.schema_text,
        }
    }
}

/// The schema registry service.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    pool: PgPool,
    metrics: RegistryMetrics,
}

impl SchemaRegistry {
    /// A registry storing into `pool` (migrations already applied).
    pub fn new(pool: PgPool, metrics: RegistryMetrics) -> Self {
        Self { pool, metrics }
    }

    /// Registers `submission` under `subject` and returns its global id. A schema already
    /// live under the subject returns its id without a new version; otherwise the
    /// subject's compatibility level must accept it.
    pub async fn register(&self, subject: &str, submission: SchemaSubmission<'_>) -> Result<i32> {
        let parsed = submission.parse().inspect_err(|_| {
            self.metrics.registration(RegistrationOutcome::Invalid);
        })?;
        let mut attempt = 1;
        loop {
            match self
                .register_once(subject, submission.schema, &parsed)
                .await
            {
                Err(RegistryError::Database(err))
                    if attempt < REGISTER_ATTEMPTS && is_transient_database_error(&err) =>
                {
                    tracing::debug!(%subject, attempt, error = %err, "registration lost a race; retrying");
                    attempt += 1;
                }
                Ok((id, outcome)) => {
                    self.metrics.registration(outcome);
                    if outcome == RegistrationOutcome::Created {
                        tracing::info!(%subject, id, "registered a new schema version");
                    }
                    return Ok(id);
                }
                Err(err) => {
                    if matches!(err, RegistryError::Incompatible { .. }) {
                        self.metrics.registration(RegistrationOutcome::Incompatible);
                    }
                    return Err(err);
                }
            }
        }
    }

    async fn register_once(
        &self,
        subject: &str,
        text: &str,
        parsed: &ParsedSchema,
    ) -> Result<(i32, RegistrationOutcome)> {
        let mut tx = self.pool.begin().await?;
        versions::lock_subject(&mut tx, subject).await?;
        if let Some(id) = schemas::find_id(&mut *tx, AVRO, &parsed.normalized).await?
            && versions::live_version_of_schema(&mut *tx, subject, id)
                .await?
                .is_some()
        {
            tx.commit().await?;
            return Ok((id, RegistrationOutcome::Existing));
        }
        let live = versions::live(&mut *tx, subject).await?;
        let level = effective_level(&mut tx, subject).await?;
        let earlier = parse_stored(level.versions_to_check(&live))?;
        let messages = level.check(&parsed.schema, &borrowed(&earlier));
        if !messages.is_empty() {
            return Err(RegistryError::Incompatible {
                subject: subject.to_string(),
                messages,
            });
        }
        let id = schemas::get_or_insert(&mut tx, AVRO, &parsed.normalized, text).await?;
        versions::insert_next(&mut tx, subject, id).await?;
        tx.commit().await?;
        Ok((id, RegistrationOutcome::Created))
    }

    /// The version of `subject` that holds `submission` (Confluent's `POST /subjects/{s}`).
    pub async fn lookup(
        &self,
        subject: &str,
        submission: SchemaSubmission<'_>,
    ) -> Result<SubjectVersion> {
        let parsed = submission.parse()?;
        let row = match schemas::find_id(&self.pool, AVRO, &parsed.normalized).await? {
            Some(id) => versions::live_version_of_schema(&self.pool, subject, id).await?,
            None => None,
        };
        match row {
            Some(row) => Ok(SubjectVersion::from_row(subject, row)),
            None if versions::numbers(&self.pool, subject, false)
                .await?
                .is_empty() =>
            {
                Err(RegistryError::SubjectNotFound(subject.to_string()))
            }
            None => Err(RegistryError::SchemaNotFound(
                "Schema not found".to_string(),
            )),
        }
    }

    /// Checks `submission` against `subject`: against the version chosen by `against`, or
    /// against the versions the subject's level names when `against` is `None`. Returns
    /// the problems found (empty means compatible).
    pub async fn check_compatibility(
        &self,
        subject: &str,
        against: Option<VersionSelector>,
        submission: SchemaSubmission<'_>,
    ) -> Result<Vec<String>> {
        let parsed = submission.parse()?;
        let mut conn = self.pool.acquire().await?;
        let live = versions::live(&mut *conn, subject).await?;
        let level = effective_level(&mut conn, subject).await?;
        let chosen: Vec<VersionRow> = match against {
            None => level.versions_to_check(&live).to_vec(),
            // Checking against the latest of a subject that does not exist yet passes, so
            // a CI check can run before the first registration.
            Some(VersionSelector::Latest) => live.last().cloned().into_iter().collect(),
            Some(VersionSelector::Number(n)) => {
                if live.is_empty() {
                    return Err(RegistryError::SubjectNotFound(subject.to_string()));
                }
                let row = live.iter().find(|row| row.version == n).cloned();
                let row = row.ok_or_else(|| RegistryError::VersionNotFound {
                    subject: subject.to_string(),
                    version: n.to_string(),
                })?;
                vec![row]
            }
        };
        let earlier = parse_stored(&chosen)?;
        Ok(level.check(&parsed.schema, &borrowed(&earlier)))
    }

    /// The schema with global id `id`.
    pub async fn schema_by_id(
        &self,
        id: i32,
        include_deleted: bool,
    ) -> Result<schemas::StoredSchema> {
        schemas::by_id(&self.pool, id, include_deleted)
            .await?
            .ok_or_else(|| RegistryError::SchemaNotFound(format!("Schema {id} not found")))
    }

    /// The (subject, version) pairs that hold schema `id`.
    pub async fn subject_versions_of_schema(
        &self,
        id: i32,
        include_deleted: bool,
    ) -> Result<Vec<(String, i32)>> {
        self.schema_by_id(id, include_deleted).await?;
        versions::of_schema(&self.pool, id, include_deleted).await
    }

    /// Subjects with live versions (or any versions, if `include_deleted`).
    pub async fn subjects(&self, include_deleted: bool) -> Result<Vec<String>> {
        versions::subjects(&self.pool, include_deleted).await
    }

    /// Version numbers of `subject`, oldest first.
    pub async fn versions(&self, subject: &str, include_deleted: bool) -> Result<Vec<i32>> {
        let numbers = versions::numbers(&self.pool, subject, include_deleted).await?;
        if numbers.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(numbers)
    }

    /// One version of `subject`.
    pub async fn version(
        &self,
        subject: &str,
        selector: VersionSelector,
        include_deleted: bool,
    ) -> Result<SubjectVersion> {
        if let Some(row) = versions::one(&self.pool, subject, selector, include_deleted).await? {
            return Ok(SubjectVersion::from_row(subject, row));
        }
        if versions::numbers(&self.pool, subject, include_deleted)
            .await?
            .is_empty()
        {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        let version = match selector {
            VersionSelector::Latest => "latest".to_string(),
            VersionSelector::Number(n) => n.to_string(),
        };
        Err(RegistryError::VersionNotFound {
            subject: subject.to_string(),
            version,
        })
    }

    /// Deletes `subject`: a soft delete marks its versions deleted; a permanent delete
    /// (allowed only after a soft delete, as in Confluent) removes them and the subject's
    /// compatibility setting. Returns the version numbers deleted.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<i32>> {
        let mut tx = self.pool.begin().await?;
        versions::lock_subject(&mut tx, subject).await?;
        let live = versions::numbers(&mut *tx, subject, false).await?;
        let any = versions::numbers(&mut *tx, subject, true).await?;
        let deleted = match (permanent, live.is_empty(), any.is_empty()) {
            (_, _, true) => return Err(RegistryError::SubjectNotFound(subject.to_string())),
            (false, true, false) => {
                return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
            }
            (false, false, _) => versions::soft_delete(&mut *tx, subject).await?,
            (true, false, _) => {
                return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
            }
            (true, true, false) => {
                config::delete(&mut *tx, Some(subject)).await?;
                versions::hard_delete(&mut *tx, subject).await?
            }
        };
        tx.commit().await?;
        tracing::info!(%subject, permanent, versions = ?deleted, "deleted subject");
        Ok(deleted)
    }

    /// The level set for `subject` (or the global level for `None`), if one is set.
    pub async fn config(&self, subject: Option<&str>) -> Result<Option<CompatibilityLevel>> {
        config::get(&self.pool, subject).await
    }

    /// The level that applies to `subject`: its own, else the global one, else BACKWARD.
    pub async fn effective_config(&self, subject: &str) -> Result<CompatibilityLevel> {
        let mut conn = self.pool.acquire().await?;
        effective_level(&mut conn, subject).await
    }

    /// Sets the level of `subject` (or the global level for `None`).
    pub async fn set_config(&self, subject: Option<&str>, level: CompatibilityLevel) -> Result<()> {
        config::set(&self.pool, subject, level).await?;
        tracing::info!(subject = subject.unwrap_or("(global)"), %level, "compatibility level set");
        Ok(())
    }

    /// Removes the level of `subject` (or the global one); returns what was set.
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<Option<CompatibilityLevel>> {
        config::delete(&self.pool, subject).await
    }
}

async fn effective_level(
    conn: &mut sqlx::PgConnection,
    subject: &str,
) -> Result<CompatibilityLevel> {
    if let Some(level) = config::get(&mut *conn, Some(subject)).await? {
        return Ok(level);
    }
    Ok(config::get(&mut *conn, None).await?.unwrap_or_default())
}

/// Parses stored versions for a compatibility check; they were valid when stored.
fn parse_stored(rows: &[VersionRow]) -> Result<Vec<(i32, Schema)>> {
    rows.iter()
        .map(|row| {
            ParsedSchema::parse(&row.schema_text)
                .map(|parsed| (row.version, parsed.schema))
                .map_err(|err| {
                    RegistryError::InvalidSchema(format!(
                        "stored schema {} (version {}) no longer parses: {err}",
                        row.schema_id, row.version
                    ))
                })
        })
        .collect()
}

fn borrowed(schemas: &[(i32, Schema)]) -> Vec<(i32, &Schema)> {
    schemas
        .iter()
        .map(|(version, schema)| (*version, schema))
        .collect()
}
