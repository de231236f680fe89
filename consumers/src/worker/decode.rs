//! Turns a record value into a [`ProjectionEvent`]: Confluent wire format,
//! registry lookup, Avro decoding and the stateless business rules.

use futures::FutureExt;
use futures::future::BoxFuture;
use orderflow_schemas::{OrderEvent, OrderEventDeserializer, OrderPayload};

use crate::dead_letter::DlqCategory;
use crate::store::projection::{Effect, ProjectionEvent};

/// Why a record could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeFailure {
    /// Retrying can help (the registry is unreachable).
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
}

impl std::fmt::Debug for EventDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventDecoder")
    }
}

impl EventDecoder {
    /// A decoder reading writer schemas through `deserializer`.
    pub fn new(deserializer: OrderEventDeserializer) -> Self {
        Self { deserializer }
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
        let event = match self.deserializer.deserialize(value).await {
            Ok(event) => event,
            Err(error) if error.is_transient() => {
                return Err(DecodeFailure::Transient(error.to_string()));
            }
            Err(error) => {
                let category = DlqCategory::from_schema_category(error.category());
                return Err(DecodeFailure::Poison(category, error.to_string()));
            }
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
