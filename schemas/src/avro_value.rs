//! Hand-written conversion between [`OrderEvent`] and `apache_avro::types::Value` for the current
//! schema (Value -> event after schema resolution; event -> Value as the tests' reference).
//! The payload union is mapped by branch index, and the index of each record is looked up by
//! name in the current schema, so reordering branches in a later version stays correct.

use std::sync::OnceLock;

use apache_avro::Schema;
use apache_avro::types::Value;
use chrono::DateTime;

use crate::avro_schema::current_schema;
use crate::order_event::{
    LineItem, OrderCancelled, OrderCreated, OrderEvent, OrderPaid, OrderPayload, OrderShipped,
};

/// The payload records, in [`crate::EVENT_TYPES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadKind {
    Created,
    Paid,
    Shipped,
    Cancelled,
}

impl PayloadKind {
    const ALL: [PayloadKind; 4] = [
        PayloadKind::Created,
        PayloadKind::Paid,
        PayloadKind::Shipped,
        PayloadKind::Cancelled,
    ];

    fn of(payload: &OrderPayload) -> Self {
        match payload {
            OrderPayload::Created(_) => PayloadKind::Created,
            OrderPayload::Paid(_) => PayloadKind::Paid,
            OrderPayload::Shipped(_) => PayloadKind::Shipped,
            OrderPayload::Cancelled(_) => PayloadKind::Cancelled,
        }
    }

    pub(crate) fn record_name(self) -> &'static str {
        crate::order_event::EVENT_TYPES[self as usize]
    }
}

/// Position of each payload record in the current schema's `payload` union.
pub(crate) struct PayloadBranches {
    index_of: [u32; 4],
    kind_at: Vec<Option<PayloadKind>>,
}

impl PayloadBranches {
    /// Union index of `payload` in the current schema.
    pub(crate) fn index_of(&self, payload: &OrderPayload) -> u32 {
        self.index_of[PayloadKind::of(payload) as usize]
    }

    pub(crate) fn kind_at(&self, index: u32) -> Option<PayloadKind> {
        self.kind_at.get(index as usize).copied().flatten()
    }
}

/// The branch table of the current schema, computed once.
pub(crate) fn payload_branches() -> &'static PayloadBranches {
    static BRANCHES: OnceLock<PayloadBranches> = OnceLock::new();
    BRANCHES.get_or_init(|| payload_branches_of(current_schema()))
}

fn payload_branches_of(schema: &Schema) -> PayloadBranches {
    // The embedded schema is a build input covered by tests: a missing branch is a defect.
    let Schema::Record(envelope) = schema else {
        panic!("OrderEvent schema is not a record");
    };
    let payload = envelope
        .fields
        .iter()
        .find(|f| f.name == "payload")
        .expect("OrderEvent schema has a payload field");
    let Schema::Union(union) = &payload.schema else {
        panic!("OrderEvent.payload is not a union");
    };
    let kind_at: Vec<Option<PayloadKind>> = union
        .variants()
        .iter()
        .map(|variant| {
            let name = variant.name()?.name();
            PayloadKind::ALL
                .into_iter()
                .find(|kind| kind.record_name() == name)
        })
        .collect();
    let index_of = PayloadKind::ALL.map(|kind| {
        let index = kind_at
            .iter()
            .position(|k| *k == Some(kind))
            .unwrap_or_else(|| panic!("payload union lacks {}", kind.record_name()));
        u32::try_from(index).expect("union index fits u32")
    });
    PayloadBranches { index_of, kind_at }
}

/// The Avro value of `event` under the current schema: the reference the direct codec
/// (`avro_binary`) is tested against. Production encoding never builds a `Value`.
#[cfg(test)]
pub(crate) fn event_to_value(event: &OrderEvent) -> Value {
    let sales_channel = match &event.sales_channel {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(channel) => Value::Union(1, Box::new(Value::String(channel.clone()))),
    };
    Value::Record(vec![
        ("event_id".into(), Value::Uuid(event.event_id)),
        ("order_id".into(), Value::String(event.order_id.clone())),
        (
            "occurred_at".into(),
            Value::TimestampMillis(event.occurred_at.timestamp_millis()),
        ),
        ("producer".into(), Value::String(event.producer.clone())),
        (
            "payload".into(),
            Value::Union(
                payload_branches().index_of(&event.payload),
                Box::new(payload_to_value(&event.payload)),
            ),
        ),
        ("sales_channel".into(), sales_channel),
    ])
}

#[cfg(test)]
fn payload_to_value(payload: &OrderPayload) -> Value {
    match payload {
        OrderPayload::Created(created) => Value::Record(vec![
            (
                "customer_id".into(),
                Value::String(created.customer_id.clone()),
            ),
            (
                "items".into(),
                Value::Array(created.items.iter().map(line_item_to_value).collect()),
            ),
            ("currency".into(), Value::String(created.currency.clone())),
            ("total_cents".into(), Value::Long(created.total_cents)),
        ]),
        OrderPayload::Paid(paid) => Value::Record(vec![
            ("payment_id".into(), Value::String(paid.payment_id.clone())),
            ("amount_cents".into(), Value::Long(paid.amount_cents)),
        ]),
        OrderPayload::Shipped(shipped) => Value::Record(vec![
            ("carrier".into(), Value::String(shipped.carrier.clone())),
            (
                "tracking_number".into(),
                Value::String(shipped.tracking_number.clone()),
            ),
        ]),
        OrderPayload::Cancelled(cancelled) => Value::Record(vec![(
            "reason".into(),
            Value::String(cancelled.reason.clone()),
        )]),
    }
}

#[cfg(test)]
fn line_item_to_value(item: &LineItem) -> Value {
    Value::Record(vec![
        ("sku".into(), Value::String(item.sku.clone())),
        ("quantity".into(), Value::Int(item.quantity)),
        (
            "unit_price_cents".into(),
            Value::Long(item.unit_price_cents),
        ),
    ])
}

/// The event in `value`, which must have the shape of the current schema (decoded with it or
/// resolved to it). The error says which field is wrong.
pub(crate) fn event_from_value(value: Value) -> Result<OrderEvent, String> {
    let mut fields = Fields::of(value, "OrderEvent")?;
    let event_id = match fields.take("event_id")? {
        Value::Uuid(id) => id,
        Value::String(text) => uuid::Uuid::parse_str(&text)
            .map_err(|e| format!("OrderEvent.event_id {text:?}: {e}"))?,
        other => return Err(unexpected("OrderEvent.event_id", "uuid", &other)),
    };
    let occurred_at = match fields.take("occurred_at")? {
        Value::TimestampMillis(ms) | Value::Long(ms) => DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| format!("OrderEvent.occurred_at {ms} ms is out of range"))?,
        other => {
            return Err(unexpected(
                "OrderEvent.occurred_at",
                "timestamp-millis",
                &other,
            ));
        }
    };
    let sales_channel = match fields.take("sales_channel")? {
        Value::Union(_, inner) => match *inner {
            Value::Null => None,
            Value::String(channel) => Some(channel),
            other => {
                return Err(unexpected(
                    "OrderEvent.sales_channel",
                    "null or string",
                    &other,
                ));
            }
        },
        other => return Err(unexpected("OrderEvent.sales_channel", "union", &other)),
    };
    let payload = match fields.take("payload")? {
        Value::Union(index, inner) => payload_from_value(index, *inner)?,
        other => return Err(unexpected("OrderEvent.payload", "union", &other)),
    };
    Ok(OrderEvent {
        event_id,
        order_id: fields.string("order_id")?,
        occurred_at,
        producer: fields.string("producer")?,
        sales_channel,
        payload,
    })
}

fn payload_from_value(index: u32, value: Value) -> Result<OrderPayload, String> {
    let kind = payload_branches().kind_at(index).ok_or_else(|| {
        format!("OrderEvent.payload: union branch {index} is not a known event type")
    })?;
    let mut fields = Fields::of(value, kind.record_name())?;
    Ok(match kind {
        PayloadKind::Created => {
            let items = match fields.take("items")? {
                Value::Array(items) => items
                    .into_iter()
                    .map(line_item_from_value)
                    .collect::<Result<_, _>>()?,
                other => return Err(unexpected("OrderCreated.items", "array", &other)),
            };
            OrderPayload::Created(OrderCreated {
                customer_id: fields.string("customer_id")?,
                items,
                currency: fields.string("currency")?,
                total_cents: fields.long("total_cents")?,
            })
        }
        PayloadKind::Paid => OrderPayload::Paid(OrderPaid {
            payment_id: fields.string("payment_id")?,
            amount_cents: fields.long("amount_cents")?,
        }),
        PayloadKind::Shipped => OrderPayload::Shipped(OrderShipped {
            carrier: fields.string("carrier")?,
            tracking_number: fields.string("tracking_number")?,
        }),
        PayloadKind::Cancelled => OrderPayload::Cancelled(OrderCancelled {
            reason: fields.string("reason")?,
        }),
    })
}

fn line_item_from_value(value: Value) -> Result<LineItem, String> {
    let mut fields = Fields::of(value, "LineItem")?;
    let quantity = match fields.take("quantity")? {
        Value::Int(quantity) => quantity,
        other => return Err(unexpected("LineItem.quantity", "int", &other)),
    };
    Ok(LineItem {
        sku: fields.string("sku")?,
        quantity,
        unit_price_cents: fields.long("unit_price_cents")?,
    })
}

/// The fields of one decoded record, taken out by name.
struct Fields {
    record: &'static str,
    fields: Vec<(String, Value)>,
}

impl Fields {
    fn of(value: Value, record: &'static str) -> Result<Self, String> {
        match value {
            Value::Record(fields) => Ok(Self { record, fields }),
            other => Err(unexpected(record, "record", &other)),
        }
    }

    fn take(&mut self, name: &str) -> Result<Value, String> {
        self.fields
            .iter_mut()
            .find(|(field, _)| field == name)
            .map(|(_, value)| std::mem::replace(value, Value::Null))
            .ok_or_else(|| format!("{}.{name} is missing", self.record))
    }

    fn string(&mut self, name: &str) -> Result<String, String> {
        match self.take(name)? {
            Value::String(text) => Ok(text),
            other => Err(unexpected(
                &format!("{}.{name}", self.record),
                "string",
                &other,
            )),
        }
    }

    fn long(&mut self, name: &str) -> Result<i64, String> {
        match self.take(name)? {
            Value::Long(n) => Ok(n),
            other => Err(unexpected(
                &format!("{}.{name}", self.record),
                "long",
                &other,
            )),
        }
    }
}

fn unexpected(what: &str, expected: &str, found: &Value) -> String {
    let kind = apache_avro::schema::SchemaKind::from(found);
    format!("{what}: expected {expected}, found {kind:?}")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// One event of every payload kind, with every optional field set in some of them.
    pub(crate) fn sample_events() -> Vec<OrderEvent> {
        let at = chrono::Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        let payloads = [
            OrderPayload::Created(OrderCreated {
                customer_id: "cust-42".into(),
                items: vec![
                    LineItem {
                        sku: "SKU-1".into(),
                        quantity: 2,
                        unit_price_cents: 1_250,
                    },
                    LineItem {
                        sku: "SKU-ü".into(),
                        quantity: 1,
                        unit_price_cents: 0,
                    },
                ],
                currency: "EUR".into(),
                total_cents: 2_500,
            }),
            OrderPayload::Paid(OrderPaid {
                payment_id: "pay-7".into(),
                amount_cents: 2_500,
            }),
            OrderPayload::Shipped(OrderShipped {
                carrier: "DHL".into(),
                tracking_number: "JD0001".into(),
            }),
            OrderPayload::Cancelled(OrderCancelled {
                reason: "customer request".into(),
            }),
        ];
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| OrderEvent {
                event_id: uuid::Uuid::new_v4(),
                order_id: format!("order-{i}"),
                occurred_at: at,
                producer: "unit-test".into(),
                sales_channel: (i % 2 == 0).then(|| "web".to_owned()),
                payload,
            })
            .collect()
    }

    #[test]
    fn every_payload_round_trips_through_value() {
        for event in sample_events() {
            let value = event_to_value(&event);
            assert!(value.validate(current_schema()), "{value:?}");
            assert_eq!(event_from_value(value).unwrap(), event);
        }
    }

    #[test]
    fn branch_table_matches_event_types() {
        let branches = payload_branches();
        for (i, kind) in PayloadKind::ALL.into_iter().enumerate() {
            assert_eq!(kind.record_name(), crate::EVENT_TYPES[i]);
            assert_eq!(branches.kind_at(branches.index_of[i]), Some(kind));
        }
        assert_eq!(branches.kind_at(99), None);
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let error = event_from_value(Value::Long(1)).unwrap_err();
        assert!(error.contains("OrderEvent"), "{error}");
        let mut value = event_to_value(&sample_events()[1]);
        if let Value::Record(fields) = &mut value {
            fields.retain(|(name, _)| name != "producer");
        }
        assert_eq!(
            event_from_value(value).unwrap_err(),
            "OrderEvent.producer is missing"
        );
    }
}
