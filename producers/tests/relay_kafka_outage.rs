//! A full Kafka outage, as the outbox exists for: the API keeps taking writes (201, and
//! `/readyz` stays ready: it follows the database), the relay's `/relayz` says why
//! nothing leaves (503 with the reason and the backlog), and once Kafka is back every
//! change written before and during the outage is in the topic, each order's in the
//! order the API wrote them. The broker is a private one the test kills and restarts.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use orderflow_testkit::{self as testkit, SingleBroker};
use reqwest::StatusCode;
use serde_json::Value;
use support::{ORDER, Service, eventually, read_keys_on};

/// Orders written during the outage; each is placed and paid (two events).
const ORDERS_DURING_OUTAGE: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_kafka_outage_writes_go_on_relayz_says_why_and_all_is_sent_after() {
    let broker = SingleBroker::start().await;
    let topic = testkit::unique_name("orders");
    testkit::create_replicated_topic(&broker.bootstrap, &topic, 1, 1).await;
    let service = Service::start_on(&broker.bootstrap, &topic, |args| {
        args.ops.metrics_addr = "127.0.0.1:0".into();
        // Short time-outs keep the outage short: a delivery, a commit or an abort gives
        // up after 3 s, a transaction waits 1 s for its acknowledgements.
        args.producer.delivery_timeout = Duration::from_secs(3);
        args.relay_round_wait = Duration::from_secs(1);
    })
    .await;
    let ops = service.ops_base.clone().expect("ops endpoint");
    let get = |path: &'static str| {
        let url = format!("{ops}{path}");
        async move {
            let answer = reqwest::get(url).await.expect(path);
            let status = answer.status();
            (status, answer.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Before: one order placed and paid, published.
    let mut written: BTreeMap<String, usize> = BTreeMap::new();
    let first = place_and_pay(&service).await;
    written.insert(first, 2);
    let keys = read_on(&broker.bootstrap, &topic, 2).await;
    assert_eq!(keys.len(), 2);
    assert_eq!(get("/relayz").await.0, StatusCode::OK);

    // The outage.
    broker.kill().await;
    for _ in 0..ORDERS_DURING_OUTAGE {
        let order_id = place_and_pay(&service).await;
        written.insert(order_id, 2);
    }
    assert_eq!(
        get("/readyz").await.0,
        StatusCode::OK,
        "the API stays ready while its database answers"
    );
    let report = eventually("/relayz failing during the outage", || async {
        let (status, report) = get("/relayz").await;
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(report)
    })
    .await;
    assert_eq!(report["status"], "failing", "{report}");
    let reason = report["last_error"].as_str().unwrap_or_default();
    assert!(
        !reason.trim().is_empty(),
        "/relayz says why nothing is sent: {report}"
    );
    eventually("/relayz counts the backlog", || async {
        let (_, report) = get("/relayz").await;
        (report["backlog"].as_i64() == Some(2 * ORDERS_DURING_OUTAGE as i64)).then_some(())
    })
    .await;
    // Writes still go on while the relay fails.
    let during = place_and_pay(&service).await;
    written.insert(during, 2);

    // Kafka returns: everything is sent, and the relay is healthy again.
    broker.restart().await;
    let expected: usize = written.values().sum();
    let keys = read_on(&broker.bootstrap, &topic, expected).await;
    let mut published: BTreeMap<String, usize> = BTreeMap::new();
    for key in keys {
        *published.entry(key).or_default() += 1;
    }
    assert_eq!(
        published, written,
        "every change written before and during the outage is in the topic, once"
    );
    eventually("/relayz healthy once Kafka is back", || async {
        (get("/relayz").await.0 == StatusCode::OK).then_some(())
    })
    .await;
    let unsent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM order_service.outbox WHERE sent_at IS NULL")
            .fetch_one(&service.pool)
            .await
            .unwrap();
    assert_eq!(unsent, 0, "every outbox row is marked sent");
    service.stop().await;
}

/// Places an order and pays it; both must succeed. Returns the order id.
async fn place_and_pay(service: &Service) -> String {
    let placed = service.post("/orders", ORDER, &[]).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order_id = placed.body["order_id"]
        .as_str()
        .expect("order_id")
        .to_string();
    service.pay(&order_id).await;
    order_id
}

async fn read_on(brokers: &str, topic: &str, expected: usize) -> Vec<String> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_keys_on(&brokers, &topic, expected))
        .await
        .expect("reader")
}
