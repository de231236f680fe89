//! The dedup retention follows what the topic can still replay. Kafka deletes whole
//! segments, so a record lives up to `retention.ms + segment.ms` (a segment is
//! deleted once its newest record is older than `retention.ms`, and a segment rolls
//! only `segment.ms` after its first record): a shorter dedup retention lets a
//! rewind replay events whose dedup rows are gone. The check is made at start-up and
//! again on every cleanup round, because topic configs change while workers run.

mod support;

use std::time::Duration;

use order_consumer::store::dedup_retention::DedupRetention;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::Row;
use support::{TestEnv, client_config, wait_until};
use tokio_util::sync::CancellationToken;

const DAY_MS: i64 = 86_400_000;

/// Sets the topic's `retention.ms` and `segment.ms` and waits until the broker
/// describes them back.
async fn set_topic_retention(env: &TestEnv, retention_ms: i64, segment_ms: i64) {
    let admin: AdminClient<DefaultClientContext> =
        client_config(&env.brokers).create().expect("admin");
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let (retention, segment) = (retention_ms.to_string(), segment_ms.to_string());
    let change = AlterConfig::new(ResourceSpecifier::Topic(&env.topic))
        .set("retention.ms", &retention)
        .set("segment.ms", &segment);
    let results = admin
        .alter_configs(&[change], &options)
        .await
        .expect("alter configs");
    for result in results {
        result.expect("topic config altered");
    }
    wait_until(
        Duration::from_secs(30),
        "the broker describes the new topic configs",
        || {
            let admin = &admin;
            let options = &options;
            let (retention, segment) = (&retention, &segment);
            async move {
                let described = admin
                    .describe_configs(&[ResourceSpecifier::Topic(&env.topic)], options)
                    .await
                    .expect("describe configs");
                let resource = described
                    .into_iter()
                    .next()
                    .unwrap()
                    .expect("topic configs");
                let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
                value("retention.ms").as_ref() == Some(retention)
                    && value("segment.ms").as_ref() == Some(segment)
            }
        },
    )
    .await;
}

/// Commits `offset` on partition 0 for the test's group.
fn commit(env: &TestEnv, offset: i64) {
    let committer: BaseConsumer = client_config(&env.brokers)
        .set("group.id", &env.group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("committer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&env.topic, 0, Offset::Offset(offset))
        .unwrap();
    committer.commit(&tpl, CommitMode::Sync).expect("commit");
}

async fn insert_processed(env: &TestEnv, event_id: &str, offset: i64, age_hours: i64) {
    sqlx::query(
        "INSERT INTO processed_events (consumer_group, order_id, event_id, topic, \"partition\", \"offset\", processed_at) \
         VALUES ($1, 'o-1', $2, $3, 0, $4, now() - make_interval(hours => $5::integer))",
    )
    .bind(&env.group)
    .bind(event_id)
    .bind(&env.topic)
    .bind(offset)
    .bind(age_hours as i32)
    .execute(&env.pool)
    .await
    .unwrap();
}

/// Retention one day, segments one day: a record can stay two days. A dedup
/// retention of one day covers `retention.ms` but not the segment's lifetime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedup_retention_shorter_than_retention_plus_segment_is_refused() {
    let env = TestEnv::new("retention-segment", 1).await;
    set_topic_retention(&env, DAY_MS, DAY_MS).await;
    let settings = order_consumer::engine::EngineSettings {
        dedup_retention: DedupRetention::AtLeast(Duration::from_secs(86_400)),
        ..env.settings()
    };
    let message = env.startup_refusal(settings).await;
    assert!(message.contains("segment.ms"), "{message}");
}

/// The topic's retention is raised while the worker runs: the cleanup rounds after
/// it keep what the topic can now replay, though the configured retention is
/// shorter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_retention_raised_while_running_keeps_the_rows_it_covers() {
    let env = TestEnv::new("retention-raised", 1).await;
    set_topic_retention(&env, DAY_MS, DAY_MS).await;
    commit(&env, 100);
    let settings = order_consumer::engine::EngineSettings {
        // At least the topic's window now (1 + 1 days and the broker's check margin).
        dedup_retention: DedupRetention::AtLeast(Duration::from_secs(3 * 86_400)),
        dedup_cleanup_interval: Duration::from_millis(200),
        exit_when_idle: None,
        ..env.settings()
    };
    let token = CancellationToken::new();
    let engine = env.spawn_engine(settings, token.clone());
    // The engine is past its start-up check once it has swept the first old row.
    insert_processed(&env, "before-raise", 1, 24 * 10).await;
    let gone = |event_id: &'static str| {
        let pool = env.pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT 1 FROM processed_events WHERE event_id = $1")
                    .bind(event_id)
                    .fetch_optional(&pool)
                    .await
                    .unwrap()
                    .is_none()
            }
        }
    };
    wait_until(
        Duration::from_secs(60),
        "the first old row is cleaned up",
        gone("before-raise"),
    )
    .await;

    // Records may now stay 3 + 1 days: a row of 3.5 days must stay (the configured
    // 3 days would drop it), one of 10 days go.
    set_topic_retention(&env, 3 * DAY_MS, DAY_MS).await;
    insert_processed(&env, "covered", 2, 84).await;
    insert_processed(&env, "ancient", 3, 24 * 10).await;
    wait_until(
        Duration::from_secs(60),
        "the 10-day-old row is cleaned up",
        gone("ancient"),
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
    assert_eq!(
        left,
        vec!["covered".to_string()],
        "a row the topic can still replay was deleted"
    );
}
