//! `order-producer serve` against real PostgreSQL, Kafka and the registry: orders placed
//! over HTTP reach the topic in order, keyed by order id, through the outbox.

use std::time::{Duration, Instant};

use order_producer::generator::generate::EVENT_TYPE_HEADER;
use order_producer::order_service::{self, ServeArgs};
use orderflow_schemas::{OrderEventDeserializer, OrderPayload, RegistryClient};
use orderflow_testkit as testkit;
use prometheus::Encoder;
use rdkafka::message::{Headers, Message};
use reqwest::StatusCode;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;

/// One record read back: key, value, event-type header.
struct Consumed {
    key: String,
    value: Vec<u8>,
    event_type: String,
}

/// Reads `expected` records of `topic` from the start of every partition, and no
/// record more (60 s bound).
fn read_records(topic: &str, expected: usize) -> Vec<Consumed> {
    testkit::read_expected(topic, PARTITIONS, expected, |message| {
        let event_type = message
            .headers()
            .and_then(|headers| {
                headers
                    .iter()
                    .find(|h| h.key == EVENT_TYPE_HEADER)
                    .and_then(|h| h.value.map(|v| String::from_utf8_lossy(v).into_owned()))
            })
            .unwrap_or_default();
        Consumed {
            key: String::from_utf8(message.key().expect("keyed").to_vec()).unwrap(),
            value: message.payload().unwrap_or_default().to_vec(),
            event_type,
        }
    })
}

async fn post(client: &reqwest::Client, url: String, body: &str) -> (StatusCode, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_placed_paid_and_shipped_reaches_the_topic_in_order_through_the_outbox() {
    let topic = testkit::unique_name("orders");
    testkit::create_topic(&topic, PARTITIONS).await;
    let (database_url, pool) = testkit::fresh_database().await;
    let args = ServeArgs::new(
        "127.0.0.1:0".parse().unwrap(),
        &database_url,
        &testkit::kafka_brokers(),
        &testkit::registry_url(),
        &topic,
    );
    let token = CancellationToken::new();
    let metrics = prometheus::Registry::new();
    let service = order_service::start(&args, &metrics, token.clone())
        .await
        .expect("service starts");
    let base = format!("http://{}", service.api_addr);
    let client = reqwest::Client::new();

    // Bad input: the status and the field at fault, and nothing written.
    let bad_requests = [
        (
            "/orders",
            r#"{"customer_id": "c-1", "currency": "EUR", "items": ["#,
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "/orders",
            r#"{"customer_id": "c-1", "currency": "EUR", "items": [{"sku": "A", "quantity": 0, "unit_price_cents": 100}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].quantity"),
        ),
        (
            "/orders",
            r#"{"customer_id": "c-1", "currency": "eur", "items": [{"sku": "A", "quantity": 1, "unit_price_cents": 100}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("currency"),
        ),
        (
            "/orders",
            r#"{"customer_id": "c-1", "currency": "EUR", "items": [{"sku": "A", "quantity": "two", "unit_price_cents": 100}]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("items[0].quantity"),
        ),
        (
            "/orders/ord-unknown/pay",
            r#"{"payment_id": "p", "amount_cents": 1}"#,
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    for (path, body, status, field) in bad_requests {
        let (got, answer) = post(&client, format!("{base}{path}"), body).await;
        assert_eq!(got, status, "{path} {body}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
        assert_eq!(answer["field"].as_str(), field, "{path} {body}: {answer}");
    }

    let (status, created) = post(
        &client,
        format!("{base}/orders"),
        r#"{"customer_id": "c-1", "currency": "EUR", "items": [{"sku": "A", "quantity": 2, "unit_price_cents": 150}, {"sku": "B", "quantity": 1, "unit_price_cents": 700}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let order_id = created["order_id"].as_str().expect("order_id").to_string();

    // Ship before pay is a conflict; a payment must match the total (1000).
    let ship = format!("{base}/orders/{order_id}/ship");
    let ship_body = r#"{"carrier": "DHL", "tracking_number": "TRK1"}"#;
    let (status, answer) = post(&client, ship.clone(), ship_body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["field"], "status");
    let pay = format!("{base}/orders/{order_id}/pay");
    let (status, answer) = post(
        &client,
        pay.clone(),
        r#"{"payment_id": "p-1", "amount_cents": 999}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["field"], "amount_cents");

    let (status, paid) = post(
        &client,
        pay,
        r#"{"payment_id": "p-1", "amount_cents": 1000}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    let (status, shipped) = post(&client, ship, ship_body).await;
    assert_eq!(status, StatusCode::OK, "{shipped}");
    let order: Value = client
        .get(format!("{base}/orders/{order_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "shipped");
    assert_eq!(order["total_cents"], 1000);

    // The topic holds exactly the three events, in order, keyed by the order id.
    let records = read_records(&topic, 3);
    let deserializer =
        OrderEventDeserializer::new(RegistryClient::new(testkit::registry_url()).unwrap());
    let mut events = Vec::new();
    for record in &records {
        assert_eq!(record.key, order_id);
        let event = deserializer
            .deserialize(&record.value)
            .await
            .expect("decodable");
        assert_eq!(record.event_type, event.event_type());
        events.push(event);
    }
    let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    assert_eq!(
        ids,
        [&created, &paid, &shipped].map(|answer| answer["event_id"].as_str().unwrap().to_string())
    );
    assert!(
        matches!(&events[0].payload, OrderPayload::Created(c) if c.total_cents == 1000 && c.items.len() == 2)
    );
    assert!(matches!(&events[1].payload, OrderPayload::Paid(p) if p.payment_id == "p-1"));
    assert!(matches!(&events[2].payload, OrderPayload::Shipped(s) if s.carrier == "DHL"));

    // Every outbox row is marked sent, and the metrics say so.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (rows, unsent): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE sent_at IS NULL) FROM order_service.outbox",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            rows, 3,
            "one outbox row per accepted change, none for refused ones"
        );
        if unsent == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{unsent} outbox rows still unsent after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The relay refreshes the pending gauge right after its commit: allow it a moment.
    let expected = [
        "orderflow_outbox_published_total 3",
        // Each published row's delay from its write to its transaction's commit.
        "orderflow_outbox_commit_to_ack_seconds_count 3",
        "orderflow_outbox_pending 0",
        r#"orderflow_order_api_requests_total{route="/orders",status="201"} 1"#,
        r#"orderflow_order_api_requests_total{route="/orders/{id}/ship",status="409"} 1"#,
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&metrics.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|line| !text.lines().any(|l| l == *line))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "missing {missing:?} in\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    token.cancel();
    tokio::time::timeout(Duration::from_secs(30), service.wait())
        .await
        .expect("service stops on cancel");
}
