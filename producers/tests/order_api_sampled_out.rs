//! Head sampling at the order API: a request whose trace is sampled out builds no span,
//! yet hands its trace on. Its outbox row and the relay's record carry a `traceparent`
//! with the sampled flag off (`-00`), so the consumer's parent-based sampler agrees; a
//! request the caller sampled stays sampled under the same 0 % ratio (parent-based), and
//! each hop writes its own span id.
//!
//! Runs the `order-producer serve` binary, because span export is process-wide. The
//! spans go to a closed port: whether the collector takes them does not matter here.

mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orderflow_runtime::bounded_read::{BoundedReader, ReadScope};
use orderflow_testkit as testkit;
use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Headers};

/// The service process, stopped when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A record's key and its `traceparent` header.
fn key_and_traceparent(message: &BorrowedMessage<'_>) -> (String, String) {
    let traceparent = message
        .headers()
        .and_then(|headers| headers.iter().find(|h| h.key == "traceparent"))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
    (key, traceparent)
}

/// The `traceparent` of every record of `topic` by key, once there are `count`.
async fn record_traceparents(topic: &str, count: usize) -> HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let records = BoundedReader::open(
            &testkit::kafka_config(),
            &testkit::unique_name("sampled-out-test"),
            topic,
            &ReadScope::default(),
            Duration::from_secs(30),
            key_and_traceparent,
        )
        .expect("open a reader")
        .collect()
        .await
        .unwrap_or_else(|error| panic!("reading {topic}: {error}"));
        if records.len() >= count {
            return records.into_iter().collect();
        }
        assert!(
            Instant::now() < deadline,
            "the relay published {} of {count} records in 60 s",
            records.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `(trace id, span id, flags)` of a `traceparent`.
fn parts(traceparent: &str) -> (&str, &str, &str) {
    let fields: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(fields.len(), 4, "{traceparent:?}");
    assert_eq!(fields[1].len(), 32, "{traceparent:?}");
    assert_eq!(fields[2].len(), 16, "{traceparent:?}");
    (fields[1], fields[2], fields[3])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_out_request_hands_its_trace_on_with_the_sampled_flag_off() {
    let topic = testkit::unique_name("orders-sampled-out");
    testkit::create_topic(&topic, 1).await;
    let (database_url, pool) = testkit::fresh_database().await;
    let port = testkit::free_ports(1)[0];
    let log_path = std::env::temp_dir().join(format!("{topic}-serve.log"));
    let log = std::fs::File::create(&log_path).expect("log file");
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_order-producer"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &database_url, "--topic", &topic])
            .args(["--brokers", &testkit::kafka_brokers()])
            .args([
                "--registry-url",
                &testkit::registry_url(),
                "--metrics-addr",
                "",
            ])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
            // No new trace is sampled; a caller's sampled one is (parent-based).
            .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
            .env("OTEL_TRACES_SAMPLER_ARG", "0")
            .env("LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start order-producer serve"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    support::wait_until_answering(&base, &log_path).await;
    let order = r#"{"customer_id": "c-1", "currency": "EUR", "items": [{"sku": "A", "quantity": 1, "unit_price_cents": 500}]}"#;
    let place = |traceparent: Option<&'static str>| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let mut request = client
                .post(format!("{base}/orders"))
                .header("content-type", "application/json")
                .body(order);
            if let Some(traceparent) = traceparent {
                request = request.header("traceparent", traceparent);
            }
            let response = request.send().await.expect("POST /orders");
            assert_eq!(response.status(), 201);
            let body: serde_json::Value = response.json().await.expect("JSON answer");
            body["order_id"].as_str().expect("order_id").to_string()
        }
    };
    let caller_out = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let caller_in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let new_trace = place(None).await;
    let sampled_out = place(Some(caller_out)).await;
    let sampled = place(Some(caller_in)).await;

    let rows: HashMap<String, String> =
        sqlx::query_as("SELECT order_id, traceparent FROM order_service.outbox")
            .fetch_all(&pool)
            .await
            .expect("outbox rows")
            .into_iter()
            .collect();
    let records = record_traceparents(&topic, 3).await;

    // A new trace the sampler leaves out: valid ids, the flag off, in the row and the
    // record alike (no span in between made ids of its own).
    let (trace, _, flags) = parts(&rows[&new_trace]);
    assert_ne!(trace, "0".repeat(32));
    assert_eq!(flags, "00", "row of a new trace: {}", rows[&new_trace]);
    assert_eq!(records[&new_trace], rows[&new_trace]);

    // The caller's trace, sampled out by the caller: its trace id, the flag off.
    assert_eq!(rows[&sampled_out], caller_out);
    assert_eq!(records[&sampled_out], caller_out);

    // The caller's sampled trace: still sampled at the row (the insert span's id) and at
    // the record (the relay's publish span's id).
    let (row_trace, row_span, row_flags) = parts(&rows[&sampled]);
    let (record_trace, record_span, record_flags) = parts(&records[&sampled]);
    assert_eq!(row_trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(record_trace, row_trace);
    assert_eq!((row_flags, record_flags), ("01", "01"));
    assert_ne!(
        row_span, "00f067aa0ba902b7",
        "the row carries the insert span"
    );
    assert_ne!(record_span, row_span, "the record carries the publish span");
}
