//! Consumer side: Confluent-framed Avro values, written with any registered version of the
//! schema, read as the current [`OrderEvent`] through Avro schema resolution.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::{NamesRef, ResolvedSchema};
use apache_avro::types::Value;

use crate::avro_binary::decode_event;
use crate::avro_schema::{current_schema, schema_v1};
use crate::avro_value::event_from_value;
use crate::error::{DecodeError, RegistryError};
use crate::order_event::OrderEvent;
use crate::reader_check::reader_problems;
use crate::registry_client::RegistryClient;
use crate::resolution::Resolver;
use crate::wire;

/// Decodes framed values into [`OrderEvent`]s, fetching each writer schema from the registry
/// once. Cheap to clone; clones share the caches.
#[derive(Debug, Clone)]
pub struct OrderEventDeserializer {
    client: RegistryClient,
    plans: Arc<RwLock<HashMap<u32, WriterPlan>>>,
    /// When each id the registry did not know was first looked up.
    not_found_since: Arc<Mutex<HashMap<u32, Instant>>>,
    not_found_grace: Duration,
}

/// A grace period long enough for a follower registry node to replicate a new schema
/// (seconds, normally): the value a consumer's flag should default to.
pub const DEFAULT_NOT_FOUND_GRACE: Duration = Duration::from_secs(60);

/// Most unknown ids whose first lookup is remembered.
const MAX_NOT_FOUND_IDS: usize = 10_000;

impl OrderEventDeserializer {
    /// A deserializer that looks writer schemas up through `client`; an id the registry
    /// does not know is poison at once until [`with_not_found_grace`](Self::with_not_found_grace).
    pub fn new(client: RegistryClient) -> Self {
        Self {
            client,
            plans: Arc::default(),
            not_found_since: Arc::default(),
            not_found_grace: Duration::ZERO,
        }
    }

    /// Treats a 404 for a schema id as transient ([`RetryAdvice::UntilItAnswers`]) for
    /// `grace` after the id was first looked up, then as poison
    /// ([`DecodeError::UnknownSchemaId`]): a follower registry node that has not seen a new
    /// schema yet, or one restored from an older backup, costs no event.
    ///
    /// [`RetryAdvice::UntilItAnswers`]: crate::RetryAdvice::UntilItAnswers
    pub fn with_not_found_grace(mut self, grace: Duration) -> Self {
        self.not_found_grace = grace;
        self
    }

    /// The registry client in use.
    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// Decodes one record value. When the schema id was seen before, this completes without
    /// touching the network. See [`DecodeError`] for what each failure means.
    pub async fn deserialize(&self, value: &[u8]) -> Result<OrderEvent, DecodeError> {
        let (schema_id, body) = wire::split_frame(value)?;
        let cached = self
            .plans
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&schema_id)
            .cloned();
        let plan = match cached {
            Some(plan) => plan,
            None => {
                let writer = self
                    .client
                    .schema_by_id(schema_id)
                    .await
                    .map_err(|e| self.registry_failure(schema_id, e))?;
                let plan = WriterPlan::for_schema(writer);
                if let WriterPlan::Other(writer) = &plan {
                    // Once per schema id: what of this writer no record of it will get through.
                    let problems = reader_problems(writer);
                    if !problems.is_empty() {
                        tracing::warn!(schema_id, problems = %problems.join("; "),
                            "writer schema has parts this reader cannot read; records using them are dead-lettered (category schema)");
                    }
                }
                self.plans
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(schema_id, plan.clone());
                plan
            }
        };
        plan.decode(schema_id, body)
    }

    /// A failed lookup as a decode error; a 404 stays transient within the grace period.
    fn registry_failure(&self, schema_id: u32, error: RegistryError) -> DecodeError {
        if matches!(error, RegistryError::NotFound { .. }) && !self.not_found_grace.is_zero() {
            let mut since = self
                .not_found_since
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Garbage ids in a hostile topic must not grow the map without bound.
            if since.len() >= MAX_NOT_FOUND_IDS && !since.contains_key(&schema_id) {
                since.clear();
            }
            let first = match since.entry(schema_id) {
                Entry::Occupied(entry) => *entry.get(),
                Entry::Vacant(entry) => {
                    // One line per schema id, not per record.
                    tracing::warn!(schema_id, grace = ?self.not_found_grace,
                        "schema id not found in the registry; its records are retried until the grace period ends");
                    *entry.insert(Instant::now())
                }
            };
            if first.elapsed() < self.not_found_grace {
                return DecodeError::RegistryUnavailable {
                    schema_id,
                    source: error,
                };
            }
        }
        registry_failure(schema_id, error)
    }
}

/// Decodes an Avro `body` written with `writer` into the current [`OrderEvent`], resolving the
/// schemas when they differ. `schema_id` only labels errors. For one-off use (tools, tests): it
/// compares schemas on every call (tens of microseconds), which [`OrderEventDeserializer`] does
/// once per schema id.
pub fn decode_body(
    schema_id: u32,
    writer: &Schema,
    body: &[u8],
) -> Result<OrderEvent, DecodeError> {
    match WriterKind::of(writer) {
        WriterKind::Current => WriterPlan::Current.decode(schema_id, body),
        WriterKind::V1 => WriterPlan::V1.decode(schema_id, body),
        WriterKind::Other => decode_other(schema_id, writer, body),
    }
}

fn registry_failure(schema_id: u32, error: RegistryError) -> DecodeError {
    match error {
        RegistryError::NotFound { .. } => DecodeError::UnknownSchemaId(schema_id),
        RegistryError::InvalidSchema { reason, .. } => {
            DecodeError::SchemaMismatch { schema_id, reason }
        }
        source => DecodeError::RegistryUnavailable { schema_id, source },
    }
}

/// How to read data of one writer schema, decided once per schema id.
#[derive(Debug, Clone)]
enum WriterPlan {
    /// Same as the current schema: the strict direct decoder, no resolution.
    Current,
    /// The embedded v1: decode with a prepared reader, then resolve.
    V1,
    /// Any other schema: prepared per record, then resolve.
    Other(Arc<Schema>),
}

/// Which of the embedded schemas, if any, a writer schema is.
enum WriterKind {
    Current,
    V1,
    Other,
}

impl WriterKind {
    fn of(writer: &Schema) -> Self {
        if std::ptr::eq(writer, current_schema()) {
            return WriterKind::Current;
        }
        if std::ptr::eq(writer, schema_v1()) {
            return WriterKind::V1;
        }
        // Not Parsing Canonical Form: it drops logical types, and a `timestamp-micros` writer
        // has the current schema's form. apache-avro's equality compares them too.
        if writer == current_schema() {
            WriterKind::Current
        } else if writer == schema_v1() {
            WriterKind::V1
        } else {
            WriterKind::Other
        }
    }
}

impl WriterPlan {
    fn for_schema(writer: Arc<Schema>) -> Self {
        match WriterKind::of(&writer) {
            WriterKind::Current => WriterPlan::Current,
            WriterKind::V1 => WriterPlan::V1,
            WriterKind::Other => WriterPlan::Other(writer),
        }
    }

    fn decode(&self, schema_id: u32, body: &[u8]) -> Result<OrderEvent, DecodeError> {
        let value = match self {
            WriterPlan::Current => {
                return decode_event(body)
                    .map_err(|reason| DecodeError::InvalidBody { schema_id, reason });
            }
            WriterPlan::V1 => {
                let v1 = v1_codec();
                let value = read_datum(schema_id, &v1.reader, body)?;
                require_valid(
                    schema_id,
                    &value,
                    value.validate_with_names(schema_v1(), v1.names.get_names()),
                )?;
                resolve_to_current(schema_id, schema_v1(), v1.names.get_names(), value)?
            }
            WriterPlan::Other(writer) => return decode_other(schema_id, writer, body),
        };
        event_from_value(value).map_err(|reason| DecodeError::InvalidBody { schema_id, reason })
    }
}

/// Any writer schema other than the embedded ones: generic decode, then resolution.
fn decode_other(schema_id: u32, writer: &Schema, body: &[u8]) -> Result<OrderEvent, DecodeError> {
    let reader =
        GenericDatumReader::builder(writer)
            .build()
            .map_err(|e| DecodeError::SchemaMismatch {
                schema_id,
                reason: e.to_string(),
            })?;
    let value = read_datum(schema_id, &reader, body)?;
    require_valid(schema_id, &value, value.validate(writer))?;
    let names = ResolvedSchema::try_from(writer).map_err(|e| DecodeError::SchemaMismatch {
        schema_id,
        reason: e.to_string(),
    })?;
    let value = resolve_to_current(schema_id, writer, names.get_names(), value)?;
    event_from_value(value).map_err(|reason| DecodeError::InvalidBody { schema_id, reason })
}

/// A prepared reader and name table for the embedded v1 schema.
struct V1Codec {
    reader: GenericDatumReader<'static>,
    names: ResolvedSchema<'static>,
}

fn v1_codec() -> &'static V1Codec {
    static CODEC: OnceLock<V1Codec> = OnceLock::new();
    CODEC.get_or_init(|| V1Codec {
        reader: GenericDatumReader::builder(schema_v1())
            .build()
            .expect("embedded schemas resolve (unit-tested)"),
        names: ResolvedSchema::try_from(schema_v1())
            .expect("embedded schemas resolve (unit-tested)"),
    })
}

/// Decodes one datum with the writer schema and requires the whole body to be used: trailing
/// bytes mean the id does not describe the data.
fn read_datum(
    schema_id: u32,
    reader: &GenericDatumReader<'_>,
    body: &[u8],
) -> Result<Value, DecodeError> {
    let mut rest = body;
    let value = reader
        .read_value(&mut rest)
        .map_err(|e| DecodeError::InvalidBody {
            schema_id,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(DecodeError::InvalidBody {
            schema_id,
            reason: format!("{} trailing bytes after the Avro datum", rest.len()),
        });
    }
    Ok(value)
}

/// apache-avro 0.22 reads a string cut off by the end of the body as null: such a value does
/// not validate against its own writer schema, which marks the body (not the schema) as broken.
fn require_valid(schema_id: u32, value: &Value, valid: bool) -> Result<(), DecodeError> {
    if valid {
        return Ok(());
    }
    let mut reason = format!("the datum does not match its writer schema (truncated?): {value:?}");
    if reason.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| reason.is_char_boundary(*i))
            .unwrap_or(0);
        reason.truncate(cut);
        reason.push_str("...");
    }
    Err(DecodeError::InvalidBody { schema_id, reason })
}

/// `value`, decoded with `writer`, resolved to the current schema as the Avro specification
/// says ([`crate::resolution`]): what this reader cannot read is a schema mismatch naming it.
fn resolve_to_current(
    schema_id: u32,
    writer: &Schema,
    writer_names: &NamesRef<'_>,
    value: Value,
) -> Result<Value, DecodeError> {
    static NAMES: OnceLock<ResolvedSchema<'static>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        ResolvedSchema::try_from(current_schema()).expect("embedded schemas resolve (unit-tested)")
    });
    let resolver = Resolver {
        writer_names,
        reader_names: names.get_names(),
    };
    resolver
        .resolve(value, writer, current_schema())
        .map_err(|reason| DecodeError::SchemaMismatch { schema_id, reason })
}

#[cfg(test)]
#[path = "deserializer_tests.rs"]
mod tests;
