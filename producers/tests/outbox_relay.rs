//! The outbox relay never stalls: a row that cannot be published is parked after its
//! attempts and blocks only its own order; a leaderless partition holds back only its own
//! orders; /relayz follows the relay's health and /readyz the database; sent rows are deleted after the retention.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use order_producer::order_service::housekeeping;
use order_producer::partition::partition_for_key;
use orderflow_testkit as testkit;
use reqwest::StatusCode;
use support::{ORDER, Service, eventually, read_committed_event_types, read_keys};

/// The producer's message.max.bytes here; the test's oversized row is larger.
const MESSAGE_MAX_BYTES: usize = 4000;

/// The tests of this file run one at a time: each starts services whose relays make
/// 64 transactional producers, and side by side on two CPUs their API requests timed out
/// waiting for the database (503) in the test command's run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_cannot_be_published_is_parked_and_blocks_only_its_own_order() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let service = Service::start(|args| {
        args.kafka
            .options
            .push(("message.max.bytes".into(), MESSAGE_MAX_BYTES.to_string()));
        args.relay_max_attempts = 2;
        // Housekeeping runs at start-up only: the test runs it itself below.
        args.housekeeping_interval = Duration::from_secs(3600);
        args.ops.metrics_addr = "127.0.0.1:0".into();
    })
    .await;
    let ops = service.ops_base.clone().expect("ops endpoint");

    // An order whose first event became too large for the producer (say, the limit was
    // lowered after it was written), followed by its next event.
    sqlx::query(
        "INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
         VALUES ('ord-big', 'paid', 'c-1', 'EUR', 100)",
    )
    .execute(&service.pool)
    .await
    .unwrap();
    // As the service writes them: the order's first unsent row pending, the next waiting.
    for (event_type, size, state) in [
        ("OrderCreated", 2 * MESSAGE_MAX_BYTES, "pending"),
        ("OrderPaid", 10, "waiting"),
    ] {
        sqlx::query(
            "INSERT INTO order_service.outbox (order_id, event_id, event_type, traceparent, payload, state)
             VALUES ('ord-big', gen_random_uuid(), $1,
                     '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', $2, $3)",
        )
        .bind(event_type)
        .bind(vec![0u8; size])
        .bind(state)
        .execute(&service.pool)
        .await
        .unwrap();
    }

    // Other orders flow past it.
    let placed = service.post("/orders", ORDER, &[]).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order_id = placed.body["order_id"].as_str().unwrap().to_string();
    let keys = tokio::task::spawn_blocking({
        let topic = service.topic.clone();
        move || read_keys(&topic, 1)
    })
    .await
    .unwrap();
    assert_eq!(keys, [order_id]);

    // The oversized row is parked after its attempts, with the reason; the order's next
    // event waits behind it (publishing it would break the order's event order).
    let (attempts, reason): (i32, String) = eventually("the oversized row parked", || async {
        sqlx::query_as(
            "SELECT attempts, last_error FROM order_service.outbox
             WHERE order_id = 'ord-big' AND event_type = 'OrderCreated' AND state = 'parked'",
        )
        .fetch_optional(&service.pool)
        .await
        .unwrap()
    })
    .await;
    assert_eq!(attempts, 2);
    assert!(
        reason.contains("too large") || reason.contains("size"),
        "{reason}"
    );
    let next: (String, Option<chrono::DateTime<chrono::Utc>>) = sqlx::query_as(
        "SELECT state, sent_at FROM order_service.outbox
         WHERE order_id = 'ord-big' AND event_type = 'OrderPaid'",
    )
    .fetch_one(&service.pool)
    .await
    .unwrap();
    assert_eq!(next, ("waiting".to_string(), None));
    eventually("the parked gauge", || async {
        (service.metric("orderflow_outbox_parked") == Some(1.0)).then_some(())
    })
    .await;

    // A parked row does not make the relay unhealthy; a relay that cannot work does,
    // and says why on /relayz, while the API's /readyz follows its database and stays
    // ready: it can still take writes.
    let status = |path: &'static str| {
        let url = format!("{ops}{path}");
        async move { reqwest::get(url).await.expect(path).status() }
    };
    assert_eq!(status("/readyz").await, StatusCode::OK);
    assert_eq!(status("/relayz").await, StatusCode::OK);
    sqlx::query("ALTER TABLE order_service.outbox RENAME TO outbox_away")
        .execute(&service.pool)
        .await
        .unwrap();
    eventually("/relayz unhealthy while the relay fails", || async {
        (status("/relayz").await == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    let report: serde_json::Value = reqwest::get(format!("{ops}/relayz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["status"], "failing", "{report}");
    assert!(
        report["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("outbox")),
        "/relayz says why: {report}"
    );
    assert_eq!(
        status("/readyz").await,
        StatusCode::OK,
        "the API stays ready while its database answers"
    );
    sqlx::query("ALTER TABLE order_service.outbox_away RENAME TO outbox")
        .execute(&service.pool)
        .await
        .unwrap();
    eventually("/relayz healthy again once the relay works", || async {
        (status("/relayz").await == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        service.metric("orderflow_outbox_last_send_timestamp_seconds") > Some(0.0),
        "the last successful send is exported"
    );
    assert!(
        service.metric("orderflow_outbox_oldest_unsent_age_seconds") > Some(0.0),
        "the parked row is the oldest unsent one, and it ages"
    );

    // Housekeeping deletes sent rows past the retention, never unsent or parked ones.
    sqlx::query(
        "UPDATE order_service.outbox SET sent_at = now() - interval '2 days' WHERE state = 'sent'",
    )
    .execute(&service.pool)
    .await
    .unwrap();
    let deleted = housekeeping::run_once(&service.pool, Duration::from_secs(24 * 3600))
        .await
        .expect("housekeeping");
    assert_eq!(deleted.sent_outbox_rows, 1);
    let left: Vec<String> =
        sqlx::query_scalar("SELECT state FROM order_service.outbox ORDER BY id")
            .fetch_all(&service.pool)
            .await
            .unwrap();
    assert_eq!(left, ["parked", "waiting"]);

    service.stop().await;
}

/// The sent state of each order's `event_type` row, by order id.
async fn sent_by_order(service: &Service, event_type: &str) -> BTreeMap<String, bool> {
    sqlx::query_as(
        "SELECT order_id, state = 'sent' FROM order_service.outbox WHERE event_type = $1",
    )
    .bind(event_type)
    .fetch_all(&service.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaderless_partition_holds_back_only_its_own_orders() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // Partition 0 lives on broker 1 alone, partition 1 on broker 2 alone: killing broker
    // 2 leaves partition 1 without a leader, and its records wait in the producer.
    let brokers = testkit::kafka_cluster_brokers();
    let topic = testkit::unique_name("orders-leaderless");
    testkit::run_kafka_tool(
        "org.apache.kafka.tools.TopicCommand",
        &[
            "--bootstrap-server",
            &brokers,
            "--create",
            "--topic",
            &topic,
            "--replica-assignment",
            "1,2",
            "--config",
            "min.insync.replicas=1",
        ],
        b"",
    );
    let service = Service::start_on(&brokers, &topic, |args| {
        args.relay_round_wait = Duration::from_secs(1);
        // Far longer than the test waits below for the healthy partition's rows.
        args.producer.delivery_timeout = Duration::from_secs(180);
    })
    .await;

    // Orders on both partitions, all created and published.
    let mut on_partition: BTreeMap<String, i32> = BTreeMap::new();
    while (0..2).any(|p| on_partition.values().filter(|&&q| q == p).count() < 2) {
        assert!(
            on_partition.len() < 40,
            "40 order ids never covered both partitions"
        );
        let placed = service.post("/orders", ORDER, &[]).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
        let order_id = placed.body["order_id"].as_str().unwrap().to_string();
        let partition = partition_for_key(order_id.as_bytes(), 2);
        on_partition.insert(order_id, partition);
    }
    eventually("every OrderCreated published", || async {
        let sent = sent_by_order(&service, "OrderCreated").await;
        (sent.len() == on_partition.len() && sent.values().all(|&s| s)).then_some(())
    })
    .await;

    let killed = tokio::task::spawn_blocking(|| testkit::KilledNode::kill(2))
        .await
        .unwrap();
    for order_id in on_partition.keys() {
        service.pay(order_id).await;
    }
    // The orders of partition 0 are paid and published while partition 1 has no leader;
    // a relay that waited for every report of its round would hold them for the
    // delivery timeout.
    let paid = eventually("the healthy partition's OrderPaid published", || async {
        let sent = sent_by_order(&service, "OrderPaid").await;
        on_partition
            .iter()
            .filter(|(_, p)| **p == 0)
            .all(|(order_id, _)| sent.get(order_id) == Some(&true))
            .then_some(sent)
    })
    .await;
    for (order_id, partition) in &on_partition {
        if *partition == 1 {
            assert_eq!(
                paid.get(order_id),
                Some(&false),
                "{order_id} on the dead broker"
            );
        }
    }
    // And the rounds go on while those reports are missing: the next events of the
    // healthy partition's orders follow.
    for order_id in on_partition.keys() {
        service.ship(order_id).await;
    }
    eventually("the healthy partition's OrderShipped published", || async {
        let sent = sent_by_order(&service, "OrderShipped").await;
        on_partition
            .iter()
            .filter(|(_, p)| **p == 0)
            .all(|(order_id, _)| sent.get(order_id) == Some(&true))
            .then_some(())
    })
    .await;

    killed.restart().await;
    eventually("every event published once broker 2 is back", || async {
        let paid = sent_by_order(&service, "OrderPaid").await;
        let shipped = sent_by_order(&service, "OrderShipped").await;
        (paid.values().chain(shipped.values()).all(|&s| s)).then_some(())
    })
    .await;
    let order_ids: Vec<String> = on_partition.into_keys().collect();
    assert_placed_paid_shipped_once(&brokers, &topic, 2, &order_ids).await;
    service.stop().await;
}

/// Every order of `order_ids` has exactly its three events in `topic` (of
/// `partitions`), in order: created, paid, shipped.
async fn assert_placed_paid_shipped_once(
    brokers: &str,
    topic: &str,
    partitions: i32,
    order_ids: &[String],
) {
    let records = read_committed_event_types(brokers, topic, partitions, 3 * order_ids.len()).await;
    let lifecycle = ["OrderCreated", "OrderPaid", "OrderShipped"].map(String::from);
    for order_id in order_ids {
        assert_eq!(
            records.get(order_id).map(Vec::as_slice),
            Some(lifecycle.as_slice()),
            "{order_id}: each event once, in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_on_one_database_publish_each_orders_events_once_and_in_order() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // Two instances, each with its API and its relay, on one database and topic: the
    // API adds an order's next row while either relay marks the previous one sent and
    // promotes the next, and the relays claim side by side.
    let brokers = testkit::kafka_brokers();
    let topic = testkit::unique_name("orders-two-relays");
    testkit::create_topic(&topic, 3).await;
    let first = Service::start_on(&brokers, &topic, |_| {}).await;
    let second = Service::start_sharing(
        &brokers,
        &topic,
        &first.database_url,
        first.pool.clone(),
        |_| {},
    )
    .await;

    let mut order_ids = Vec::new();
    for _ in 0..30 {
        let placed = first.post("/orders", ORDER, &[]).await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
        order_ids.push(placed.body["order_id"].as_str().unwrap().to_string());
    }
    // Each order paid through one instance and shipped through the other, all at once.
    let lifecycles = order_ids.iter().enumerate().map(|(i, order_id)| {
        let (pay_on, ship_on) = if i % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        async move {
            pay_on.pay(order_id).await;
            ship_on.ship(order_id).await;
        }
    });
    futures::future::join_all(lifecycles).await;

    assert_placed_paid_shipped_once(&brokers, &topic, 3, &order_ids).await;
    let unsent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM order_service.outbox WHERE sent_at IS NULL")
            .fetch_one(&first.pool)
            .await
            .unwrap();
    assert_eq!(unsent, 0);
    second.stop().await;
    first.stop().await;
}
