//! Poison records: values a consumer cannot process and must dead-letter, detectable from
//! their content alone (no marker header). Three kinds, sent in turn:
//!
//! - `not_avro`: JSON text, so the first byte is not the wire format's magic byte 0;
//! - `unknown_schema_id`: a well-formed frame whose schema id (0x7fffffff) the registry
//!   does not know;
//! - `invalid_event`: a validly encoded `OrderCreated` whose `total_cents` is not the sum
//!   of its lines, which [`OrderEvent::validate`] rejects.
//!
//! Each poison record is keyed by an order id of its own (`ord-<seed>-p<n>`) that no valid
//! event uses, so dead-lettering it never leaves a real order half-processed.

use chrono::{SubsecRound, Utc};
use orderflow_schemas::{OrderEvent, OrderEventSerializer, OrderPayload, wire};
use rand::Rng;

use crate::generator::lifecycle::{random_order_created, uuid_from};

/// Schema id written into `unknown_schema_id` poison: the largest positive id, which no
/// registry hands out in practice.
pub const UNKNOWN_SCHEMA_ID: u32 = 0x7fff_ffff;

/// The kinds of poison record, in the order they are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PoisonKind {
    /// Bytes that are not in the Confluent wire format at all.
    NotAvro,
    /// A frame naming a schema id the registry does not know.
    UnknownSchemaId,
    /// A well-formed event that breaks a business rule.
    InvalidEvent,
}

impl PoisonKind {
    /// Every kind, in sending order.
    pub const ALL: [PoisonKind; 3] = [
        PoisonKind::NotAvro,
        PoisonKind::UnknownSchemaId,
        PoisonKind::InvalidEvent,
    ];

    /// The kind of the `n`-th poison record (0-based): the kinds take turns.
    pub fn nth(n: u64) -> Self {
        Self::ALL[(n % Self::ALL.len() as u64) as usize]
    }

    /// Name used in the summary: `not_avro`, `unknown_schema_id`, `invalid_event`.
    pub fn as_str(self) -> &'static str {
        match self {
            PoisonKind::NotAvro => "not_avro",
            PoisonKind::UnknownSchemaId => "unknown_schema_id",
            PoisonKind::InvalidEvent => "invalid_event",
        }
    }
}

/// One poison record, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonRecord {
    /// Its kind.
    pub kind: PoisonKind,
    /// Record key: an order id no valid event uses.
    pub key: String,
    /// Record value.
    pub value: Vec<u8>,
    /// The event type the record claims in its `event-type` header.
    pub event_type: &'static str,
}

/// Builds the `n`-th poison record (0-based) of a run with `seed`.
pub fn poison_record(
    n: u64,
    seed: u64,
    producer: &str,
    serializer: &OrderEventSerializer,
    rng: &mut impl Rng,
) -> PoisonRecord {
    let kind = PoisonKind::nth(n);
    let key = format!("ord-{seed:x}-p{:06}", n + 1);
    let mut created = random_order_created(rng);
    if kind == PoisonKind::InvalidEvent {
        // One cent off: decodes fine, fails validation.
        created.total_cents += 1;
    }
    let event = OrderEvent {
        event_id: uuid_from(rng),
        order_id: key.clone(),
        occurred_at: Utc::now().trunc_subsecs(3),
        producer: producer.to_string(),
        sales_channel: None,
        payload: OrderPayload::Created(created),
    };
    let event_type = event.event_type();
    let value = match kind {
        PoisonKind::NotAvro => serde_json::to_vec(&event).expect("events serialize to JSON"),
        PoisonKind::UnknownSchemaId => {
            let mut value = serializer.serialize(&event);
            value[1..wire::HEADER_LEN].copy_from_slice(&UNKNOWN_SCHEMA_ID.to_be_bytes());
            value
        }
        PoisonKind::InvalidEvent => serializer.serialize(&event),
    };
    PoisonRecord {
        kind,
        key,
        value,
        event_type,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderflow_schemas::{DecodeError, current_schema, decode_body};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const SCHEMA_ID: u32 = 7;

    fn record(n: u64) -> PoisonRecord {
        let serializer = OrderEventSerializer::from_schema_id(SCHEMA_ID, "orders-value");
        let mut rng = StdRng::seed_from_u64(n);
        poison_record(n, 0xabc, "test", &serializer, &mut rng)
    }

    #[test]
    fn kinds_take_turns() {
        let kinds: Vec<_> = (0..6).map(PoisonKind::nth).collect();
        assert_eq!(
            kinds,
            [
                PoisonKind::NotAvro,
                PoisonKind::UnknownSchemaId,
                PoisonKind::InvalidEvent,
                PoisonKind::NotAvro,
                PoisonKind::UnknownSchemaId,
                PoisonKind::InvalidEvent
            ]
        );
    }

    #[test]
    fn not_avro_fails_the_frame_check() {
        let poison = record(0);
        assert_eq!(poison.kind, PoisonKind::NotAvro);
        assert_eq!(poison.key, "ord-abc-p000001");
        let error = wire::split_frame(&poison.value).unwrap_err();
        assert!(
            matches!(error, DecodeError::NotWireFormat { .. }),
            "{error}"
        );
    }

    #[test]
    fn unknown_schema_id_is_a_frame_with_a_valid_body() {
        let poison = record(1);
        assert_eq!(poison.kind, PoisonKind::UnknownSchemaId);
        let (id, body) = wire::split_frame(&poison.value).unwrap();
        assert_eq!(id, UNKNOWN_SCHEMA_ID);
        let event = decode_body(id, current_schema(), body).unwrap();
        assert_eq!(event.order_id, poison.key);
        event.validate().unwrap();
    }

    #[test]
    fn invalid_event_decodes_but_fails_validation() {
        let poison = record(2);
        assert_eq!(poison.kind, PoisonKind::InvalidEvent);
        let (id, body) = wire::split_frame(&poison.value).unwrap();
        assert_eq!(id, SCHEMA_ID);
        let event = decode_body(id, current_schema(), body).unwrap();
        assert_eq!(event.event_type(), poison.event_type);
        let error = event.validate().unwrap_err();
        assert!(error.to_string().contains("total_cents"), "{error}");
    }
}
