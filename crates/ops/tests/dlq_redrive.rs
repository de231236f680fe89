//! `orderflow dlq redrive` and `dlq list` against the real broker: the chosen records
//! go back to their source topic byte for byte with their original headers, bookkeeping
//! stripped and the redrive count raised; records at the limit stay put. The lag
//! engine's DLQ count drops by what a redrive replayed and what DeleteRecords removed.

use std::time::{Duration, Instant};

use orderflow_contracts::dead_letter::headers;
use orderflow_lag::{EngineConfig, LagEngine};
use orderflow_ops::dead_letter::REDRIVE_COUNT_HEADER;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

/// A DLQ-shaped record as the consumer writes it.
struct Dead {
    partition: i32,
    key: &'static str,
    value: &'static [u8],
    redrive_count: Option<&'static str>,
    source: bool,
    category: &'static str,
    source_offset: i64,
}

fn dlq_headers(record: &Dead, source_topic: &str) -> OwnedHeaders {
    let mut out = OwnedHeaders::new()
        .insert(Header {
            key: "traceparent",
            value: Some(format!("00-{:032x}-00f067aa0ba902b7-01", record.source_offset).as_str()),
        })
        .insert(Header {
            key: "event-type",
            value: Some("OrderPlaced"),
        });
    if let Some(count) = record.redrive_count {
        out = out.insert(Header {
            key: REDRIVE_COUNT_HEADER,
            value: Some(count),
        });
    }
    let mut added = vec![
        (headers::SOURCE_PARTITION, record.partition.to_string()),
        (headers::SOURCE_OFFSET, record.source_offset.to_string()),
        (headers::SOURCE_TIMESTAMP, "1700000000000".to_owned()),
        (headers::CONSUMER_GROUP, "order-projection".to_owned()),
        (headers::ERROR_CATEGORY, record.category.to_owned()),
        (headers::ERROR_MESSAGE, format!("{} failed", record.key)),
        (headers::ATTEMPTS, "1".to_owned()),
        (
            headers::FIRST_FAILURE_AT,
            "2024-05-01T10:00:00+00:00".to_owned(),
        ),
        (
            headers::LAST_FAILURE_AT,
            "2024-05-01T10:00:00+00:00".to_owned(),
        ),
        (headers::SERVICE_VERSION, "0.1.0".to_owned()),
    ];
    if record.source {
        added.insert(0, (headers::SOURCE_TOPIC, source_topic.to_owned()));
    }
    for (key, value) in added {
        out = out.insert(Header {
            key,
            value: Some(value.as_str()),
        });
    }
    out
}

async fn orderflow(args: &[&str]) -> (bool, String, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(args)
        .args(["--brokers", &orderflow_testkit::kafka_brokers()])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("orderflow finished within 90 s")
        .expect("orderflow started");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Every record of `topic` (up to its current end), by assignment from the start.
fn read_all(topic: &str, partitions: i32) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = orderflow_testkit::kafka_config()
        .set(
            "group.id",
            orderflow_testkit::unique_name("dlq-test-reader"),
        )
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    let mut expected = 0;
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .expect("watermarks");
        expected += high - low;
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while (seen.len() as i64) < expected {
        assert!(
            Instant::now() < deadline,
            "read {} of {expected} records of {topic}",
            seen.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            seen.push(message.expect("fetch").detach());
        }
    }
    seen
}

fn header_pairs(message: &rdkafka::message::OwnedMessage) -> Vec<(String, String)> {
    message
        .headers()
        .map(|found| {
            found
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
                    (h.key.to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_replays_chosen_records_and_list_shows_the_dlq() {
    let source = orderflow_testkit::unique_name("orders");
    let dlq = format!("{source}.dlq");
    orderflow_testkit::create_topic(&source, 2).await;
    orderflow_testkit::create_topic(&dlq, 2).await;

    let dead = [
        // Selected and replayed: first redrive.
        Dead {
            partition: 1,
            key: "order-a",
            value: &[0, 0, 0, 0, 1, 0xff, 0x00, 0x2a],
            redrive_count: None,
            source: true,
            category: "validation",
            source_offset: 10,
        },
        // Selected and replayed: already redriven once.
        Dead {
            partition: 0,
            key: "order-b",
            value: b"\x00\x00\x00\x00\x02bee",
            redrive_count: Some("1"),
            source: true,
            category: "validation",
            source_offset: 11,
        },
        // Selected, at the limit: stays in the DLQ.
        Dead {
            partition: 0,
            key: "order-c",
            value: b"c",
            redrive_count: Some("3"),
            source: true,
            category: "validation",
            source_offset: 12,
        },
        // Another category: not selected.
        Dead {
            partition: 1,
            key: "order-d",
            value: b"d",
            redrive_count: None,
            source: true,
            category: "processing",
            source_offset: 13,
        },
        // Selected, nowhere to go.
        Dead {
            partition: 0,
            key: "order-e",
            value: b"e",
            redrive_count: None,
            source: false,
            category: "validation",
            source_offset: 14,
        },
    ];
    let producer: FutureProducer = orderflow_testkit::kafka_config()
        .create()
        .expect("producer");
    for record in &dead {
        producer
            .send(
                FutureRecord::to(&dlq)
                    .partition(record.partition)
                    .key(record.key)
                    .payload(record.value)
                    .headers(dlq_headers(record, &source)),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(err, _)| panic!("write DLQ record {}: {err}", record.key));
    }

    let (ok, stdout, stderr) = orderflow(&[
        "dlq",
        "redrive",
        "--topic",
        &dlq,
        "--category",
        "validation",
        "--rate",
        "100",
        "--max-redrives",
        "3",
    ])
    .await;
    assert!(ok, "redrive failed: {stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).expect("JSON summary");
    assert_eq!(summary["selected"], 4, "{summary}");
    assert_eq!(summary["redriven"], 2, "{summary}");
    assert_eq!(summary["skipped_max_redrives"], 1, "{summary}");
    assert_eq!(summary["skipped_no_source"], 1, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(stderr.contains("already redriven 3 times"), "{stderr}");

    let mut replayed = read_all(&source, 2);
    replayed.sort_by_key(|m| m.key().map(<[u8]>::to_vec));
    assert_eq!(replayed.len(), 2, "only order-a and order-b come back");
    for (message, (original, count)) in replayed.iter().zip([(&dead[0], "1"), (&dead[1], "2")]) {
        assert_eq!(message.key(), Some(original.key.as_bytes()));
        assert_eq!(
            message.payload(),
            Some(original.value),
            "bytes of {}",
            original.key
        );
        assert_eq!(
            message.partition(),
            original.partition,
            "same partition as the original"
        );
        let pairs = header_pairs(message);
        let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["traceparent", "event-type", REDRIVE_COUNT_HEADER],
            "{}",
            original.key
        );
        assert_eq!(pairs[1].1, "OrderPlaced");
        assert_eq!(pairs[2].1, count, "redrive count of {}", original.key);
    }

    let (ok, stdout, stderr) = orderflow(&["dlq", "list", "--topic", &dlq, "--json"]).await;
    assert!(ok, "list failed: {stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), dead.len() + 1, "{stdout}");
    let listed: Vec<(&str, i64)> = lines[..dead.len()]
        .iter()
        .map(|l| {
            (
                l["key"].as_str().unwrap(),
                l["source_offset"].as_i64().unwrap(),
            )
        })
        .collect();
    for record in &dead {
        assert!(
            listed.contains(&(record.key, record.source_offset)),
            "{record_key} missing: {stdout}",
            record_key = record.key
        );
    }
    let summary = &lines[dead.len()]["summary"];
    assert_eq!(summary["listed"], 5);
    assert_eq!(summary["by_category"]["validation"], 4);
    assert_eq!(summary["by_category"]["processing"], 1);
    assert_eq!(summary["by_source_topic"][&source], 4);
}

/// The count of `source`'s DLQ that the lag engine serves.
async fn dlq_count(source: &str) -> i64 {
    let config = EngineConfig {
        // No group of interest: only the DLQ counts are read.
        groups: vec![orderflow_testkit::unique_name("dlq-count-none")],
        ..EngineConfig::default()
    };
    let mut engine =
        LagEngine::new(&orderflow_testkit::kafka_config(), config).expect("lag engine");
    let snapshot = engine.poll().await.expect("poll");
    snapshot
        .dlq
        .iter()
        .find(|d| d.source_topic == source)
        .unwrap_or_else(|| panic!("no DLQ count for {source} in {:?}", snapshot.dlq))
        .records
}

#[tokio::test]
async fn dlq_count_drops_after_a_redrive_and_after_delete_records() {
    let source = orderflow_testkit::unique_name("orders");
    let dlq = format!("{source}.dlq");
    orderflow_testkit::create_topic(&source, 1).await;
    orderflow_testkit::create_topic(&dlq, 1).await;
    let dead = |key, redrive_count, source_offset| Dead {
        partition: 0,
        key,
        value: b"v",
        redrive_count,
        source: true,
        category: "processing",
        source_offset,
    };
    // Offsets 0..5; the record at offset 2 is at the redrive limit and stays.
    let records = [
        dead("order-a", None, 1),
        dead("order-b", None, 2),
        dead("order-c", Some("3"), 3),
        dead("order-d", None, 4),
        dead("order-e", None, 5),
    ];
    let producer: FutureProducer = orderflow_testkit::kafka_config()
        .create()
        .expect("producer");
    for record in &records {
        producer
            .send(
                FutureRecord::to(&dlq)
                    .partition(0)
                    .key(record.key)
                    .payload(record.value)
                    .headers(dlq_headers(record, &source)),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(err, _)| panic!("write DLQ record {}: {err}", record.key));
    }
    assert_eq!(dlq_count(&source).await, 5);

    let (ok, stdout, stderr) = orderflow(&[
        "dlq",
        "redrive",
        "--topic",
        &dlq,
        "--rate",
        "100",
        "--max-redrives",
        "3",
    ])
    .await;
    assert!(ok, "redrive failed: {stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).expect("JSON summary");
    assert_eq!(summary["redriven"], 4, "{summary}");
    // The replayed prefix ends at the record left in the DLQ.
    assert_eq!(summary["positions"]["0"], 2, "{summary}");
    assert_eq!(dlq_count(&source).await, 3, "order-c and the two after it");

    let admin: AdminClient<DefaultClientContext> =
        orderflow_testkit::kafka_config().create().expect("admin");
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&dlq, 0, Offset::Offset(4))
        .expect("offsets");
    admin
        .delete_records(&before, &AdminOptions::new())
        .await
        .expect("DeleteRecords");
    assert_eq!(dlq_count(&source).await, 1, "only order-e is left");
}
