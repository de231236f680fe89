//! One order followed through a real Jaeger: the HTTP request, the order's transaction
//! and outbox insert, the relay's publish, and the consumer's process span with its
//! database transaction, all in one trace with the right parents and links; and a
//! dead-lettered record's trace, whose DLQ copy keeps the original traceparent.
//!
//! Needs the Jaeger binary scripts/test.sh builds (scripts/lib/jaeger.sh), the order
//! service binary (`order-producer`, built beside `order-consumer` by the workspace
//! build) and the test services.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orderflow_testkit::Jaeger;
use serde_json::Value;
use support::{TestEnv, header, wait_until};

/// `order-producer`, built beside `order-consumer` (cargo builds every binary of the
/// workspace for its tests).
fn producer_binary() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_order-consumer")).with_file_name("order-producer");
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build -p order-producer --bins; scripts/test.sh builds the workspace)",
        path.display()
    );
    path
}

/// A child process killed when dropped, with its log kept for failure messages.
struct Process {
    child: Child,
    log_path: PathBuf,
}

impl Process {
    fn start(command: &mut Command, log_name: &str) -> Self {
        let log_path = std::env::temp_dir().join(format!("{log_name}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start process");
        Self { child, log_path }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGTERM first: a clean stop flushes the spans still queued.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OTEL_* environment of a traced process: export to `jaeger` as `service`, every
/// trace sampled, batches sent every 100 ms so the test does not wait for the default 5 s.
fn traced(command: &mut Command, jaeger: &Jaeger, service: &str) {
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.otlp_endpoint)
        .env("OTEL_SERVICE_NAME", service)
        .env("OTEL_TRACES_SAMPLER", "parentbased_always_on")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("LOG_FORMAT", "json");
}

fn start_consumer(env: &TestEnv, jaeger: &Jaeger, service: &str) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_order-consumer"));
    command.args([
        "--brokers",
        &env.brokers,
        "--topic",
        &env.topic,
        "--group",
        &env.group,
        "--dlq-topic",
        &env.dlq_topic,
        "--database-url",
        &env.db_url,
        "--registry-url",
        &orderflow_testkit::registry_url(),
        "--metrics-addr",
        "",
        "--commit-interval",
        "200ms",
        "--max-attempts",
        "1",
    ]);
    traced(&mut command, jaeger, service);
    Process::start(&mut command, &format!("{}-{service}", env.topic))
}

/// One span of a Jaeger trace, as the tests look at it.
#[derive(Debug, Clone)]
struct SpanView {
    span_id: String,
    operation: String,
    service: String,
    /// (refType, spanID) of each reference: CHILD_OF is the parent, FOLLOWS_FROM a link.
    references: Vec<(String, String)>,
    /// (traceID, spanID) of each FOLLOWS_FROM reference (a link).
    links: Vec<(String, String)>,
    tags: HashMap<String, Value>,
}

impl SpanView {
    fn parent(&self) -> Option<&str> {
        self.references
            .iter()
            .find(|(kind, _)| kind == "CHILD_OF")
            .map(|(_, id)| id.as_str())
    }

    fn refers_to(&self, span_id: &str) -> bool {
        self.references.iter().any(|(_, id)| id == span_id)
    }

    fn tag(&self, key: &str) -> Option<&Value> {
        self.tags.get(key)
    }
}

fn spans_of(trace: &Value) -> Vec<SpanView> {
    let processes = &trace["processes"];
    trace["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|span| SpanView {
            span_id: span["spanID"].as_str().unwrap_or_default().to_string(),
            operation: span["operationName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            service: processes[span["processID"].as_str().unwrap_or_default()]["serviceName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            references: span["references"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["refType"].as_str().unwrap_or_default().to_string(),
                        r["spanID"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            links: span["references"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["refType"] == "FOLLOWS_FROM")
                .map(|r| {
                    (
                        r["traceID"].as_str().unwrap_or_default().to_string(),
                        r["spanID"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            tags: span["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    (
                        t["key"].as_str().unwrap_or_default().to_string(),
                        t["value"].clone(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Polls Jaeger until the trace holds a span of every name in `operations` (60 s bound).
async fn wait_for_trace(jaeger: &Jaeger, trace_id: &str, operations: &[&str]) -> Vec<SpanView> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spans = match jaeger.trace(trace_id).await {
            Some(trace) => spans_of(&trace),
            None => Vec::new(),
        };
        let missing: Vec<&&str> = operations
            .iter()
            .filter(|op| !spans.iter().any(|s| s.operation == **op))
            .collect();
        if missing.is_empty() {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id} still lacks {missing:?} after 60 s; it has {:?}",
            spans
                .iter()
                .map(|s| (&s.service, &s.operation))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn one<'a>(spans: &'a [SpanView], operation: &str) -> &'a SpanView {
    let found: Vec<&SpanView> = spans.iter().filter(|s| s.operation == operation).collect();
    assert_eq!(
        found.len(),
        1,
        "one {operation:?} span expected: {spans:#?}"
    );
    found[0]
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_one_trace_from_the_http_request_to_the_projection_row() {
    let jaeger = Jaeger::start().await;
    let env = TestEnv::new("trace-order", 1).await;
    let (producer_db, _producer_pool) = orderflow_testkit::fresh_database().await;
    let api_service = orderflow_testkit::unique_name("order-service");
    let consumer_service = orderflow_testkit::unique_name("order-consumer");

    let port = orderflow_testkit::free_ports(1)[0];
    let mut serve = Command::new(producer_binary());
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--database-url",
            &producer_db,
            "--brokers",
            &env.brokers,
            "--topic",
            &env.topic,
            "--registry-url",
            &orderflow_testkit::registry_url(),
            "--metrics-addr",
            "",
        ]);
    traced(&mut serve, &jaeger, &api_service);
    let service = Process::start(&mut serve, &format!("{}-serve", env.topic));
    let consumer = start_consumer(&env, &jaeger, &consumer_service);

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until(Duration::from_secs(60), "the order API to answer", || {
        let url = format!("{base}/orders/ord-none");
        let client = client.clone();
        async move { client.get(url).send().await.is_ok() }
    })
    .await;

    // The client's own trace context: the server span must continue it.
    let (create_trace, create_parent) = (random_hex(16), random_hex(8));
    let created: Value = client
        .post(format!("{base}/orders"))
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{create_trace}-{create_parent}-01"))
        .body(r#"{"customer_id": "c-1", "currency": "EUR", "items": [{"sku": "A", "quantity": 2, "unit_price_cents": 500}]}"#)
        .send()
        .await
        .expect("POST /orders")
        .json()
        .await
        .expect("JSON answer");
    let order_id = created["order_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    // The pay goes in once the creation is applied, so that the consumer's batch holds
    // the pay's record alone. A batch that holds records of several traces (now that a
    // transaction may carry several events of one order) is a trace of its own, linked
    // to each record's: the messaging conventions' batch model
    // (`consumers/src/worker/processing/trace_spans.rs`).
    wait_until(
        Duration::from_secs(60),
        "the projection to show the order",
        || async { env.orders().await.contains_key(&order_id) },
    )
    .await;
    let (pay_trace, pay_parent) = (random_hex(16), random_hex(8));
    let paid = client
        .post(format!("{base}/orders/{order_id}/pay"))
        .header("content-type", "application/json")
        .header("traceparent", format!("00-{pay_trace}-{pay_parent}-01"))
        .body(r#"{"payment_id": "p-1", "amount_cents": 1000}"#)
        .send()
        .await
        .expect("POST pay");
    assert_eq!(
        paid.status(),
        200,
        "{}",
        paid.text().await.unwrap_or_default()
    );

    let projection = std::cell::Cell::new(false);
    wait_until(
        Duration::from_secs(60),
        "the projection to show the order paid",
        || async {
            let paid = env
                .orders()
                .await
                .get(&order_id)
                .is_some_and(|(status, _)| status == "paid");
            projection.set(paid);
            paid
        },
    )
    .await;

    let spans = wait_for_trace(
        &jaeger,
        &pay_trace,
        &[
            "POST /orders/{id}/pay",
            "transaction order_service",
            "INSERT order_service.outbox",
            &format!("publish {}", env.topic),
            &format!("process {}", env.topic),
            "transaction orders projection",
        ],
    )
    .await;
    let log = || {
        format!(
            "service log:\n{}\nconsumer log:\n{}",
            service.log(),
            consumer.log()
        )
    };
    let http = one(&spans, "POST /orders/{id}/pay");
    assert_eq!(http.service, api_service);
    assert_eq!(
        http.parent(),
        Some(pay_parent.as_str()),
        "the server span continues the client's trace"
    );
    // An int64 tag; Jaeger's JSON may render it as a number or a string.
    let status = http
        .tag("http.response.status_code")
        .map(|v| v.to_string().trim_matches('"').to_string());
    assert_eq!(status.as_deref(), Some("200"), "{http:?}");
    assert_eq!(
        http.tag("http.route").and_then(Value::as_str),
        Some("/orders/{id}/pay")
    );
    let transaction = one(&spans, "transaction order_service");
    assert_eq!(transaction.parent(), Some(http.span_id.as_str()));
    let insert = one(&spans, "INSERT order_service.outbox");
    assert_eq!(insert.parent(), Some(transaction.span_id.as_str()));
    assert_eq!(
        insert.tag("db.system.name").and_then(Value::as_str),
        Some("postgresql")
    );
    let publish = one(&spans, &format!("publish {}", env.topic));
    assert_eq!(publish.service, api_service);
    assert_eq!(
        publish.parent(),
        Some(insert.span_id.as_str()),
        "the relay continues from the stored context"
    );
    assert_eq!(
        publish.tag("messaging.system").and_then(Value::as_str),
        Some("kafka")
    );
    assert_eq!(
        publish
            .tag("messaging.kafka.message.key")
            .and_then(Value::as_str),
        Some(order_id.as_str())
    );
    assert!(
        publish.tag("messaging.kafka.offset").is_some(),
        "{publish:?}"
    );
    let process = one(&spans, &format!("process {}", env.topic));
    assert_eq!(process.service, consumer_service, "{}", log());
    assert!(
        process.refers_to(&publish.span_id),
        "the process span is parented by or linked to the publish: {process:?}"
    );
    assert_eq!(
        process
            .tag("messaging.consumer.group.name")
            .and_then(Value::as_str),
        Some(env.group.as_str())
    );
    let projection_tx = one(&spans, "transaction orders projection");
    assert_eq!(projection_tx.parent(), Some(process.span_id.as_str()));
    assert_eq!(projection_tx.service, consumer_service);

    // The create request is a trace of its own, also continued from the client.
    let created_spans = wait_for_trace(&jaeger, &create_trace, &["POST /orders"]).await;
    assert_eq!(
        one(&created_spans, "POST /orders").parent(),
        Some(create_parent.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_record_keeps_its_trace_and_its_span_says_why() {
    let jaeger = Jaeger::start().await;
    let env = TestEnv::new("trace-dlq", 1).await;
    let generator_service = orderflow_testkit::unique_name("order-generator");
    let consumer_service = orderflow_testkit::unique_name("order-consumer");
    let _consumer = start_consumer(&env, &jaeger, &consumer_service);

    // One valid event, then one poison record (generate's --poison-ratio 1).
    let mut generate = Command::new(producer_binary());
    generate
        .args([
            "generate",
            "--count",
            "1",
            "--rate",
            "0",
            "--poison-ratio",
            "1",
        ])
        .args(["--topic", &env.topic, "--brokers", &env.brokers])
        .args([
            "--registry-url",
            &orderflow_testkit::registry_url(),
            "--metrics-addr",
            "",
        ]);
    traced(&mut generate, &jaeger, &generator_service);
    let status = generate
        .stdout(Stdio::null())
        .status()
        .expect("run generate");
    assert!(status.success(), "order-producer generate failed: {status}");

    let dead = env.dlq_records(1, Duration::from_secs(60));
    let dead = &dead[0];
    let traceparent = header(dead, "traceparent").expect("the DLQ record keeps the traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    let (trace_id, publish_span_id) = (parts[1], parts[2]);

    // The record's trace: the generator's publish, then the consumer's settle span that
    // says why, whatever batch the record was processed in.
    let spans = wait_for_trace(
        &jaeger,
        trace_id,
        &[
            &format!("publish {}", env.topic),
            &format!("settle {}", env.topic),
        ],
    )
    .await;
    let publish = one(&spans, &format!("publish {}", env.topic));
    assert_eq!(publish.service, generator_service);
    assert_eq!(
        publish.span_id, publish_span_id,
        "the DLQ record carries the original publish context"
    );
    let settle = one(&spans, &format!("settle {}", env.topic));
    assert_eq!(settle.service, consumer_service);
    assert_eq!(settle.parent(), Some(publish.span_id.as_str()));
    let category = header(dead, "dlq-error-category").unwrap_or_default();
    assert_eq!(
        settle.tag("error.type").and_then(Value::as_str),
        Some(category.as_str()),
        "{settle:?}"
    );
    let reason = settle
        .tag("dead_letter.reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(!reason.is_empty(), "the settle span says why: {settle:?}");
    assert_eq!(
        settle.tag("otel.status_code").and_then(Value::as_str),
        Some("ERROR"),
        "{settle:?}"
    );
    assert_eq!(
        settle.tag("dead_letter.outcome").and_then(Value::as_str),
        Some("Written")
    );

    // The settle span links to the DLQ hand-off, a child of the batch's process span,
    // which refers to (is parented by or linked to) the record's publish.
    let (batch_trace, hand_off_id) = settle
        .links
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("settle links to the hand-off: {settle:?}"));
    let batch = wait_for_trace(
        &jaeger,
        &batch_trace,
        &["dead-letter hand-off", &format!("process {}", env.topic)],
    )
    .await;
    let hand_off = batch
        .iter()
        .find(|s| s.span_id == hand_off_id)
        .unwrap_or_else(|| panic!("{batch:#?}"));
    assert_eq!(hand_off.operation, "dead-letter hand-off");
    let process = batch
        .iter()
        .find(|s| Some(s.span_id.as_str()) == hand_off.parent())
        .unwrap_or_else(|| panic!("the hand-off's parent is in its trace: {batch:#?}"));
    assert_eq!(process.operation, format!("process {}", env.topic));
    assert_eq!(process.service, consumer_service);
    assert!(process.refers_to(&publish.span_id), "{process:?}");
}
