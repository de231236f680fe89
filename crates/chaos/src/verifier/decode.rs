//! The verifier's own decoder: Confluent wire format read by hand, the writer schema
//! fetched from the registry's `/schemas/ids/{id}`, the body read as apache-avro generic
//! values against it, and the contract's stateless rules written out again here. It
//! shares no code with the consumer's decoder (`orderflow_schemas`), so a bug there is
//! not repeated here.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;

use super::model::{Change, Decoded, Event};

/// Why a record could not be classified (the registry could not be asked): retrying helps.
#[derive(Debug)]
pub struct RegistryUnavailable(pub String);

impl std::fmt::Display for RegistryUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "schema registry: {}", self.0)
    }
}

impl std::error::Error for RegistryUnavailable {}

/// Decodes records, caching writer schemas by id (`None`: the registry has no such id).
pub struct Decoder {
    registry: String,
    http: reqwest::Client,
    schemas: HashMap<u32, Option<Arc<Schema>>>,
}

impl Decoder {
    /// A decoder asking the registry at `registry` (the ccompat base URL).
    pub fn new(registry: &str) -> Self {
        Self {
            registry: registry.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            schemas: HashMap::new(),
        }
    }

    /// Classifies one record value.
    pub async fn decode(&mut self, value: Option<&[u8]>) -> Result<Decoded, RegistryUnavailable> {
        let poison = |why: String| Ok(Decoded::Poison { why });
        let Some(value) = value else {
            return poison("no value".into());
        };
        if value.len() < 5 || value[0] != 0 {
            return poison("not Confluent wire format".into());
        }
        let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
        let Some(schema) = self.schema(id).await? else {
            return poison(format!("schema id {id} unknown to the registry"));
        };
        let mut body = &value[5..];
        let reader = match GenericDatumReader::builder(&schema).build() {
            Ok(reader) => reader,
            Err(error) => return poison(format!("writer schema {id}: {error}")),
        };
        let decoded = match reader.read_value(&mut body) {
            Ok(decoded) => decoded,
            Err(error) => return poison(format!("Avro body: {error}")),
        };
        if !body.is_empty() {
            return poison(format!("{} bytes after the Avro body", body.len()));
        }
        match event(&schema, decoded) {
            Ok(event) => Ok(Decoded::Event(event)),
            Err(why) => poison(why),
        }
    }

    async fn schema(&mut self, id: u32) -> Result<Option<Arc<Schema>>, RegistryUnavailable> {
        if let Some(known) = self.schemas.get(&id) {
            return Ok(known.clone());
        }
        let url = format!("{}/schemas/ids/{id}", self.registry);
        let answer = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| RegistryUnavailable(e.to_string()))?;
        let found = if answer.status() == reqwest::StatusCode::NOT_FOUND {
            None
        } else if answer.status().is_success() {
            let body: serde_json::Value = answer
                .json()
                .await
                .map_err(|e| RegistryUnavailable(e.to_string()))?;
            let text = body["schema"]
                .as_str()
                .ok_or_else(|| RegistryUnavailable(format!("{url}: no schema in {body}")))?;
            Some(Arc::new(Schema::parse_str(text).map_err(|e| {
                RegistryUnavailable(format!("schema {id} does not parse: {e}"))
            })?))
        } else {
            return Err(RegistryUnavailable(format!("{url}: {}", answer.status())));
        };
        self.schemas.insert(id, found.clone());
        Ok(found)
    }
}

/// The fields of a record value by name.
fn fields(value: Value) -> Result<HashMap<String, Value>, String> {
    match value {
        Value::Record(fields) => Ok(fields.into_iter().collect()),
        other => Err(format!("expected a record, found {other:?}")),
    }
}

fn text(fields: &HashMap<String, Value>, name: &str) -> Result<String, String> {
    let value = match fields.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Uuid(u)) => u.to_string(),
        Some(other) => return Err(format!("{name}: expected a string, found {other:?}")),
        None => return Err(format!("{name}: missing")),
    };
    if value.trim().is_empty() {
        return Err(format!("{name} is empty"));
    }
    Ok(value)
}

fn long(fields: &HashMap<String, Value>, name: &str) -> Result<i64, String> {
    match fields.get(name) {
        Some(Value::Long(n)) => Ok(*n),
        Some(Value::Int(n)) => Ok(i64::from(*n)),
        other => Err(format!("{name}: expected a number, found {other:?}")),
    }
}

/// The record name of the `payload` union's branch `index` in the writer schema.
fn branch_name(schema: &Schema, index: u32) -> Option<String> {
    let Schema::Record(record) = schema else {
        return None;
    };
    let payload = record.fields.iter().find(|f| f.name == "payload")?;
    let Schema::Union(union) = &payload.schema else {
        return None;
    };
    match union.variants().get(index as usize)? {
        Schema::Record(branch) => Some(branch.name.name().to_string()),
        Schema::Ref { name } => Some(name.name().to_string()),
        _ => None,
    }
}

/// An event from a decoded value, checked against the contract's stateless rules.
fn event(schema: &Schema, value: Value) -> Result<Event, String> {
    let top = fields(value)?;
    let event_id = text(&top, "event_id")?;
    match uuid::Uuid::parse_str(&event_id) {
        Ok(id) if !id.is_nil() => {}
        _ => return Err(format!("event_id {event_id} is no non-nil UUID")),
    }
    let order_id = text(&top, "order_id")?;
    text(&top, "producer")?;
    if let Some(Value::Union(_, channel)) = top.get("sales_channel")
        && let Value::String(channel) = channel.as_ref()
        && channel.trim().is_empty()
    {
        return Err("sales_channel is empty".into());
    }
    let Some(Value::Union(index, payload)) = top.get("payload").cloned() else {
        return Err("payload: missing or not a union".into());
    };
    let name = branch_name(schema, index).ok_or("payload: branch without a record name")?;
    let payload = fields(*payload)?;
    let change = match name.as_str() {
        "OrderCreated" => created(&payload)?,
        "OrderPaid" => {
            text(&payload, "payment_id")?;
            let amount_cents = long(&payload, "amount_cents")?;
            if amount_cents <= 0 {
                return Err(format!("amount_cents {amount_cents} is not positive"));
            }
            Change::Paid { amount_cents }
        }
        "OrderShipped" => {
            text(&payload, "carrier")?;
            text(&payload, "tracking_number")?;
            Change::Shipped
        }
        "OrderCancelled" => {
            text(&payload, "reason")?;
            Change::Cancelled
        }
        other => return Err(format!("unknown payload {other}")),
    };
    Ok(Event {
        event_id,
        order_id,
        change,
    })
}

fn created(payload: &HashMap<String, Value>) -> Result<Change, String> {
    let customer_id = text(payload, "customer_id")?;
    let currency = text(payload, "currency")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "currency {currency:?} is not three capital letters"
        ));
    }
    let Some(Value::Array(items)) = payload.get("items") else {
        return Err("items: missing".into());
    };
    if items.is_empty() {
        return Err("no items".into());
    }
    let (mut sum, mut item_count) = (0i64, 0i64);
    for item in items {
        let item = fields(item.clone())?;
        text(&item, "sku")?;
        let quantity = long(&item, "quantity")?;
        let price = long(&item, "unit_price_cents")?;
        if quantity <= 0 || price < 0 {
            return Err(format!("item quantity {quantity}, price {price}"));
        }
        sum = price
            .checked_mul(quantity)
            .and_then(|line| sum.checked_add(line))
            .ok_or("total overflows")?;
        item_count += quantity;
    }
    let total_cents = long(payload, "total_cents")?;
    if total_cents != sum {
        return Err(format!("total_cents {total_cents}, items sum to {sum}"));
    }
    Ok(Change::Created {
        customer_id,
        currency,
        total_cents,
        item_count,
    })
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value;

    use super::*;

    const V2: &str = include_str!("../../../../schemas/avro/order_event.v2.avsc");

    fn decoder() -> Decoder {
        let mut decoder = Decoder::new("http://127.0.0.1:1/unused");
        let schema = Schema::parse_str(V2).expect("v2 parses");
        decoder.schemas.insert(7, Some(Arc::new(schema)));
        decoder.schemas.insert(8, None);
        decoder
    }

    fn frame(total_cents: i64, quantity: i32) -> Vec<u8> {
        let schema = Schema::parse_str(V2).unwrap();
        let item = Value::Record(vec![
            ("sku".into(), Value::String("SKU-1".into())),
            ("quantity".into(), Value::Int(quantity)),
            ("unit_price_cents".into(), Value::Long(250)),
        ]);
        let created = Value::Record(vec![
            ("customer_id".into(), Value::String("c-1".into())),
            ("items".into(), Value::Array(vec![item])),
            ("currency".into(), Value::String("EUR".into())),
            ("total_cents".into(), Value::Long(total_cents)),
        ]);
        let event = Value::Record(vec![
            ("event_id".into(), Value::Uuid(uuid::Uuid::from_u128(42))),
            ("order_id".into(), Value::String("o-1".into())),
            (
                "occurred_at".into(),
                Value::TimestampMillis(1_700_000_000_000),
            ),
            ("producer".into(), Value::String("test".into())),
            ("payload".into(), Value::Union(0, Box::new(created))),
            (
                "sales_channel".into(),
                Value::Union(0, Box::new(Value::Null)),
            ),
        ]);
        let mut bytes = vec![0, 0, 0, 0, 7];
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .expect("a writer for v2");
        bytes.extend(writer.write_value_to_vec(event).expect("encodes"));
        bytes
    }

    #[tokio::test]
    async fn a_valid_creation_decodes_with_its_totals() {
        let decoded = decoder().decode(Some(&frame(500, 2))).await.unwrap();
        let Decoded::Event(event) = decoded else {
            panic!("{decoded:?}")
        };
        assert_eq!(event.order_id, "o-1");
        assert_eq!(
            event.change,
            Change::Created {
                customer_id: "c-1".into(),
                currency: "EUR".into(),
                total_cents: 500,
                item_count: 2,
            }
        );
    }

    #[tokio::test]
    async fn broken_records_are_poison_with_a_reason() {
        let mut decoder = decoder();
        let why = |d: Decoded| match d {
            Decoded::Poison { why } => why,
            other => panic!("{other:?}"),
        };
        let wrong_total = why(decoder.decode(Some(&frame(501, 2))).await.unwrap());
        assert!(
            wrong_total.contains("total_cents 501, items sum to 500"),
            "{wrong_total}"
        );
        let mut trailing = frame(500, 2);
        trailing.push(0);
        let trailing = why(decoder.decode(Some(&trailing)).await.unwrap());
        assert!(trailing.contains("after the Avro body"), "{trailing}");
        let mut unknown = frame(500, 2);
        unknown[4] = 8;
        let unknown = why(decoder.decode(Some(&unknown)).await.unwrap());
        assert!(unknown.contains("unknown"), "{unknown}");
        let not_wire = why(decoder.decode(Some(b"{\"json\": 1}")).await.unwrap());
        assert!(not_wire.contains("wire format"), "{not_wire}");
    }
}
