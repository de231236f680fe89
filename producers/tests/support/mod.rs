//! A running order service on a fresh database and topic, and an HTTP client for it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use order_producer::order_service::{self, RunningService, ServeArgs};
use orderflow_testkit as testkit;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The service under test.
pub struct Service {
    pub base: String,
    pub client: reqwest::Client,
    /// The service's database, as an admin sees it.
    pub pool: PgPool,
    pub topic: String,
    pub metrics: prometheus::Registry,
    /// The database's URL.
    pub database_url: String,
    /// `http://host:port` of /metrics, /healthz, /readyz, when enabled.
    pub ops_base: Option<String>,
    token: CancellationToken,
    running: RunningService,
}

/// An answer: status, headers, body as JSON (`Value::Null` when the body is not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Service {
    /// Starts the service on a new topic (1 partition) and a fresh database, with
    /// `configure` applied to the defaults.
    pub async fn start(configure: impl FnOnce(&mut ServeArgs)) -> Self {
        let topic = testkit::unique_name("orders");
        testkit::create_topic(&topic, 1).await;
        Self::start_on(&testkit::kafka_brokers(), &topic, configure).await
    }

    /// Starts the service publishing to `topic` (which exists) on `brokers`, with a
    /// fresh database and `configure` applied to the defaults.
    pub async fn start_on(
        brokers: &str,
        topic: &str,
        configure: impl FnOnce(&mut ServeArgs),
    ) -> Self {
        let (database_url, pool) = testkit::fresh_database().await;
        Self::start_sharing(brokers, topic, &database_url, pool, configure).await
    }

    /// A second instance of the service: on `database_url` (whose admin pool is `pool`),
    /// publishing to `topic` on `brokers`.
    pub async fn start_sharing(
        brokers: &str,
        topic: &str,
        database_url: &str,
        pool: PgPool,
        configure: impl FnOnce(&mut ServeArgs),
    ) -> Self {
        let topic = topic.to_string();
        let mut args = ServeArgs::new(
            "127.0.0.1:0".parse().unwrap(),
            database_url,
            brokers,
            &testkit::registry_url(),
            &topic,
        );
        configure(&mut args);
        let token = CancellationToken::new();
        let metrics = prometheus::Registry::new();
        let running = order_service::start(&args, &metrics, token.clone())
            .await
            .expect("service starts");
        Self {
            base: format!("http://{}", running.api_addr),
            ops_base: running.metrics_addr.map(|addr| format!("http://{addr}")),
            client: reqwest::Client::new(),
            pool,
            topic,
            metrics,
            database_url: database_url.to_string(),
            token,
            running,
        }
    }

    /// POSTs `body` as JSON to `path` with the extra `headers`.
    pub async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.expect("request")).await
    }

    /// Pays `order_id` in full (an [`ORDER`] totals 1000) and checks the 200.
    pub async fn pay(&self, order_id: &str) {
        let paid = self
            .post(
                &format!("/orders/{order_id}/pay"),
                r#"{"payment_id": "p-1", "amount_cents": 1000}"#,
                &[],
            )
            .await;
        assert_eq!(paid.status, StatusCode::OK, "pay {order_id}: {}", paid.body);
    }

    /// Ships `order_id` and checks the 200.
    pub async fn ship(&self, order_id: &str) {
        let shipped = self
            .post(
                &format!("/orders/{order_id}/ship"),
                r#"{"carrier": "DHL", "tracking_number": "TRK1"}"#,
                &[],
            )
            .await;
        assert_eq!(
            shipped.status,
            StatusCode::OK,
            "ship {order_id}: {}",
            shipped.body
        );
    }

    /// POSTs `body` to `path` with an `Idempotency-Key`.
    pub async fn post_with_key(&self, path: &str, body: &str, key: &str) -> Answer {
        self.post(path, body, &[("idempotency-key", key)]).await
    }

    /// Sends any request.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        answer(request.send().await.expect("request")).await
    }

    /// Rows of the outbox for `order_id`.
    pub async fn outbox_rows(&self, order_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM order_service.outbox WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Advisory locks of idempotency keys in use, held in the service's database: the
    /// one-key (bigint) form, `objsubid` 1; the relay owns its slots with the two-key
    /// form (`objsubid` 2), which is not counted.
    pub async fn advisory_locks_held(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
             WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
               AND d.datname = current_database()",
        )
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// Rows of the service's `orders` table.
    pub async fn order_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM order_service.orders")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The value of the metric sample `line_prefix` (e.g. `orderflow_outbox_parked`).
    pub fn metric(&self, name: &str) -> Option<f64> {
        use prometheus::Encoder;
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.metrics.gather(), &mut text)
            .unwrap();
        String::from_utf8(text).unwrap().lines().find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|value| value.parse().ok())
        })
    }

    /// Stops the service and waits for it.
    pub async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.running.wait())
            .await
            .expect("service stops on cancel");
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A valid `POST /orders` body of total 1000.
pub const ORDER: &str = r#"{"customer_id": "c-1", "currency": "EUR", "items": [{"sku": "A", "quantity": 2, "unit_price_cents": 500}]}"#;

/// Reads every record of partition 0 of `topic` until `expected` arrived, then checks
/// that nothing more arrives for 2 s; returns the keys (60 s bound).
pub fn read_keys(topic: &str, expected: usize) -> Vec<String> {
    read_keys_on(&testkit::kafka_brokers(), topic, expected)
}

/// [`read_keys`] from the broker at `brokers`, with `read_committed` (only what the
/// relay's transactions committed).
pub fn read_keys_on(brokers: &str, topic: &str, expected: usize) -> Vec<String> {
    let mut base = rdkafka::ClientConfig::new();
    base.set("bootstrap.servers", brokers)
        .set("isolation.level", "read_committed");
    testkit::read_expected_from(&base, topic, 1, expected, |message| {
        String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned()
    })
}

/// Polls `check` every 50 ms until it returns `Some`, failing with `what` after 60 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `event-type` header of every record a read_committed reader gets from
/// `topic`'s `partitions`, by key, in log order: `expected` records, and no record
/// more (60 s bound).
pub async fn read_committed_event_types(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
) -> BTreeMap<String, Vec<String>> {
    let mut base = rdkafka::ClientConfig::new();
    base.set("bootstrap.servers", brokers)
        .set("isolation.level", "read_committed");
    let topic = topic.to_owned();
    let records = tokio::task::spawn_blocking(move || {
        testkit::read_expected_from(&base, &topic, partitions, expected, |message| {
            key_and_event_type(message)
        })
    })
    .await
    .expect("the reader ran");
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, event_type) in records {
        by_key.entry(key).or_default().push(event_type);
    }
    by_key
}

/// A record's key and its `event-type` header.
fn key_and_event_type(message: &BorrowedMessage<'_>) -> (String, String) {
    let event_type = message
        .headers()
        .and_then(|headers| headers.iter().find(|h| h.key == "event-type"))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
    (key, event_type)
}

/// Rows of the outbox not sent yet.
pub async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM order_service.outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count unsent outbox rows")
}

/// Waits until every outbox row is sent; fails with `what` after 60 s.
pub async fn all_sent(pool: &PgPool, what: &str) {
    eventually(what, || async { (unsent(pool).await == 0).then_some(()) }).await;
}

/// Waits until the order API at `base` (a process of its own) answers HTTP at all;
/// fails after 60 s with the process's log at `log`.
pub async fn wait_until_answering(base: &str, log: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{base}/orders/none")).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the order API at {base} did not answer within 60 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
