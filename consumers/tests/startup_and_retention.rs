//! Start-up failures give one line and a non-zero exit; the dedup retention
//! removes only rows older than the retention.

use std::process::Command;
use std::time::Duration;

use order_consumer::dedup_store;
use sqlx::Row;

fn run_consumer(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_order-consumer"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run order-consumer");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn inconsistent_flags_fail_with_one_line() {
    let (ok, stderr) = run_consumer(&[
        "--database-url",
        "postgres://u:p@127.0.0.1:1/db",
        "--drain-timeout",
        "60s",
        "--session-timeout",
        "30s",
    ]);
    assert!(!ok);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("order-consumer: invalid configuration: --drain-timeout"),
        "{stderr}"
    );
}

#[test]
fn broker_owned_option_under_consumer_protocol_fails_with_one_line() {
    let (ok, stderr) = run_consumer(&[
        "--database-url",
        "postgres://u:p@127.0.0.1:1/db",
        "--group-protocol",
        "consumer",
        "--kafka-option",
        "session.timeout.ms=10000",
    ]);
    assert!(!ok);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with(
            "order-consumer: invalid configuration: --kafka-option session.timeout.ms is not supported with --group-protocol consumer"
        ),
        "{stderr}"
    );
}

#[test]
fn unreachable_database_fails_with_one_line_naming_it_without_password() {
    let (ok, stderr) = run_consumer(&[
        "--database-url",
        "postgres://user:secret@127.0.0.1:1/projection",
        "--db-connect-timeout",
        "1s",
        "--log-level",
        "error",
    ]);
    assert!(!ok);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with("order-consumer: "), "{stderr}");
    assert!(line.contains("127.0.0.1:1"), "{line}");
    assert!(!stderr.contains("secret"), "password leaked: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_retention_removes_only_expired_rows() {
    let (_url, pool) = orderflow_testkit::fresh_database().await;
    dedup_store::MIGRATOR.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO processed_events (consumer_group, event_id, topic, \"partition\", \"offset\", processed_at) VALUES \
         ('g', 'old', 't', 0, 0, now() - interval '8 days'), \
         ('g', 'new', 't', 0, 1, now() - interval '1 day'), \
         ('other', 'old', 't', 0, 0, now() - interval '8 days')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let deleted = dedup_store::delete_expired(&pool, "g", Duration::from_secs(7 * 86_400))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let left: Vec<(String, String)> =
        sqlx::query("SELECT consumer_group, event_id FROM processed_events ORDER BY 1, 2")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(
        left,
        vec![("g".into(), "new".into()), ("other".into(), "old".into())]
    );
}
