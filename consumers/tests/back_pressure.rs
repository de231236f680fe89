//! Back-pressure pauses only the partitions that fill the buffer: a partition
//! stuck behind a blocked record does not stop the others.

mod support;

use std::time::Duration;

use order_consumer::Ordering;
use order_consumer::engine::EngineSettings;
use orderflow_schemas::OrderEvent;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use sqlx::Row;
use support::{TestEnv, lifecycle, wait_until};

async fn send_to(env: &TestEnv, partition: i32, event: &OrderEvent) {
    let value = env.serializer.serialize(event);
    let headers = OwnedHeaders::new().insert(Header {
        key: "event-type",
        value: Some(event.event_type()),
    });
    env.producer
        .send(
            FutureRecord::to(&env.topic)
                .partition(partition)
                .key(event.order_id.as_bytes())
                .payload(&value)
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(error, _)| panic!("produce: {error}"));
}

fn created(order_id: &str) -> OrderEvent {
    lifecycle(order_id, false).remove(0)
}

async fn orders_like(env: &TestEnv, prefix: &str) -> i64 {
    sqlx::query("SELECT count(*) FROM orders WHERE order_id LIKE $1")
        .bind(format!("{prefix}%"))
        .fetch_one(&env.pool)
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_partition_is_paused_alone() {
    let env = TestEnv::new("backpressure", 2).await;
    // Partition 0's first event blocks: another transaction holds its dedup row
    // uncommitted, so the worker's insert waits for it. Partition order keeps the
    // rest of partition 0 behind it, filling the buffer.
    let stuck: Vec<OrderEvent> = (0..100).map(|i| created(&format!("p0-{i:03}"))).collect();
    let mut blocker = env.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO processed_events (consumer_group, event_id, topic, \"partition\", \"offset\") VALUES ($1, $2, $3, 0, 0)",
    )
    .bind(&env.group)
    .bind(stuck[0].event_id.to_string())
    .bind(&env.topic)
    .execute(&mut *blocker)
    .await
    .unwrap();
    for event in &stuck {
        send_to(&env, 0, event).await;
    }
    let settings = EngineSettings {
        ordering: Ordering::Partition,
        max_in_flight: 4,
        max_buffered: 40,
        batch_size: 4,
        db_concurrency: 2,
        ..env.settings()
    };
    let engine = env.spawn_engine(settings, tokio_util::sync::CancellationToken::new());
    let pool = env.pool.clone();
    wait_until(Duration::from_secs(60), "the first record to block", || {
        let pool = pool.clone();
        async move {
            let waiting: i64 = sqlx::query(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
            waiting > 0
        }
    })
    .await;

    // Partition 1 keeps flowing while partition 0 is stuck.
    for i in 0..10 {
        send_to(&env, 1, &created(&format!("p1-{i:03}"))).await;
    }
    wait_until(Duration::from_secs(30), "partition 1's orders", || async {
        orders_like(&env, "p1-").await == 10
    })
    .await;
    assert_eq!(orders_like(&env, "p0-").await, 0, "partition 0 is stuck");

    blocker.rollback().await.unwrap();
    tokio::time::timeout(Duration::from_secs(90), engine)
        .await
        .expect("engine exits when idle")
        .expect("engine task")
        .expect("engine run");
    assert_eq!(orders_like(&env, "p0-").await, 100);
    assert_eq!(env.committed_offsets(), env.end_offsets());
}
