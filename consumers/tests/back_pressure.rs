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
        "INSERT INTO processed_events (consumer_group, order_id, event_id, topic, \"partition\", \"offset\") VALUES ($1, $2, $3, $4, 0, 0)",
    )
    .bind(&env.group)
    .bind(&stuck[0].order_id)
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

/// Stops new connections to the test's database and ends its sessions: what the
/// engine sees while PostgreSQL is down (the shared server keeps running).
async fn database_reachable(env: &TestEnv, reachable: bool) {
    let database = env.db_url.rsplit('/').next().unwrap();
    let database = database.split('?').next().unwrap();
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&orderflow_testkit::database_url())
            .await
            .expect("admin connection");
    sqlx::Executor::execute(
        &mut admin,
        sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS {reachable}"
        )),
    )
    .await
    .expect("alter database");
    if !reachable {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(database)
            .execute(&mut admin)
            .await
            .expect("terminate backends");
    }
}

/// PostgreSQL is down and a worker leaves: the remaining worker, its breaker open,
/// is assigned the leaver's partition and its backlog. The partition must be
/// paused like the ones it already had, so the buffer stays within
/// `--max-buffered` instead of filling with the whole backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_assigned_while_the_breaker_is_open_is_paused() {
    let env = TestEnv::new("bp-breaker-assign", 2).await;
    const MAX_BUFFERED: usize = 50;
    let settings = EngineSettings {
        max_buffered: MAX_BUFFERED,
        batch_size: 10,
        breaker_threshold: 1,
        // The first opening of the breaker lasts the backoff's initial ceiling:
        // long enough to cover the hand-over below.
        retry_backoff: orderflow_runtime::backoff::Backoff {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(30),
            multiplier: 1.0,
        },
        drain_timeout: Duration::from_secs(1),
        exit_when_idle: None,
        ..env.settings()
    };
    let (stays, leaves) = (prometheus::Registry::new(), prometheus::Registry::new());
    let stays_token = tokio_util::sync::CancellationToken::new();
    let leaves_token = tokio_util::sync::CancellationToken::new();
    let stayer = env.spawn_engine_observed(settings.clone(), stays_token.clone(), stays.clone());
    let leaver = env.spawn_engine_observed(settings, leaves_token.clone(), leaves.clone());
    let assigned = |metrics: &prometheus::Registry| {
        metrics
            .gather()
            .iter()
            .filter(|f| f.name() == "orderflow_consumer_rebalances_total")
            .flat_map(|f| f.get_metric())
            .filter(|m| m.get_label().iter().any(|l| l.value() == "assign"))
            .map(|m| m.get_counter().get_value())
            .sum::<f64>()
    };
    // One order per partition, applied: each worker owns one partition.
    send_to(&env, 0, &created("warm-0")).await;
    send_to(&env, 1, &created("warm-1")).await;
    wait_until(
        Duration::from_secs(60),
        "both workers own a partition",
        || async {
            assigned(&stays) >= 1.0
                && assigned(&leaves) >= 1.0
                && orders_like(&env, "warm-").await == 2
        },
    )
    .await;

    database_reachable(&env, false).await;
    for partition in 0..2 {
        send_to(&env, partition, &created(&format!("down-{partition}"))).await;
    }
    wait_until(Duration::from_secs(60), "both breakers open", || async {
        support::gauge_total(&stays, "orderflow_consumer_circuit_breaker_state") == 1.0
            && support::gauge_total(&leaves, "orderflow_consumer_circuit_breaker_state") == 1.0
            && support::gauge_total(&stays, "orderflow_consumer_paused_partitions") == 1.0
    })
    .await;
    // A backlog on both partitions; the stayer's own partition is paused.
    for i in 0..1_000 {
        send_to(&env, i % 2, &created(&format!("backlog-{i:04}"))).await;
    }
    let assigned_before = assigned(&stays);
    leaves_token.cancel();
    leaver.await.expect("leaver task").expect("leaver run");
    wait_until(
        Duration::from_secs(60),
        "the leaver's partition assigned",
        || async { assigned(&stays) > assigned_before },
    )
    .await;
    let mut most = 0.0f64;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        most = most.max(support::gauge_total(
            &stays,
            "orderflow_consumer_buffered_records",
        ));
    }
    assert_eq!(
        support::gauge_total(&stays, "orderflow_consumer_circuit_breaker_state"),
        1.0,
        "the breaker stayed open while buffered records were sampled"
    );
    assert!(
        most <= MAX_BUFFERED as f64,
        "{most} records buffered with the breaker open, more than --max-buffered {MAX_BUFFERED}"
    );

    database_reachable(&env, true).await;
    wait_until(Duration::from_secs(120), "every order applied", || async {
        orders_like(&env, "").await == 1_004
    })
    .await;
    stays_token.cancel();
    stayer.await.expect("stayer task").expect("stayer run");
    assert_eq!(env.committed_offsets(), env.end_offsets());
}
