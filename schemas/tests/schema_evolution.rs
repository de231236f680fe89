//! The evolution matrix: another team's producer writes with each kind of schema change
//! through the real registry (`SCHEMA_REGISTRY_URL`, which held our v2 first); this build
//! decodes each record. Two producers: Confluent's Python `AvroSerializer`
//! (`tests/python/evolution_writer.py`), and a Java one on kafka-clients and Apache Avro
//! (`tests/java`, which produces to the broker at `KAFKA_BROKERS`; the record is read back
//! from the topic). Every row's outcome is asserted here and tabled in
//! docs/schema-evolution.md: applied (decodes as the event written) or dead-lettered with
//! its category.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use orderflow_schemas::{
    ErrorCategory, OrderEvent, OrderEventDeserializer, OrderPayload, RegistryClient,
    SCHEMA_V1_JSON, SCHEMA_V2_JSON,
};
use orderflow_testkit as testkit;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
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

/// The matrix's input for a writer whose producer is called `producer`: one unique topic
/// (and so subject) per row.
fn matrix_input(cases: &[(&'static str, Value, Value, Outcome)], producer: &str) -> Vec<Value> {
    cases
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
                    "producer": producer,
                    // The renamed row's writer knows the field by its new name.
                    "source_service": producer,
                    "payload": payload,
                    "sales_channel": "web",
                },
            })
        })
        .collect()
}

/// Decodes each row's value with this build and asserts its expected outcome.
async fn assert_outcomes(
    cases: &[(&'static str, Value, Value, Outcome)],
    producer: &str,
    values: Vec<(String, Vec<u8>)>,
) {
    let deserializer =
        OrderEventDeserializer::new(RegistryClient::new(testkit::registry_url()).unwrap());
    let mut table = Vec::new();
    for ((name, _, _, expected), (case, value)) in cases.iter().zip(values) {
        assert_eq!(case, *name);
        let outcome = match deserializer.deserialize(&value).await {
            Ok(event) => {
                check_event(name, producer, &event);
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
    println!("{producer}:\n{}", table.join("\n"));
}

#[tokio::test]
async fn each_schema_change_of_a_python_producer_is_applied_or_dead_lettered_as_tabled() {
    let cases = cases();
    let written = python(&Value::Array(matrix_input(&cases, "python-team")));
    let values = written
        .iter()
        .map(|answer| {
            let case = answer["case"].as_str().unwrap().to_owned();
            let value = answer["value"]
                .as_str()
                .unwrap_or_else(|| panic!("{case}: the registry refused the schema: {answer}"));
            (case, hex(value))
        })
        .collect();
    assert_outcomes(&cases, "python-team", values).await;
}

#[tokio::test]
async fn each_schema_change_of_a_java_producer_is_applied_or_dead_lettered_as_tabled() {
    let cases = cases();
    let input = matrix_input(&cases, "java-team");
    for case in &input {
        testkit::create_topic(case["topic"].as_str().unwrap(), 1).await;
    }
    let written = java(&Value::Array(input.clone()));
    let values = written
        .iter()
        .zip(&input)
        .map(|(answer, case)| {
            let name = answer["case"].as_str().unwrap().to_owned();
            let (Some(partition), Some(offset)) =
                (answer["partition"].as_i64(), answer["offset"].as_i64())
            else {
                panic!("{name}: the Java producer did not write the record: {answer}");
            };
            let topic = case["topic"].as_str().unwrap();
            (name, read_back(topic, partition as i32, offset))
        })
        .collect();
    assert_outcomes(&cases, "java-team", values).await;
}

/// The Java writer's project; `scripts/test.sh` builds it once (Maven, `~/.m2` cache), and
/// this builds it when it is missing or older than its sources.
fn java_classpath() -> String {
    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java");
    let jar = project.join("target/evolution-writer-0.1.0.jar");
    let built = std::fs::metadata(&jar).and_then(|m| m.modified()).ok();
    if built.is_none_or(|built| newest_source(&project) > built) {
        let output = Command::new("mvn")
            .args(["-q", "-B", "package", "-DskipTests"])
            .current_dir(&project)
            .stdin(Stdio::null())
            .output()
            .expect("mvn (Maven) builds the Java evolution writer in schemas/tests/java");
        assert!(
            output.status.success(),
            "mvn package in {} failed:\n{}{}",
            project.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    format!(
        "{}:{}/*",
        jar.display(),
        project.join("target/lib").display()
    )
}

/// The modification time of the newest file of the project's sources and pom.
fn newest_source(project: &Path) -> SystemTime {
    fn walk(path: &Path, newest: &mut SystemTime) {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                walk(&entry.path(), newest);
            }
        } else if let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified()) {
            *newest = (*newest).max(modified);
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    walk(&project.join("src"), &mut newest);
    walk(&project.join("pom.xml"), &mut newest);
    newest
}

/// Runs the Java writer over `input`; its JSON answer.
fn java(input: &Value) -> Vec<Value> {
    let mut child = Command::new("java")
        .args(["-Xmx256m", "-cp", &java_classpath()])
        .arg("io.orderflow.evolution.EvolutionWriter")
        .arg(testkit::registry_url())
        .arg(testkit::kafka_brokers())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java (17+) runs the evolution writer");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "EvolutionWriter failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the writer prints JSON")
}

/// The value of the record at `offset` of `topic`'s `partition`.
fn read_back(topic: &str, partition: i32, offset: i64) -> Vec<u8> {
    let consumer: BaseConsumer = testkit::kafka_config()
        .set("group.id", testkit::unique_name("evolution-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&assignment).expect("assign");
    for _ in 0..100 {
        if let Some(record) = consumer.poll(Duration::from_millis(200)) {
            let record = record.expect("read the record back");
            return record.payload().expect("a value").to_vec();
        }
    }
    panic!("{topic}/{partition}@{offset} not readable within 20 s");
}

fn check_event(name: &str, producer: &str, event: &OrderEvent) {
    assert_eq!(
        event.occurred_at.timestamp_millis(),
        OCCURRED_AT_MS,
        "{name}"
    );
    assert_eq!(event.order_id, "order-evolution", "{name}");
    assert_eq!(event.producer, producer, "{name}");
    assert!(
        matches!(&event.payload, OrderPayload::Paid(p) if p.amount_cents == 1999),
        "{name}: {event:?}"
    );
}
