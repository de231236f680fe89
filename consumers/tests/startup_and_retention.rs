//! Start-up failures give one line and a non-zero exit; the dedup retention
//! removes only rows older than the retention that the group has committed past,
//! and a retention shorter than the topic's is refused.

mod support;

use std::process::Command;
use std::time::Duration;

use order_consumer::store::dedup_retention::DedupRetention;
use order_consumer::store::dedup_store;
use order_consumer::store::dedup_store::DedupTable;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::Row;
use support::{TestEnv, client_config, wait_until};
use tokio_util::sync::CancellationToken;

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
            "order-consumer: invalid configuration: --kafka-option sets session.timeout.ms, which the broker owns with --group-protocol consumer"
        ),
        "{stderr}"
    );

    // The same key from a client properties file (Confluent Cloud's carries it).
    let dir = std::env::temp_dir().join(format!("orderflow-kip848-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client.properties");
    std::fs::write(
        &file,
        "bootstrap.servers=127.0.0.1:1\nsession.timeout.ms=45000\n",
    )
    .unwrap();
    let (ok, stderr) = run_consumer(&[
        "--database-url",
        "postgres://u:p@127.0.0.1:1/db",
        "--group-protocol",
        "consumer",
        "--kafka-config",
        file.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with(
            "order-consumer: invalid configuration: --kafka-config sets session.timeout.ms"
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

/// A fresh database with the consumer's tables, holding the rows `insert` adds.
async fn database_with(insert: &'static str) -> sqlx::PgPool {
    let (_url, pool) = orderflow_testkit::fresh_database().await;
    order_consumer::MIGRATOR.run(&pool).await.unwrap();
    sqlx::query(insert).execute(&pool).await.unwrap();
    pool
}

/// Every unique key of the dedup table and the projection holds the order id, as
/// a database distributed by order id (Citus) requires; and rows written before
/// migration 0003 survive it with an empty order id, which the engine then checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_holds_the_order_id_and_older_rows_survive_the_upgrade() {
    let (_url, pool) = orderflow_testkit::fresh_database().await;
    let before = sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(order_consumer::MIGRATOR.migrations[..2].to_vec()),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO processed_events (consumer_group, event_id, topic, \"partition\", \"offset\") \
         VALUES ('g', 'e-1', 't', 0, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    order_consumer::MIGRATOR.run(&pool).await.unwrap();

    // Each unique index of the two tables, and whether one of its columns is order_id.
    let keys: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT c.relname::text, i.indexrelid::regclass::text, bool_or(a.attname = 'order_id') \
         FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey) \
         WHERE i.indisunique AND c.relname IN ('processed_events', 'orders') \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(keys.len(), 2, "one key per table: {keys:?}");
    assert!(keys.iter().all(|(_, _, has)| *has), "{keys:?}");

    let kept: (String, String) = sqlx::query_as(
        "SELECT order_id, event_id FROM processed_events WHERE consumer_group = 'g'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kept, (String::new(), "e-1".to_string()));
    assert_eq!(
        dedup_store::LegacyRows::of(&pool, "g").await.unwrap(),
        dedup_store::LegacyRows::Present
    );
    assert_eq!(
        dedup_store::LegacyRows::of(&pool, "other").await.unwrap(),
        dedup_store::LegacyRows::Absent
    );
}

/// Retention of 7 days over `table` for group `g` of topic `t`, whose partition 0 is
/// committed up to offset 2 (partition 1 not at all); the number of rows deleted.
async fn expire_a_week(pool: &sqlx::PgPool, table: DedupTable) -> u64 {
    dedup_store::delete_expired(
        pool,
        table,
        "g",
        "t",
        Duration::from_secs(7 * 86_400),
        &[(0, 2)],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_retention_removes_only_expired_rows() {
    let pool = database_with(
        "INSERT INTO processed_events (consumer_group, order_id, event_id, topic, \"partition\", \"offset\", processed_at) VALUES \
         ('g', 'o', 'old', 't', 0, 0, now() - interval '8 days'), \
         ('g', 'o', 'new', 't', 0, 1, now() - interval '1 day'), \
         ('other', 'o', 'old', 't', 0, 0, now() - interval '8 days')",
    )
    .await;
    // Every row is below the group's committed offset.
    assert_eq!(expire_a_week(&pool, DedupTable::ProcessedEvents).await, 1);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_ledger_rows_expire_by_the_dedup_rule() {
    let pool = database_with(
        "INSERT INTO dead_lettered (consumer_group, topic, \"partition\", \"offset\", dead_lettered_at) VALUES \
         ('g', 't', 0, 0, now() - interval '8 days'), \
         ('g', 't', 0, 1, now() - interval '1 day'), \
         ('g', 't', 0, 5, now() - interval '8 days'), \
         ('g', 't', 1, 0, now() - interval '8 days'), \
         ('other', 't', 0, 0, now() - interval '8 days')",
    )
    .await;
    // Partition 0 is committed up to offset 2; partition 1 has no commit.
    assert_eq!(expire_a_week(&pool, DedupTable::DeadLettered).await, 1);
    let left: Vec<(String, i32, i64)> = sqlx::query(
        "SELECT consumer_group, \"partition\", \"offset\" FROM dead_lettered ORDER BY 1, 2, 3",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        left,
        vec![
            ("g".into(), 0, 1),
            ("g".into(), 0, 5),
            ("g".into(), 1, 0),
            ("other".into(), 0, 0)
        ],
        "only the old row below the committed offset goes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_retention_shorter_than_the_topic_retention_is_refused() {
    // The topic keeps records for the broker default (7 days): a dedup retention of
    // one day would forget events a rewind can still replay.
    let env = TestEnv::new("retention-short", 1).await;
    let settings = order_consumer::engine::EngineSettings {
        dedup_retention: DedupRetention::AtLeast(Duration::from_secs(86_400)),
        ..env.settings()
    };
    let message = env.startup_refusal(settings).await;
    assert!(message.contains("retention.ms"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_retention_keeps_rows_the_group_has_not_committed_past() {
    let env = TestEnv::new("retention-committed", 2).await;
    // The group committed partition 0 up to offset 5 and nothing on partition 1.
    let committer: BaseConsumer = client_config(&env.brokers)
        .set("group.id", &env.group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&env.topic, 0, Offset::Offset(5))
        .unwrap();
    committer.commit(&tpl, CommitMode::Sync).expect("commit");
    drop(committer);
    // All rows are older than the retention.
    for (event_id, partition, offset) in [("below", 0, 3), ("above", 0, 7), ("uncommitted", 1, 0)] {
        sqlx::query(
            "INSERT INTO processed_events (consumer_group, order_id, event_id, topic, \"partition\", \"offset\", processed_at) \
             VALUES ($1, 'o', $2, $3, $4, $5, now() - interval '30 days')",
        )
        .bind(&env.group)
        .bind(event_id)
        .bind(&env.topic)
        .bind(partition)
        .bind(offset as i64)
        .execute(&env.pool)
        .await
        .unwrap();
    }
    let settings = order_consumer::engine::EngineSettings {
        dedup_cleanup_interval: Duration::from_millis(200),
        exit_when_idle: None,
        ..env.settings()
    };
    let token = CancellationToken::new();
    let engine = env.spawn_engine(settings, token.clone());
    let pool = env.pool.clone();
    wait_until(
        Duration::from_secs(60),
        "the committed row is cleaned up",
        || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT 1 FROM processed_events WHERE event_id = 'below'")
                    .fetch_optional(&pool)
                    .await
                    .unwrap()
                    .is_none()
            }
        },
    )
    .await;
    token.cancel();
    engine.await.expect("engine task").expect("engine run");
    let left: Vec<String> = sqlx::query("SELECT event_id FROM processed_events ORDER BY event_id")
        .fetch_all(&env.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec!["above".to_string(), "uncommitted".to_string()]);
}

/// The order projection is shared by every group using the database, the dedup
/// table is per group: a second group (a blue/green rollout under a new group name)
/// would replay the topic against rows the first one advanced and dead-letter every
/// valid event. Start-up refuses, naming the group already there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_group_on_the_same_database_is_refused_at_start_up() {
    let env = TestEnv::new("second-group", 1).await;
    env.send_lifecycles(&[support::lifecycle("first-group-order", false)])
        .await;
    let first = env.run_until_idle(env.settings()).await;
    assert_eq!(first.processed, 3, "{first:?}");

    let second = order_consumer::engine::EngineSettings {
        group: orderflow_testkit::unique_name("second"),
        ..env.settings()
    };
    let message = env.startup_refusal(second).await;
    assert!(
        message.contains(&env.group),
        "names the other group: {message}"
    );
    assert_eq!(env.dlq_record_count(), 0, "nothing dead-lettered");
}

/// The migration role's URL is a secret like the runtime one: neither `--help` nor a
/// start-up that cannot reach it shows its password.
#[test]
fn an_unreachable_migration_url_fails_with_one_line_without_its_password() {
    const PASSWORD: &str = "SECRET-migration-password";
    let migration_url = format!("postgres://owner:{PASSWORD}@127.0.0.1:1/projection");
    let help = Command::new(env!("CARGO_BIN_EXE_order-consumer"))
        .arg("--help")
        .env("CONSUMER_DATABASE_MIGRATION_URL", &migration_url)
        .output()
        .expect("run order-consumer --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--database-migration-url"), "{help}");
    assert!(
        !help.contains(PASSWORD),
        "--help shows the password: {help}"
    );

    // The runtime URL answers, so start-up gets as far as the migration URL.
    let runtime_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL names the test PostgreSQL (scripts/test.sh sets it)");
    let (ok, stderr) = run_consumer(&[
        "--database-url",
        &runtime_url,
        "--database-migration-url",
        &migration_url,
        "--db-connect-timeout",
        "1s",
        "--log-level",
        "debug",
    ]);
    assert!(!ok, "started without its migration role: {stderr}");
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("order-consumer: ") && line.contains("migration URL"),
        "{stderr}"
    );
    assert!(line.contains("127.0.0.1:1"), "{line}");
    assert!(!stderr.contains(PASSWORD), "password leaked: {stderr}");
}
