//! Turns a record value into a [`ProjectionEvent`]: Confluent wire format,
//! registry lookup, Avro decoding and the stateless business rules.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use orderflow_schemas::{DecodeError, OrderEvent, OrderEventDeserializer, OrderPayload, wire};

use super::registry_budget::{RegistryBudget, RegistryVerdict};
use crate::dead_letter::DlqCategory;
use crate::metrics::RegistryMetrics;
use crate::store::projection::{Effect, ProjectionEvent};

/// How long a schema id the registry keeps refusing (401/403, a 5xx for that id
/// alone, an answer that does not parse) is retried before its records are
/// dead-lettered with category `registry`: the `--registry-failure-budget` default.
pub const DEFAULT_REGISTRY_FAILURE_BUDGET: Duration = Duration::from_secs(300);

/// Why a record could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeFailure {
    /// Retrying can help: the record waits on the schema registry (unreachable,
    /// a 404 within the not-found grace, a refusal within the failure budget).
    Transient(String),
    /// Retrying cannot help: dead-letter under this category.
    Poison(DlqCategory, String),
}

/// Turns a record's key and value into an event.
pub(crate) trait RecordDecoder: Send + Sync + std::fmt::Debug {
    /// Decodes and validates one record.
    fn decode<'a>(
        &'a self,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<ProjectionEvent, DecodeFailure>>;
}

impl RecordDecoder for EventDecoder {
    fn decode<'a>(
        &'a self,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<ProjectionEvent, DecodeFailure>> {
        EventDecoder::decode(self, key, value).boxed()
    }
}

/// Decodes and validates record values.
pub struct EventDecoder {
    deserializer: OrderEventDeserializer,
    budget: RegistryBudget,
    metrics: Option<RegistryMetrics>,
    /// The last wait of each schema id: its other records wait on it without a lookup
    /// of their own for [`RECHECK_AFTER`], so a thousand records waiting on one id ask
    /// the registry about once a second, not a thousand times a backoff round.
    recent_waits: Mutex<HashMap<u32, (Instant, String)>>,
}

/// How long a schema id's wait stands for its other records.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// Most schema ids whose last wait is remembered.
const MAX_RECENT_WAITS: usize = 10_000;

impl std::fmt::Debug for EventDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventDecoder")
    }
}

impl EventDecoder {
    /// A decoder reading writer schemas through `deserializer` (whose not-found grace
    /// decides how long a 404 waits), with [`DEFAULT_REGISTRY_FAILURE_BUDGET`].
    pub fn new(deserializer: OrderEventDeserializer) -> Self {
        Self {
            deserializer,
            budget: RegistryBudget::new(DEFAULT_REGISTRY_FAILURE_BUDGET),
            metrics: None,
            recent_waits: Mutex::default(),
        }
    }

    /// Retries the records of a schema id the registry keeps refusing for `budget`
    /// from the first refusal, then dead-letters them with category `registry`.
    pub fn with_failure_budget(mut self, budget: Duration) -> Self {
        self.budget = RegistryBudget::new(budget);
        self
    }

    /// Counts registry waits and failed lookups per schema id in `registry`
    /// (`orderflow_consumer_registry_*`).
    pub fn with_metrics(mut self, registry: &prometheus::Registry) -> Self {
        self.metrics = Some(RegistryMetrics::new(registry));
        self
    }

    /// Decodes `value`, checks the business rules and that the record has a key and
    /// it is the order id.
    pub async fn decode(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<ProjectionEvent, DecodeFailure> {
        let Some(value) = value else {
            return Err(DecodeFailure::Poison(
                DlqCategory::Deserialization,
                "record has no value (tombstone)".into(),
            ));
        };
        let schema_id = wire::split_frame(value).ok().map(|(id, _)| id);
        if let Some(message) = schema_id.and_then(|id| self.recent_wait(id)) {
            return Err(DecodeFailure::Transient(message));
        }
        let event = match self.deserializer.deserialize(value).await {
            Ok(event) => {
                if let Some(schema_id) = schema_id {
                    self.answered(schema_id);
                }
                event
            }
            Err(error) => return Err(self.failure(error).await),
        };
        if let Err(error) = event.validate() {
            return Err(DecodeFailure::Poison(
                DlqCategory::Validation,
                error.to_string(),
            ));
        }
        // A keyless record would bypass the per-order gate and race the order's
        // keyed events, so it is refused like any other broken contract.
        let Some(key) = key.filter(|key| !key.is_empty()) else {
            return Err(DecodeFailure::Poison(
                DlqCategory::Validation,
                format!(
                    "record has no key; it must be the event's order_id {:?}",
                    event.order_id
                ),
            ));
        };
        if key != event.order_id.as_bytes() {
            return Err(DecodeFailure::Poison(
                DlqCategory::Validation,
                format!(
                    "record key {:?} is not the event's order_id {:?}",
                    String::from_utf8_lossy(key),
                    event.order_id
                ),
            ));
        }
        Ok(to_projection_event(event))
    }
}

impl EventDecoder {
    /// A failed decode as wait or dead-letter, counted per schema id.
    async fn failure(&self, error: DecodeError) -> DecodeFailure {
        let poison = |error: &DecodeError| {
            DecodeFailure::Poison(DlqCategory::from(error.category()), error.to_string())
        };
        let Some(schema_id) = registry_schema_id(&error) else {
            return poison(&error);
        };
        if let Some(metrics) = &self.metrics {
            metrics.lookup_failed(schema_id, &error);
        }
        let client = self.deserializer.client();
        match self.budget.judge(schema_id, &error, client).await {
            RegistryVerdict::Wait => {
                if let Some(metrics) = &self.metrics {
                    metrics.waited(schema_id);
                }
                let message = error.to_string();
                let mut recent = self
                    .recent_waits
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if recent.len() >= MAX_RECENT_WAITS {
                    recent.clear();
                }
                recent.insert(schema_id, (Instant::now(), message.clone()));
                DecodeFailure::Transient(message)
            }
            RegistryVerdict::GiveUp(message) => {
                DecodeFailure::Poison(DlqCategory::Registry, message)
            }
            RegistryVerdict::Poison => poison(&error),
        }
    }
}

impl EventDecoder {
    /// The wait of `schema_id` if it was decided less than [`RECHECK_AFTER`] ago.
    fn recent_wait(&self, schema_id: u32) -> Option<String> {
        let recent = self
            .recent_waits
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (at, message) = recent.get(&schema_id)?;
        if at.elapsed() >= RECHECK_AFTER {
            return None;
        }
        if let Some(metrics) = &self.metrics {
            metrics.waited(schema_id);
        }
        Some(message.clone())
    }

    /// The registry gave the writer schema of `schema_id`.
    fn answered(&self, schema_id: u32) {
        {
            let mut recent = self
                .recent_waits
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !recent.is_empty() {
                recent.remove(&schema_id);
            }
        }
        self.budget.answered(schema_id);
    }
}

/// The schema id whose lookup failed, when the registry was asked at all.
fn registry_schema_id(error: &DecodeError) -> Option<u32> {
    match error {
        DecodeError::RegistryUnavailable { schema_id, .. } => Some(*schema_id),
        DecodeError::UnknownSchemaId(schema_id) => Some(*schema_id),
        _ => None,
    }
}

/// Maps the wire type to what the projection needs.
pub(crate) fn to_projection_event(event: OrderEvent) -> ProjectionEvent {
    let effect = match event.payload {
        OrderPayload::Created(created) => Effect::Created {
            item_count: created
                .items
                .iter()
                .map(|item| item.quantity)
                .fold(0i32, i32::saturating_add),
            customer_id: created.customer_id,
            currency: created.currency,
            total_cents: created.total_cents,
        },
        OrderPayload::Paid(paid) => Effect::Paid {
            amount_cents: paid.amount_cents,
        },
        OrderPayload::Shipped(_) => Effect::Shipped,
        OrderPayload::Cancelled(_) => Effect::Cancelled,
    };
    ProjectionEvent {
        event_id: event.event_id.to_string(),
        order_id: event.order_id,
        occurred_at: event.occurred_at,
        effect,
    }
}
