//! A schema registry that hiccups costs no event: a schema id the registry does not
//! know yet is retried for the not-found grace (a follower catching up), an id it
//! keeps refusing is retried within the failure budget and then dead-lettered as
//! `registry` (never a frozen lane), and records waiting on the registry hold none of
//! the database slots that other keys' records need.

mod support;

use std::time::Duration;

use order_consumer::dead_letter::headers;
use order_consumer::worker::decode::EventDecoder;
use orderflow_schemas::{CURRENT_SCHEMA_JSON, OrderEvent, OrderEventDeserializer, wire};
use support::{TestEnv, gauge_total, header, lifecycle, wait_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The current schema with a unique top-level doc: new content for the registry (a
/// new id), the same binary encoding.
fn unique_schema(tag: &str) -> String {
    let mut schema: serde_json::Value =
        serde_json::from_str(CURRENT_SCHEMA_JSON).expect("current schema is JSON");
    schema["doc"] = serde_json::Value::String(format!("{tag} {}", uuid_like()));
    schema.to_string()
}

fn uuid_like() -> String {
    orderflow_testkit::unique_name("doc")
}

/// `event` in the wire format under `schema_id` (its body as the current schema writes it).
fn framed(env: &TestEnv, schema_id: u32, event: &OrderEvent) -> Vec<u8> {
    let value = env.serializer.serialize(event);
    let (_, body) = wire::split_frame(&value).expect("own frame");
    wire::encode_frame(schema_id, body)
}

fn count_lines(log: &str, text: &str) -> usize {
    log.lines().filter(|line| line.contains(text)).count()
}

/// The registry hands out ids from one sequence: a test that reserves the next id must
/// not race another test's registration (it then read that test's schema under the id
/// it expected unknown, applied the record and waited for a "not found" that never came).
/// The tests of this file run one at a time.
static REGISTRY_SEQUENCE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_registered_after_the_consumer_first_saw_its_id_is_applied() {
    let _sequence = REGISTRY_SEQUENCE.lock().await;
    let env = TestEnv::new("registry-grace", 1).await;
    // Ids are handed out in sequence: the next registration gets `reserved + 1`.
    let reserved = env
        .registry
        .register(
            &format!("{}-reserve-value", env.topic),
            &format!(
                r#"{{"type":"record","name":"Reserve","doc":"{}","fields":[]}}"#,
                uuid_like()
            ),
        )
        .await
        .expect("register a throwaway schema");
    let future_id = reserved + 1;
    let orders: Vec<String> = (0..3).map(|i| format!("late-schema-{i}")).collect();
    for order in &orders {
        let mut events = lifecycle(order, false);
        let created = events.remove(0);
        env.send_raw(
            order.as_bytes(),
            &framed(&env, future_id, &created),
            "OrderCreated",
        )
        .await;
        for event in &events {
            env.send_event(event).await;
        }
    }

    let worker = env.start_worker_at(
        "grace",
        &orderflow_testkit::registry_url(),
        &[],
        &[("SCHEMA_REGISTRY_NOT_FOUND_GRACE", "10m")],
    );
    let looked_up = "not found in the registry";
    wait_until(
        Duration::from_secs(60),
        "the consumer to look the id up (or dead-letter its records)",
        || async { worker.log().contains(looked_up) || env.dlq_record_count() > 0 },
    )
    .await;
    assert_eq!(
        env.dlq_record_count(),
        0,
        "records of a schema id the registry does not know yet were dead-lettered at once; log:\n{}",
        worker.log()
    );

    let registered = env
        .registry
        .register(&format!("{}-late-value", env.topic), &unique_schema("late"))
        .await
        .expect("register the late schema");
    assert_eq!(
        registered, future_id,
        "another registration took the id this test reserved; run it again"
    );
    env.wait_until_shipped(
        &orders,
        Duration::from_secs(60),
        "every order applied once its schema is registered",
    )
    .await;
    worker.terminate();
    let log = worker.log();
    let (status, _) = worker.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}; log:\n{log}");
    assert_eq!(env.dlq_record_count(), 0, "nothing dead-lettered");
    for order in &orders {
        assert_eq!(env.orders().await[order], ("shipped".to_owned(), 3));
    }
    assert_eq!(
        count_lines(&log, looked_up),
        1,
        "one line per schema id, not per record:\n{log}"
    );
}

/// A registry in front of the real one that answers HTTP 500 for one schema id (what
/// the real one cannot be made to do) and passes every other call through.
async fn registry_failing_one_id(failing_id: u32) -> String {
    let real = orderflow_testkit::registry_url();
    let (origin, path) = split_url(&real);
    let listener = bind_below_32768().await;
    let port = listener.local_addr().expect("addr").port();
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (http, origin) = (http.clone(), origin.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let target = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let path = target.split('?').next().unwrap_or_default();
                let (status, body) = if path.ends_with(&format!("/schemas/ids/{failing_id}")) {
                    (
                        500,
                        r#"{"error_code":50001,"message":"stub: storage error for this id"}"#
                            .to_owned(),
                    )
                } else {
                    match http.get(format!("{origin}{target}")).send().await {
                        Ok(answer) => (
                            answer.status().as_u16(),
                            answer.text().await.unwrap_or_default(),
                        ),
                        Err(_) => return,
                    }
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}{path}")
}

/// `http://host:port/path` -> (`http://host:port`, `/path`).
fn split_url(url: &str) -> (String, String) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => (
            url[..after_scheme + i].to_owned(),
            url[after_scheme + i..].trim_end_matches('/').to_owned(),
        ),
        None => (url.to_owned(), String::new()),
    }
}

/// Ports this test picks stay below the ephemeral range.
async fn bind_below_32768() -> TcpListener {
    for attempt in 0..200u32 {
        let port = 20_000 + (std::process::id() * 7 + attempt * 53) % 12_000;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port as u16)).await {
            return listener;
        }
    }
    panic!("no free port between 20000 and 32000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_id_the_registry_keeps_failing_is_dead_lettered_as_registry_after_the_budget() {
    let _sequence = REGISTRY_SEQUENCE.lock().await;
    let env = TestEnv::new("registry-budget", 1).await;
    let failing_id = env
        .registry
        .register(
            &format!("{}-broken-value", env.topic),
            &unique_schema("broken"),
        )
        .await
        .expect("register the schema the stub will fail");
    let registry = registry_failing_one_id(failing_id).await;

    let refused: Vec<String> = (0..3).map(|i| format!("refused-{i}")).collect();
    for order in &refused {
        let created = lifecycle(order, false).remove(0);
        env.send_raw(
            order.as_bytes(),
            &framed(&env, failing_id, &created),
            "OrderCreated",
        )
        .await;
    }
    env.send_lifecycles(&[lifecycle("good-order", false)]).await;

    let worker = env.start_worker_at(
        "budget",
        &registry,
        &[],
        &[("SCHEMA_REGISTRY_FAILURE_BUDGET", "2s")],
    );
    wait_until(
        Duration::from_secs(60),
        "the refused records dead-lettered once the budget is used up",
        || async { env.dlq_record_count() >= 3 },
    )
    .await;
    env.wait_until_shipped(
        &["good-order"],
        Duration::from_secs(30),
        "the good order applied",
    )
    .await;
    worker.terminate();
    let log = worker.log();
    let (status, _) = worker.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}; log:\n{log}");

    let dlq = env.dlq_records(3, Duration::from_secs(20));
    assert_eq!(dlq.len(), 3, "each refused record once");
    for record in &dlq {
        assert_eq!(
            header(record, headers::ERROR_CATEGORY).as_deref(),
            Some("registry")
        );
        let message = header(record, headers::ERROR_MESSAGE).unwrap_or_default();
        assert!(
            message.contains(&format!("schema id {failing_id}")),
            "{message}"
        );
    }
    assert_eq!(
        env.committed_offsets(),
        env.non_empty_end_offsets(),
        "the lane moved on"
    );
    assert_eq!(
        count_lines(&log, "refuses the lookup of this schema id"),
        1,
        "one line per schema id when the trouble starts:\n{log}"
    );
    assert_eq!(
        count_lines(&log, "for the whole budget"),
        1,
        "one line per schema id when the budget runs out:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_waiting_on_the_registry_hold_no_database_slot() {
    let _sequence = REGISTRY_SEQUENCE.lock().await;
    let env = TestEnv::new("registry-slots", 1).await;
    let settings = order_consumer::EngineSettings {
        db_concurrency: 4,
        exit_when_idle: None,
        ..env.settings()
    };
    // Never registered: within the grace its records wait on the registry.
    let unknown_id = 1_900_000_000 + std::process::id() % 1_000_000;
    let metrics = prometheus::Registry::new();
    let decoder = EventDecoder::new(
        OrderEventDeserializer::new(env.registry.clone())
            .with_not_found_grace(Duration::from_secs(600)),
    )
    .with_metrics(&metrics);
    let token = CancellationToken::new();
    let engine = env.spawn_engine_decoding(settings, decoder, token.clone(), metrics.clone());

    env.send_lifecycles(&[lifecycle("warm-up", false)]).await;
    wait_until(Duration::from_secs(60), "the engine to run", || async {
        env.orders().await.contains_key("warm-up")
    })
    .await;
    // One at a time, so each waits in a batch of its own: more than the slots.
    for i in 0..6 {
        let key = format!("waiting-{i}");
        let created = lifecycle(&key, false).remove(0);
        env.send_raw(
            key.as_bytes(),
            &framed(&env, unknown_id, &created),
            "OrderCreated",
        )
        .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let others: Vec<Vec<OrderEvent>> = (0..20)
        .map(|i| lifecycle(&format!("other-{i}"), false))
        .collect();
    env.send_lifecycles(&others).await;
    let other_ids: Vec<String> = (0..20).map(|i| format!("other-{i}")).collect();
    env.wait_until_shipped(
        &other_ids,
        Duration::from_secs(60),
        "other keys' records applied while six records wait on the registry",
    )
    .await;
    assert_eq!(
        gauge_total(&metrics, "orderflow_consumer_registry_waiting_records"),
        6.0,
        "the six records still wait"
    );
    assert_eq!(
        env.dlq_record_count(),
        0,
        "nothing dead-lettered in the grace"
    );
    let id = unknown_id.to_string();
    let waits = counter_with(
        &metrics,
        "orderflow_consumer_registry_waits_total",
        &[("schema_id", &id)],
    );
    assert!(waits >= 6.0, "waits counted per schema id: {waits}");
    let failures = counter_with(
        &metrics,
        "orderflow_consumer_registry_lookup_failures_total",
        &[("schema_id", &id), ("reason", "not_found")],
    );
    assert!(
        failures >= 1.0,
        "failed lookups per schema id and reason: {failures}"
    );
    // A schema id's wait stands for its other records for a second: the registry
    // is asked about the id about once a second, not once per waiting record.
    assert!(
        failures < waits,
        "records of a waiting schema id share its lookups: {failures} lookups for {waits} waits"
    );
    token.cancel();
    engine.await.expect("engine task").expect("engine run");
}

/// The counter `name` of the series whose labels include `labels` (0 when absent).
fn counter_with(metrics: &prometheus::Registry, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric())
        .filter(|metric| {
            labels.iter().all(|(key, value)| {
                metric
                    .get_label()
                    .iter()
                    .any(|label| label.name() == *key && label.value() == *value)
            })
        })
        .map(|metric| metric.get_counter().get_value())
        .sum()
}
