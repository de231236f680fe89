//! The evolution matrix: another team's producer, Confluent's Python `AvroSerializer`
//! (`tests/python/evolution_writer.py`), writes with each kind of schema change through the
//! real registry (`SCHEMA_REGISTRY_URL`, which held our v2 first); this build decodes each
//! record. Every row's outcome is asserted here and tabled in docs/schema-evolution.md:
//! applied (decodes as the event written) or dead-lettered with its category.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use orderflow_schemas::{
    ErrorCategory, OrderEvent, OrderEventDeserializer, OrderPayload, RegistryClient,
    SCHEMA_V1_JSON, SCHEMA_V2_JSON,
};
use orderflow_testkit as testkit;
use serde_json::{Value, json};

const OCCURRED_AT_MS: i64 = 1_700_000_000_123;
const NS: &str = "io.orderflow.orders.";

/// What this build makes of a record.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Decoded as the event written.
    Applied,
    /// A record failure of this category whose message names this text.
    DeadLettered(ErrorCategory, &'static str),
}

fn v2() -> Value {
    serde_json::from_str(SCHEMA_V2_JSON).unwrap()
}

fn field<'a>(schema: &'a mut Value, name: &str) -> &'a mut Value {
    schema["fields"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == name)
        .unwrap()
}

/// Each row: name, writer schema, payload [name, fields], expected outcome.
fn cases() -> Vec<(&'static str, Value, Value, Outcome)> {
    let paid = json!([format!("{NS}OrderPaid"), {"payment_id": "pay-1", "amount_cents": 1999}]);
    let mut optional = v2();
    optional["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "coupon", "type": ["null", "string"], "default": null}));
    let mut branch = v2();
    field(&mut branch, "payload")["type"]
        .as_array_mut()
        .unwrap()
        .push(
            json!({"type": "record", "name": "OrderRefunded", "fields": [
            {"name": "payment_id", "type": "string"},
            {"name": "amount_cents", "type": "long"},
            {"name": "reason", "type": "string"}]}),
        );
    let refund = json!([format!("{NS}OrderRefunded"),
        {"payment_id": "pay-1", "amount_cents": 1999, "reason": "damaged"}]);
    let mut micros = v2();
    field(&mut micros, "occurred_at")["type"]["logicalType"] = json!("timestamp-micros");
    let mut reordered = v2();
    reordered["fields"].as_array_mut().unwrap().reverse();
    let mut renamed = v2();
    let producer = field(&mut renamed, "producer");
    producer["name"] = json!("source_service");
    producer["aliases"] = json!(["producer"]);
    let mut java_string = v2();
    field(&mut java_string, "order_id")["type"] =
        json!({"type": "string", "avro.java.string": "String"});
    vec![
        (
            "v1",
            serde_json::from_str(SCHEMA_V1_JSON).unwrap(),
            paid.clone(),
            Outcome::Applied,
        ),
        ("v2", v2(), paid.clone(), Outcome::Applied),
        (
            "v3 optional field",
            optional,
            paid.clone(),
            Outcome::Applied,
        ),
        (
            "v3 new branch, old branch written",
            branch.clone(),
            paid.clone(),
            Outcome::Applied,
        ),
        (
            "v3 new branch written",
            branch,
            refund,
            Outcome::DeadLettered(ErrorCategory::Schema, "OrderRefunded"),
        ),
        (
            "v3 timestamp-micros",
            micros,
            paid.clone(),
            Outcome::Applied,
        ),
        (
            "fields reordered",
            reordered,
            paid.clone(),
            Outcome::Applied,
        ),
        (
            "field renamed with alias",
            renamed,
            paid.clone(),
            Outcome::DeadLettered(ErrorCategory::Schema, "producer"),
        ),
        ("avro.java.string", java_string, paid, Outcome::Applied),
    ]
}

/// Runs the Python writer over `input`; its JSON answer.
fn python(input: &Value) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/evolution_writer.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(testkit::registry_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "python3 with confluent-kafka (pip install -r schemas/tests/python/requirements.txt)",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "evolution_writer.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the writer prints JSON")
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn each_schema_change_of_a_python_producer_is_applied_or_dead_lettered_as_tabled() {
    let cases = cases();
    let input: Vec<Value> = cases
        .iter()
        .map(|(name, schema, payload, _)| {
            json!({
                "case": name,
                "topic": testkit::unique_name("evolution"),
                "schemas": [SCHEMA_V2_JSON, schema.to_string()],
                "record": {
                    "event_id": uuid::Uuid::new_v4().to_string(),
                    "order_id": "order-evolution",
                    "occurred_at": OCCURRED_AT_MS,
                    "producer": "python-team",
                    // The renamed row's writer knows the field by its new name.
                    "source_service": "python-team",
                    "payload": payload,
                    "sales_channel": "web",
                },
            })
        })
        .collect();
    let written = python(&Value::Array(input));
    let deserializer =
        OrderEventDeserializer::new(RegistryClient::new(testkit::registry_url()).unwrap());
    let mut table = Vec::new();
    for ((name, _, _, expected), answer) in cases.iter().zip(&written) {
        assert_eq!(answer["case"], *name);
        let value = answer["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: the registry refused the schema: {answer}"));
        let outcome = match deserializer.deserialize(&hex(value)).await {
            Ok(event) => {
                check_event(name, &event);
                Outcome::Applied
            }
            Err(error) => {
                assert!(!error.is_transient(), "{name}: {error}");
                let Outcome::DeadLettered(category, names) = expected else {
                    panic!("{name}: expected applied, got {error}");
                };
                assert_eq!(error.category(), *category, "{name}: {error}");
                assert!(error.to_string().contains(names), "{name}: {error}");
                Outcome::DeadLettered(*category, names)
            }
        };
        assert_eq!(&outcome, expected, "{name}");
        table.push(format!("{name}: {outcome:?}"));
    }
    println!("{}", table.join("\n"));
}

fn check_event(name: &str, event: &OrderEvent) {
    assert_eq!(
        event.occurred_at.timestamp_millis(),
        OCCURRED_AT_MS,
        "{name}"
    );
    assert_eq!(event.order_id, "order-evolution", "{name}");
    assert_eq!(event.producer, "python-team", "{name}");
    assert!(
        matches!(&event.payload, OrderPayload::Paid(p) if p.amount_cents == 1999),
        "{name}: {event:?}"
    );
}
