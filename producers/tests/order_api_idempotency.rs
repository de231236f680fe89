//! `Idempotency-Key` on the order API, against real PostgreSQL: a retried write returns
//! the first answer without a second effect; a reused key with another request is 422;
//! a key whose first request is still running is 409.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::{ORDER, Service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_with_the_same_key_answers_the_first_response_without_a_second_effect() {
    // No request timeout: a request held by the test's row lock waits however long the
    // machine takes.
    let service = Service::start(|args| args.request_timeout = Duration::ZERO).await;

    // Create: the retry (re-serialised differently) gets the same order back.
    let first = service.post_with_key("/orders", ORDER, "create-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let reformatted: serde_json::Value = serde_json::from_str(ORDER).unwrap();
    let retry = service
        .post_with_key("/orders", &reformatted.to_string(), "create-1")
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.body);
    assert_eq!(retry.body, first.body, "the stored response is replayed");
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    assert_eq!(service.order_count().await, 1, "one order, not two");
    let order_id = first.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(service.outbox_rows(&order_id).await, 1, "one event");

    // The same key with another body, or on another route, is refused.
    let other_body = ORDER.replace("c-1", "c-2");
    let reused = service
        .post_with_key("/orders", &other_body, "create-1")
        .await;
    assert_eq!(
        reused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reused.body
    );
    assert_eq!(reused.body["field"], "Idempotency-Key");
    // The refused request let go of the key before it answered: a retry at once is
    // judged on its own, never "still in progress".
    assert_eq!(
        service.advisory_locks_held().await,
        0,
        "key lock held after the answer"
    );
    let pay = format!("/orders/{order_id}/pay");
    let pay_body = r#"{"payment_id": "p-1", "amount_cents": 1000}"#;
    let other_route = service.post_with_key(&pay, pay_body, "create-1").await;
    assert_eq!(other_route.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(service.order_count().await, 1);

    // A failed request stores nothing: its key stays free for the corrected request.
    let wrong_amount = service
        .post_with_key(&pay, r#"{"payment_id": "p-1", "amount_cents": 1}"#, "pay-1")
        .await;
    assert_eq!(wrong_amount.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong_amount.body["field"], "amount_cents");

    // Pay while another request with the same key is still running: 409. The test holds
    // the order's row lock, so the first request waits inside its transaction.
    let mut blocker = service.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM order_service.orders WHERE order_id = $1 FOR UPDATE")
        .bind(&order_id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let running = {
        let request = service
            .client
            .post(format!("{}{pay}", service.base))
            .header("content-type", "application/json")
            .header("idempotency-key", "pay-1")
            .body(pay_body);
        tokio::spawn(async move { request.send().await.expect("first pay") })
    };
    wait_for_lock_waiter(&service).await;
    let concurrent = service.post_with_key(&pay, pay_body, "pay-1").await;
    assert_eq!(
        concurrent.status,
        StatusCode::CONFLICT,
        "{}",
        concurrent.body
    );
    assert_eq!(concurrent.body["field"], "Idempotency-Key");
    blocker.commit().await.unwrap();
    let paid = running.await.unwrap();
    assert_eq!(paid.status(), StatusCode::OK);
    let paid: serde_json::Value = paid.json().await.unwrap();

    // A retried pay answers 200 with the same event, where a plain retry is a 409.
    let retry = service.post_with_key(&pay, pay_body, "pay-1").await;
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.body);
    assert_eq!(retry.body, paid);
    assert_eq!(retry.body["status"], "paid");
    let plain = service.post(&pay, pay_body, &[]).await;
    assert_eq!(plain.status, StatusCode::CONFLICT);
    assert_eq!(service.outbox_rows(&order_id).await, 2, "created + paid");

    // Ship and cancel honour keys too.
    let ship = format!("/orders/{order_id}/ship");
    let ship_body = r#"{"carrier": "DHL", "tracking_number": "T-1"}"#;
    let shipped = service.post_with_key(&ship, ship_body, "ship-1").await;
    let again = service.post_with_key(&ship, ship_body, "ship-1").await;
    assert_eq!(
        (shipped.status, again.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(shipped.body, again.body);
    let cancel = service
        .post(
            &format!("/orders/{order_id}/cancel"),
            r#"{"reason": "x"}"#,
            &[],
        )
        .await;
    assert_eq!(
        cancel.status,
        StatusCode::CONFLICT,
        "shipped orders cannot be cancelled"
    );
    let second = service.post_with_key("/orders", ORDER, "create-2").await;
    let second_id = second.body["order_id"].as_str().unwrap().to_string();
    let cancel = format!("/orders/{second_id}/cancel");
    let cancelled = service
        .post_with_key(&cancel, r#"{"reason": "x"}"#, "cancel-1")
        .await;
    let again = service
        .post_with_key(&cancel, r#"{"reason": "x"}"#, "cancel-1")
        .await;
    assert_eq!(
        (cancelled.status, again.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(cancelled.body, again.body);
    assert_eq!(service.outbox_rows(&order_id).await, 3);
    assert_eq!(service.outbox_rows(&second_id).await, 2);

    // After 24 h a key is forgotten: it may be used for a new request.
    sqlx::query(
        "UPDATE order_service.idempotency_keys SET created_at = now() - interval '25 hours'
         WHERE idempotency_key = 'create-1'",
    )
    .execute(&service.pool)
    .await
    .unwrap();
    let later = service
        .post_with_key("/orders", &other_body, "create-1")
        .await;
    assert_eq!(later.status, StatusCode::CREATED, "{}", later.body);
    assert_ne!(later.body["order_id"], first.body["order_id"]);

    // A malformed key is the client's mistake.
    let long = "k".repeat(256);
    let malformed = service.post_with_key("/orders", ORDER, &long).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["field"], "Idempotency-Key");

    service.stop().await;
}

/// Waits until some session of the service's database waits for a lock.
async fn wait_for_lock_waiter(service: &Service) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&service.pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the first request never reached the order's row lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
