//! The outbox relay never stalls: a row that cannot be published is parked after its
//! attempts and blocks only its own order; /readyz follows the relay's health; sent rows
//! are deleted after the retention.

mod support;

use std::time::Duration;

use order_producer::order_service::housekeeping;
use reqwest::StatusCode;
use support::{ORDER, Service, eventually, read_keys};

/// The producer's message.max.bytes here; the test's oversized row is larger.
const MESSAGE_MAX_BYTES: usize = 4000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_cannot_be_published_is_parked_and_blocks_only_its_own_order() {
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
    for (event_type, size) in [("OrderCreated", 2 * MESSAGE_MAX_BYTES), ("OrderPaid", 10)] {
        sqlx::query(
            "INSERT INTO order_service.outbox (order_id, event_id, event_type, traceparent, payload)
             VALUES ('ord-big', gen_random_uuid(), $1,
                     '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', $2)",
        )
        .bind(event_type)
        .bind(vec![0u8; size])
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
    assert_eq!(next, ("pending".to_string(), None));
    eventually("the parked gauge", || async {
        (service.metric("orderflow_outbox_parked") == Some(1.0)).then_some(())
    })
    .await;

    // A parked row does not make the relay unhealthy; a relay that cannot work does.
    let readyz = || async {
        reqwest::get(format!("{ops}/readyz"))
            .await
            .expect("readyz")
            .status()
    };
    assert_eq!(readyz().await, StatusCode::OK);
    sqlx::query("ALTER TABLE order_service.outbox RENAME TO outbox_away")
        .execute(&service.pool)
        .await
        .unwrap();
    eventually("/readyz unready while the relay fails", || async {
        (readyz().await == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    sqlx::query("ALTER TABLE order_service.outbox_away RENAME TO outbox")
        .execute(&service.pool)
        .await
        .unwrap();
    eventually("/readyz ready again once the relay works", || async {
        (readyz().await == StatusCode::OK).then_some(())
    })
    .await;

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
    assert_eq!(left, ["parked", "pending"]);

    service.stop().await;
}
