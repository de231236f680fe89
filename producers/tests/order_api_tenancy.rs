//! The order API is scoped to the authenticated client, against a real service with two
//! tokens: an idempotency key belongs to the client that sent it (two clients use the
//! same key independently, and neither gets the other's stored answer), and an order
//! belongs to the client that placed it (any other client gets 404 for it: read, pay,
//! ship and cancel). Orders written before the scoping belong to the client `default`.

mod support;

use std::path::PathBuf;

use orderflow_testkit as testkit;
use reqwest::StatusCode;
use support::{Answer, ORDER, Service};

const ALICE: &str = "alice:3f9c1a7be2d84c05a61e9b7d2c4f8e10";
const BOB: &str = "bob:8b2e6f0c4d1a9e7f3b5c2d8a6e4f1c09";
const DEFAULT: &str = "default:5d7a2c9e1f4b8a6c3e0d9f2b7a4c6e81";

/// A token file naming the clients of `entries` (`name:token`), in a fresh directory.
fn token_file(entries: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(testkit::unique_name("order-api-tenancy"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(&file, entries.join("\n") + "\n").unwrap();
    file
}

/// `Authorization` of the `name:token` entry.
fn bearer(entry: &str) -> String {
    format!("Bearer {}", entry.split_once(':').unwrap().1)
}

impl Service {
    async fn post_as(&self, who: &str, path: &str, body: &str, key: Option<&str>) -> Answer {
        let auth = bearer(who);
        let mut headers = vec![("authorization", auth.as_str())];
        if let Some(key) = key {
            headers.push(("idempotency-key", key));
        }
        self.post(path, body, &headers).await
    }

    async fn get_as(&self, who: &str, path: &str) -> Answer {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .header("authorization", bearer(who)),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_belong_to_the_client_that_sent_them() {
    let service = Service::start(|args| {
        args.api_tokens_file = Some(token_file(&[ALICE, BOB]));
    })
    .await;

    let first = service
        .post_as(ALICE, "/orders", ORDER, Some("order-1"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    // Bob re-sends Alice's key and body: a change of his own, not Alice's stored answer.
    let bob = service
        .post_as(BOB, "/orders", ORDER, Some("order-1"))
        .await;
    assert_eq!(bob.status, StatusCode::CREATED, "{}", bob.body);
    assert!(
        bob.headers.get("idempotent-replayed").is_none(),
        "Bob was given Alice's stored answer: {}",
        bob.body
    );
    assert_ne!(bob.body["order_id"], first.body["order_id"]);
    assert_eq!(service.order_count().await, 2);

    // Bob's retry replays his own answer; the same key with another body is his 422,
    // which cannot block Alice's key.
    let retry = service
        .post_as(BOB, "/orders", ORDER, Some("order-1"))
        .await;
    assert_eq!(retry.body, bob.body);
    assert_eq!(retry.headers["idempotent-replayed"], "true");
    let other_body = ORDER.replace("c-1", "c-2");
    let taken = service
        .post_as(BOB, "/orders", &other_body, Some("order-2"))
        .await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.body);
    let alice_second = service
        .post_as(ALICE, "/orders", ORDER, Some("order-2"))
        .await;
    assert_eq!(
        alice_second.status,
        StatusCode::CREATED,
        "Bob's use of a key blocked Alice's: {}",
        alice_second.body
    );
    let alice_retry = service
        .post_as(ALICE, "/orders", ORDER, Some("order-1"))
        .await;
    assert_eq!(alice_retry.body, first.body);
    assert_eq!(service.order_count().await, 4);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_found_only_by_the_client_that_placed_it() {
    let service = Service::start(|args| {
        args.api_tokens_file = Some(token_file(&[ALICE, BOB]));
    })
    .await;
    let created = service.post_as(ALICE, "/orders", ORDER, None).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order_id = created.body["order_id"].as_str().unwrap().to_string();
    let order = format!("/orders/{order_id}");

    // For Bob the order does not exist: the same 404 as an id nobody has.
    let unknown = service.get_as(BOB, "/orders/ord-nobody-has-this").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let read = service.get_as(BOB, &order).await;
    assert_eq!(
        read.status,
        StatusCode::NOT_FOUND,
        "Bob read Alice's order: {}",
        read.body
    );
    assert_eq!(
        read.body["error"],
        format!("order {order_id:?} not found"),
        "{}",
        read.body
    );
    for (action, body) in [
        ("pay", r#"{"payment_id": "p-1", "amount_cents": 1000}"#),
        ("ship", r#"{"carrier": "DHL", "tracking_number": "T-1"}"#),
        ("cancel", r#"{"reason": "not mine"}"#),
    ] {
        let answer = service
            .post_as(BOB, &format!("{order}/{action}"), body, Some(action))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "Bob could {action} Alice's order: {}",
            answer.body
        );
    }
    assert_eq!(
        service.outbox_rows(&order_id).await,
        1,
        "Bob changed nothing"
    );

    // Alice still has it, unchanged, and can change it.
    let mine = service.get_as(ALICE, &order).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["status"], "created");
    let paid = service
        .post_as(
            ALICE,
            &format!("{order}/pay"),
            r#"{"payment_id": "p-1", "amount_cents": 1000}"#,
            None,
        )
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_written_before_the_scoping_belong_to_the_default_client() {
    // A database at the last migration before the scoping, holding an order and a key.
    let (database_url, pool) = testkit::fresh_database().await;
    orderflow_outbox::schema::migrator()
        .run_to(7, &pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
         VALUES ('ord-old', 'created', 'c-1', 'EUR', 1000);
         INSERT INTO order_service.idempotency_keys
             (idempotency_key, fingerprint, response_status, response_body)
         VALUES ('old-key', '\\x00', 201, '\\x7b7d')",
    )
    .execute(&pool)
    .await
    .unwrap();

    let service = Service::start_sharing(
        &testkit::kafka_brokers(),
        &{
            let topic = testkit::unique_name("orders");
            testkit::create_topic(&topic, 1).await;
            topic
        },
        &database_url,
        pool,
        |args| args.api_tokens_file = Some(token_file(&[DEFAULT, ALICE])),
    )
    .await;
    let owned = service.get_as(DEFAULT, "/orders/ord-old").await;
    assert_eq!(owned.status, StatusCode::OK, "{}", owned.body);
    let other = service.get_as(ALICE, "/orders/ord-old").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
    let owners: Vec<String> =
        sqlx::query_scalar("SELECT client_id FROM order_service.idempotency_keys")
            .fetch_all(&service.pool)
            .await
            .unwrap();
    assert_eq!(owners, ["default"]);
    service.stop().await;
}
