//! The order API's record size check counts the whole trace context the outbox row
//! stores. With spans exported, the row keeps the request's `tracestate` and the relay
//! writes it as a header; a large `tracestate` (the W3C format allows 32 members of up to
//! 512 bytes) can push a small event past the topic's limit. Such an order must be
//! refused with 413 at the API, not accepted and then parked by the relay for ever.
//!
//! Runs the `order-producer serve` binary, because span export is process-wide.

mod support;

use std::process::{Child, Command, Stdio};

use orderflow_testkit as testkit;

/// The producer's record size limit for this test: a small order fits, the same order
/// with a 3.8 kB `tracestate` does not.
const MESSAGE_MAX_BYTES: usize = 4096;

/// The service process, stopped when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A valid `tracestate` of 15 members, each a 3-byte key and a 250-byte value.
fn large_tracestate() -> String {
    (0..15)
        .map(|i| format!("k{i:02}={}", "v".repeat(250)))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_whose_record_would_exceed_the_limit_with_its_tracestate_is_refused() {
    let topic = testkit::unique_name("orders-tracestate");
    testkit::create_topic(&topic, 1).await;
    let (database_url, _pool) = testkit::fresh_database().await;
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
            .args([
                "--kafka-option",
                &format!("message.max.bytes={MESSAGE_MAX_BYTES}"),
            ])
            // Spans are exported (to nobody: the export failing does not matter here),
            // so the outbox row stores the insert span's context with its tracestate.
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
            .env("OTEL_TRACES_SAMPLER", "parentbased_always_on")
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
    let post = |tracestate: Option<String>| {
        let mut request = client
            .post(format!("{base}/orders"))
            .header("content-type", "application/json")
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .body(order);
        if let Some(tracestate) = tracestate {
            request = request.header("tracestate", tracestate);
        }
        request.send()
    };

    // The order alone fits the limit.
    let small = post(Some("k=v".into())).await.expect("POST /orders");
    assert_eq!(
        small.status(),
        201,
        "{}",
        small.text().await.unwrap_or_default()
    );

    // The same order with a large tracestate would be a record above the limit.
    let large = post(Some(large_tracestate())).await.expect("POST /orders");
    let status = large.status();
    let body = large.text().await.unwrap_or_default();
    assert_eq!(
        status, 413,
        "the tracestate the row stores makes the record too large: {body}"
    );
    assert!(body.contains("limit of 4096 bytes"), "{body}");
}
