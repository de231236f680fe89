//! `orderflow outbox list|retry` against an order service database: parked rows are
//! listed with their reason and made pending again; ids that are not parked, and a
//! database without the outbox, fail with one line.

use std::process::{Command, Output};

use orderflow_outbox::schema as migrations;
use sqlx::PgPool;

fn orderflow(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(args)
        .env("PRODUCER_DATABASE_URL", database_url)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run orderflow")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Inserts an outbox row of `order_id` in `state` (parked rows with `reason`); returns its id.
async fn outbox_row(pool: &PgPool, order_id: &str, state: &str, reason: Option<&str>) -> i64 {
    sqlx::query(
        "INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
         VALUES ($1, 'created', 'c-1', 'EUR', 100) ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query_scalar(
        "INSERT INTO order_service.outbox
             (order_id, event_id, event_type, traceparent, payload, state, attempts,
              last_error, parked_at)
         VALUES ($1, gen_random_uuid(), 'OrderCreated', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
                 '\\x00', $2, CASE WHEN $2 = 'parked' THEN 5 ELSE 0 END, $3,
                 CASE WHEN $2 = 'parked' THEN now() END)
         RETURNING id",
    )
    .bind(order_id)
    .bind(state)
    .bind(reason)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn parked_rows_are_listed_with_their_reason_and_retried() {
    let (database_url, pool) = orderflow_testkit::fresh_database().await;
    migrations::migrator().run(&pool).await.unwrap();
    let too_large = "Broker: Message size too large";
    let first = outbox_row(&pool, "ord-a", "parked", Some(too_large)).await;
    let behind = outbox_row(&pool, "ord-a", "waiting", None).await;
    let second = outbox_row(&pool, "ord-b", "parked", Some(too_large)).await;

    let listed = orderflow(
        &database_url,
        &["outbox", "list", "--state", "parked", "--json"],
    );
    assert!(listed.status.success(), "{listed:?}");
    let rows: Vec<serde_json::Value> = stdout(&listed)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let ids: Vec<i64> = rows.iter().map(|row| row["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [first, second]);
    assert_eq!(rows[0]["last_error"], too_large);
    assert_eq!(rows[0]["attempts"], 5);
    let text = orderflow(&database_url, &["outbox", "list"]);
    assert_eq!(stdout(&text).lines().count(), 3, "{}", stdout(&text));
    assert!(stdout(&text).contains("state=waiting"), "{}", stdout(&text));

    // One parked id and one that is not parked: the parked one is retried, the command fails.
    let not_parked = behind.to_string();
    let retried = orderflow(
        &database_url,
        &["outbox", "retry", "--id", &format!("{first},{not_parked}")],
    );
    assert_eq!(retried.status.code(), Some(1), "{retried:?}");
    let summary: serde_json::Value = serde_json::from_str(&stdout(&retried)).unwrap();
    assert_eq!(summary["retried"], serde_json::json!([first]));
    assert_eq!(summary["not_parked"], serde_json::json!([behind]));
    assert!(
        String::from_utf8_lossy(&retried.stderr).contains("not parked"),
        "{retried:?}"
    );
    let (state, attempts): (String, i32) =
        sqlx::query_as("SELECT state, attempts FROM order_service.outbox WHERE id = $1")
            .bind(first)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("pending", 0));

    let all = orderflow(&database_url, &["outbox", "retry", "--all-parked"]);
    assert!(all.status.success(), "{all:?}");
    let summary: serde_json::Value = serde_json::from_str(&stdout(&all)).unwrap();
    assert_eq!(summary["retried"], serde_json::json!([second]));
    let parked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM order_service.outbox WHERE state = 'parked'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(parked, 0);

    // Neither --id nor --all-parked is a usage error.
    assert_eq!(
        orderflow(&database_url, &["outbox", "retry"]).status.code(),
        Some(2)
    );
}

#[tokio::test]
async fn a_database_without_the_outbox_is_named_in_one_line() {
    let (database_url, _pool) = orderflow_testkit::fresh_database().await;
    let listed = orderflow(&database_url, &["outbox", "list"]);
    assert_eq!(listed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("no order service outbox"), "{stderr}");
}
