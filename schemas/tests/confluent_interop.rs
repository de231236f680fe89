//! orderflow's codec and Confluent's Python client (`confluent-kafka` with `AvroSerializer` and
//! `AvroDeserializer`, driven through `tests/python/confluent_interop.py`) read each other's
//! records on a real topic (`KAFKA_BROKERS`) through the real registry (`SCHEMA_REGISTRY_URL`):
//! Python writes, orderflow decodes; orderflow writes, Python decodes; every field compares.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use orderflow_schemas::{
    LineItem, OrderCancelled, OrderCreated, OrderEvent, OrderEventDeserializer,
    OrderEventSerializer, OrderPaid, OrderPayload, OrderShipped, RegistryClient, wire,
};
use orderflow_testkit as testkit;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

const SCRIPT: &str = "tests/python/confluent_interop.py";
/// The pinned Python packages the script needs.
const REQUIREMENTS: &str = "schemas/tests/python/requirements.txt";

/// Runs the Python side with `args`, feeding `stdin`; returns its stdout as JSON.
fn python(args: &[&str], stdin: &Value) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SCRIPT);
    let mut child = Command::new("python3")
        .arg(&script)
        .args(args)
        .args(["--brokers", &testkit::kafka_brokers()])
        .args(["--registry", &testkit::registry_url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run python3 ({err}): this test drives Confluent's Python client; install \
                 Python 3 and `pip install -r {REQUIREMENTS}` (scripts/test.sh does)"
            )
        });
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.to_string().as_bytes()).unwrap();
    drop(input);
    // The script gives up on its own after 60 s of waiting for records; a client call
    // that never returns must not hang the suite, so the test kills it at 120 s.
    let pid = child.id();
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if waited.recv_timeout(Duration::from_secs(120)).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let output = child.wait_with_output().unwrap();
    let _ = done.send(());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python3 {SCRIPT} {} failed ({}):\n{stderr}",
        args.join(" "),
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "python3 {SCRIPT} printed no JSON ({err}): {}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The event as fastavro sees it, the form the Python side reads and prints: milliseconds for
/// `occurred_at`, text for `event_id`, `[record full name, fields]` for the payload union.
fn fastavro_json(event: &OrderEvent) -> Value {
    let fields = match &event.payload {
        OrderPayload::Created(created) => serde_json::to_value(created),
        OrderPayload::Paid(paid) => serde_json::to_value(paid),
        OrderPayload::Shipped(shipped) => serde_json::to_value(shipped),
        OrderPayload::Cancelled(cancelled) => serde_json::to_value(cancelled),
    }
    .unwrap();
    json!({
        "event_id": event.event_id.to_string(),
        "order_id": event.order_id,
        "occurred_at": event.occurred_at.timestamp_millis(),
        "producer": event.producer,
        "payload": [format!("io.orderflow.orders.{}", event.event_type()), fields],
        "sales_channel": event.sales_channel,
    })
}

/// One event of each payload type, with and without a sales channel.
fn events(producer: &str) -> Vec<OrderEvent> {
    let order_id = testkit::unique_name("order");
    let payloads = [
        OrderPayload::Created(OrderCreated {
            customer_id: "customer-7".into(),
            items: vec![
                LineItem {
                    sku: "SKU-1".into(),
                    quantity: 2,
                    unit_price_cents: 1250,
                },
                LineItem {
                    sku: "SKU-ü".into(),
                    quantity: 1,
                    unit_price_cents: 99,
                },
            ],
            currency: "EUR".into(),
            total_cents: 2599,
        }),
        OrderPayload::Paid(OrderPaid {
            payment_id: "pay-1".into(),
            amount_cents: 2599,
        }),
        OrderPayload::Shipped(OrderShipped {
            carrier: "DHL".into(),
            tracking_number: "JD0002".into(),
        }),
        OrderPayload::Cancelled(OrderCancelled {
            reason: "customer request".into(),
        }),
    ];
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            let mut event = OrderEvent::new(order_id.clone(), producer, payload);
            event.occurred_at = Utc
                .timestamp_millis_opt(1_764_633_600_123 + i as i64)
                .unwrap();
            event.sales_channel = (i % 2 == 0).then(|| "app".to_string());
            event
        })
        .collect()
}

/// The values of `count` records of partition 0 of `topic`, from `offset`.
fn read_values(topic: &str, offset: i64, count: usize) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = testkit::kafka_config()
        .set("group.id", testkit::unique_name("interop"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut values = Vec::new();
    while values.len() < count {
        assert!(
            Instant::now() < deadline,
            "read {} of {count} records of {topic} in 30 s",
            values.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message.expect("consume");
            values.push(message.payload().expect("a value").to_vec());
        }
    }
    values
}

#[tokio::test]
async fn python_and_orderflow_read_each_others_records() {
    let topic = testkit::unique_name("interop");
    testkit::create_topic(&topic, 1).await;
    let registry = RegistryClient::new(testkit::registry_url()).unwrap();

    // Python writes with AvroSerializer (registering v2 under <topic>-value); orderflow decodes.
    let from_python = events("python-interop");
    let written: Vec<Value> = from_python.iter().map(fastavro_json).collect();
    let produced = python(&["produce", "--topic", &topic], &Value::from(written));
    let python_id = produced["schema_id"].as_u64().expect("schema_id") as u32;
    let deserializer = OrderEventDeserializer::new(registry.clone());
    for (value, expected) in read_values(&topic, 0, 4).iter().zip(&from_python) {
        let (schema_id, _) = wire::split_frame(value).expect("Confluent wire format");
        assert_eq!(schema_id, python_id);
        let decoded = deserializer.deserialize(value).await.unwrap_or_else(|err| {
            panic!(
                "orderflow cannot decode Python's {}: {err}",
                expected.event_type()
            )
        });
        assert_eq!(&decoded, expected);
    }

    // orderflow registers the same schema under the same subject: the registry answers
    // Python's id. Python decodes what orderflow writes with AvroDeserializer.
    let serializer = OrderEventSerializer::new(&registry, &topic).await.unwrap();
    assert_eq!(serializer.schema_id(), python_id);
    let from_orderflow = events("orderflow-interop");
    let producer: FutureProducer = testkit::kafka_config().create().expect("producer");
    for event in &from_orderflow {
        let value = serializer.serialize(event);
        let record = FutureRecord::to(&topic)
            .partition(0)
            .key(&event.order_id)
            .payload(&value);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .expect("produce");
    }
    let decoded = python(
        &[
            "consume", "--topic", &topic, "--offset", "4", "--count", "4",
        ],
        &Value::Null,
    );
    let expected: Vec<Value> = from_orderflow.iter().map(fastavro_json).collect();
    assert_eq!(decoded, Value::from(expected));
}
