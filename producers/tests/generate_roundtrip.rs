//! `generate` against the real broker and registry: everything written is read back
//! and checked the way a consumer would see it.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use order_producer::generator::generate::{CONTENT_TYPE, CONTENT_TYPE_HEADER, EVENT_TYPE_HEADER};
use order_producer::generator::poison::{PoisonKind, UNKNOWN_SCHEMA_ID};
use order_producer::metrics::ProducerMetrics;
use order_producer::trace_context::{TRACEPARENT_HEADER, is_valid_traceparent};
use order_producer::{GenerateArgs, generate, partition_for_key};
use orderflow_schemas::{
    CURRENT_SCHEMA_JSON, OrderEventDeserializer, RegistryClient, value_subject, wire,
};
use orderflow_testkit as testkit;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 12;

/// One record as read back.
struct Consumed {
    partition: i32,
    offset: i64,
    key: String,
    value: Vec<u8>,
    headers: HashMap<String, String>,
}

/// Reads every record of `topic` (all partitions, from the start to the high watermark).
fn read_topic(topic: &str, partitions: i32) -> Vec<Consumed> {
    let consumer: BaseConsumer = testkit::kafka_config()
        .set("group.id", testkit::unique_name("producer-test"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    let mut remaining = HashMap::new();
    for partition in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .expect("watermarks");
        if high > 0 {
            remaining.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() {
        assert!(
            Instant::now() < deadline,
            "topic not read back in 60 s; still missing {remaining:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message.expect("consume");
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        let value = h
                            .value
                            .map(|v| String::from_utf8(v.to_vec()).expect("UTF-8 header"));
                        (h.key.to_string(), value.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Consumed {
            partition: message.partition(),
            offset: message.offset(),
            key: String::from_utf8(message.key().expect("every record has a key").to_vec())
                .expect("key is UTF-8"),
            value: message.payload().unwrap_or_default().to_vec(),
            headers,
        });
        if let Some(high) = remaining.get(&message.partition())
            && message.offset() + 1 >= *high
        {
            remaining.remove(&message.partition());
        }
    }
    records
}

/// Whether `next` may follow `previous` (None = first event) in one order's life.
fn allowed(previous: Option<&str>, next: &str) -> bool {
    matches!(
        (previous, next),
        (None, "OrderCreated")
            | (Some("OrderCreated"), "OrderPaid" | "OrderCancelled")
            | (Some("OrderPaid"), "OrderShipped" | "OrderCancelled")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_topic_reads_back_keyed_partitioned_framed_and_in_lifecycle_order() {
    let topic = testkit::unique_name("orders");
    testkit::create_topic(&topic, PARTITIONS).await;
    let mut args = GenerateArgs::new(
        &testkit::kafka_brokers(),
        &testkit::registry_url(),
        &topic,
        300,
    );
    args.orders = Some(60);
    args.seed = Some(20_240_601);
    args.duplicate_ratio = 0.1;
    args.poison_ratio = 0.05;
    let prometheus = prometheus::Registry::new();
    let metrics = ProducerMetrics::register(&prometheus).unwrap();

    let summary = generate(&args, &metrics, None, CancellationToken::new())
        .await
        .expect("generate");

    assert_eq!(summary.events(), 300);
    assert_eq!(summary.sent, 300 + summary.duplicates + summary.poison);
    assert_eq!(
        (summary.acked, summary.failed),
        (summary.sent, 0),
        "{summary:?}"
    );
    assert!(summary.duplicates > 0 && summary.poison >= 3, "{summary:?}");
    for kind in PoisonKind::ALL {
        assert!(summary.poison_by_kind[kind.as_str()] >= 1, "{summary:?}");
    }
    let mut exposition = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &prometheus.gather(),
        &mut exposition,
    )
    .unwrap();
    let acked_metric: u64 = String::from_utf8(exposition)
        .unwrap()
        .lines()
        .filter(|line| {
            line.starts_with(order_producer::metrics::RECORDS_TOTAL)
                && line.contains(r#"result="acked""#)
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(acked_metric, summary.sent);

    let registry = RegistryClient::new(testkit::registry_url()).unwrap();
    let schema_id = registry
        .register(&value_subject(&topic), CURRENT_SCHEMA_JSON)
        .await
        .unwrap();
    let deserializer = OrderEventDeserializer::new(registry);
    let read_topic_name = topic.clone();
    let mut records = tokio::task::spawn_blocking(move || read_topic(&read_topic_name, PARTITIONS))
        .await
        .unwrap();
    assert_eq!(records.len() as u64, summary.sent);
    records.sort_by_key(|r| (r.partition, r.offset));

    let mut poison_seen: HashMap<PoisonKind, u64> = HashMap::new();
    let mut first_copy: HashMap<uuid::Uuid, Vec<u8>> = HashMap::new();
    let mut duplicates = 0;
    let mut last_type: HashMap<String, &'static str> = HashMap::new();
    for record in &records {
        assert!(record.key.starts_with("ord-"), "key {:?}", record.key);
        assert_eq!(
            record.partition,
            partition_for_key(record.key.as_bytes(), PARTITIONS as u32)
        );
        assert!(
            is_valid_traceparent(&record.headers[TRACEPARENT_HEADER]),
            "{:?}",
            record.headers
        );
        assert_eq!(record.headers[CONTENT_TYPE_HEADER], CONTENT_TYPE);
        let claimed_type = record.headers[EVENT_TYPE_HEADER].as_str();

        // Poison is recognised from the bytes alone.
        let Ok((id, _)) = wire::split_frame(&record.value) else {
            *poison_seen.entry(PoisonKind::NotAvro).or_default() += 1;
            continue;
        };
        if id == UNKNOWN_SCHEMA_ID {
            *poison_seen.entry(PoisonKind::UnknownSchemaId).or_default() += 1;
            continue;
        }
        assert_eq!(id, schema_id, "frame carries the registered id");
        let event = deserializer
            .deserialize(&record.value)
            .await
            .expect("decodes");
        assert_eq!(event.order_id, record.key);
        assert_eq!(claimed_type, event.event_type());
        if event.validate().is_err() {
            *poison_seen.entry(PoisonKind::InvalidEvent).or_default() += 1;
            continue;
        }
        if let Some(original) = first_copy.get(&event.event_id) {
            assert_eq!(
                original, &record.value,
                "a duplicate repeats the exact bytes"
            );
            duplicates += 1;
            continue;
        }
        first_copy.insert(event.event_id, record.value.clone());
        let previous = last_type.get(&event.order_id).copied();
        assert!(
            allowed(previous, event.event_type()),
            "order {}: {} after {previous:?} at partition {} offset {}",
            event.order_id,
            event.event_type(),
            record.partition,
            record.offset
        );
        last_type.insert(event.order_id.clone(), event.event_type());
    }

    assert_eq!(duplicates, summary.duplicates);
    assert_eq!(
        first_copy.len() as u64,
        summary.sent - summary.duplicates - summary.poison
    );
    for kind in PoisonKind::ALL {
        assert_eq!(
            poison_seen.get(&kind).copied().unwrap_or(0),
            summary.poison_by_kind[kind.as_str()],
            "{kind:?}"
        );
    }
    assert_eq!(last_type.len() as u64, summary.orders_created);
    let partitions_used: HashSet<i32> = records.iter().map(|r| r.partition).collect();
    assert!(
        partitions_used.len() > PARTITIONS as usize / 2,
        "keys spread over partitions"
    );
}

fn order_producer() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_order-producer"));
    command.env("LOG_LEVEL", "warn").env_remove("METRICS_ADDR");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_a_json_summary_and_fails_with_one_line_on_bad_input() {
    let topic = testkit::unique_name("orders-cli");
    testkit::create_topic(&topic, 3).await;
    let output = order_producer()
        .args([
            "generate", "--count", "120", "--rate", "0", "--orders", "10", "--seed", "7",
        ])
        .args(["--topic", &topic, "--brokers", &testkit::kafka_brokers()])
        .args([
            "--registry-url",
            &testkit::registry_url(),
            "--metrics-addr",
            "",
        ])
        .output()
        .expect("run order-producer");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    assert_eq!(summary["sent"], 120);
    assert_eq!(summary["acked"], 120);
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["seed"], 7);
    let by_type: u64 = summary["by_event_type"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_type, 120);
    assert!(summary["events_per_second"].as_f64().unwrap() > 0.0);

    // SIGTERM: stop generating, flush what is in flight, report, exit 0.
    let mut child = order_producer()
        .args([
            "generate", "--count", "1000000", "--rate", "300", "--topic", &topic,
        ])
        .args([
            "--brokers",
            &testkit::kafka_brokers(),
            "--registry-url",
            &testkit::registry_url(),
        ])
        .args(["--metrics-addr", ""])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start order-producer");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "no exit within 30 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success(), "{output:?}");
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("summary after SIGTERM");
    assert_eq!(summary["interrupted"], true);
    let sent = summary["sent"].as_u64().unwrap();
    assert!(sent > 0 && sent < 1_000_000, "{summary}");
    assert_eq!(
        summary["acked"].as_u64().unwrap(),
        sent,
        "everything in flight was flushed"
    );

    // Bad input: a specific one-line reason and a non-zero exit, nothing on stdout.
    let failures: [(&[&str], &str); 3] = [
        (&["--duplicate-ratio", "2"], "--duplicate-ratio"),
        (&["--count", "lots"], "--count"),
        (
            &["--topic", "does-not-exist-anywhere"],
            "does-not-exist-anywhere",
        ),
    ];
    for (flags, expected) in failures {
        let output = order_producer()
            .args(["generate", "--brokers", &testkit::kafka_brokers()])
            .args([
                "--registry-url",
                &testkit::registry_url(),
                "--metrics-addr",
                "",
            ])
            .args(flags)
            .output()
            .expect("run order-producer");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} must fail");
        assert!(output.stdout.is_empty(), "{flags:?}: {output:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}

/// With spans exported, `generate`'s /metrics carries the span-export counters
/// (`orderflow_trace_spans_*`), as `serve`'s and the consumer's do: an operator sees
/// spans dropped or failing there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_with_tracing_on_shows_the_span_export_counters() {
    let topic = testkit::unique_name("orders-traced");
    testkit::create_topic(&topic, 1).await;
    let port = testkit::free_ports(1)[0];
    let mut child = order_producer()
        .args([
            "generate", "--count", "1000000", "--rate", "50", "--topic", &topic,
        ])
        .args([
            "--brokers",
            &testkit::kafka_brokers(),
            "--registry-url",
            &testkit::registry_url(),
        ])
        .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
        // Nobody listens there: every export fails, which the counters count too.
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start order-producer");
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut body = String::new();
    let failed = loop {
        if let Ok(answer) = reqwest::get(&url).await {
            body = answer.text().await.unwrap_or_default();
        }
        let failed = body
            .lines()
            .find_map(|line| line.strip_prefix("orderflow_trace_spans_export_failed_total "))
            .and_then(|value| value.trim().parse::<f64>().ok());
        if failed.is_some_and(|n| n > 0.0) || Instant::now() > deadline {
            break failed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    for name in [
        "orderflow_trace_spans_dropped_total",
        "orderflow_trace_spans_exported_total",
        "orderflow_trace_spans_export_failed_total",
    ] {
        assert!(body.contains(name), "{name} missing from /metrics:\n{body}");
    }
    assert!(
        failed.is_some_and(|n| n > 0.0),
        "the failed exports are counted: {failed:?}"
    );
}
