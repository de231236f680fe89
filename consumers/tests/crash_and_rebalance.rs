//! Worker processes crashing (kill -9) and joining/leaving the group under load:
//! nothing lost, nothing applied twice, committed offsets never ahead of done work.
//! Each test body runs under both group protocols (`classic` and KIP-848 `consumer`).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::Row;
use support::{TestEnv, lifecycle, wait_until};

/// Committed offsets must never pass a record whose effect is not committed:
/// every offset below the committed one has its dedup row (all records are valid).
async fn assert_commits_not_ahead_of_done_work(env: &TestEnv, committed: &BTreeMap<i32, i64>) {
    for (&partition, &offset) in committed {
        let done: i64 = sqlx::query(
            "SELECT count(*) AS n FROM processed_events WHERE consumer_group = $1 AND \"partition\" = $2 AND \"offset\" < $3",
        )
        .bind(&env.group)
        .bind(partition)
        .bind(offset)
        .fetch_one(&env.pool)
        .await
        .unwrap()
        .get("n");
        assert_eq!(
            done, offset,
            "partition {partition}: committed {offset} but only {done} records below it are done"
        );
    }
}

async fn assert_every_event_applied_once(env: &TestEnv, orders: usize) {
    let projection = env.orders().await;
    assert_eq!(projection.len(), orders);
    for (order, (status, applied)) in projection {
        assert_eq!((status.as_str(), applied), ("shipped", 3), "{order}");
    }
    assert_eq!(env.processed_count().await, 3 * orders as i64);
    assert!(
        env.dlq_records(0, Duration::from_millis(300)).is_empty(),
        "no DLQ records"
    );
    assert_eq!(env.committed_offsets(), env.non_empty_end_offsets());
}

/// `--group-protocol PROTOCOL` followed by `extra`.
fn flags<'a>(protocol: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec!["--group-protocol", protocol];
    flags.extend_from_slice(extra);
    flags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_then_restart_loses_and_doubles_nothing_classic() {
    kill_9_with_slow_records_in_flight_then_restart("classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_then_restart_loses_and_doubles_nothing_consumer() {
    kill_9_with_slow_records_in_flight_then_restart("consumer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_joining_and_leaving_under_load_lose_and_double_nothing_classic() {
    three_workers_joining_and_leaving_under_load("classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_joining_and_leaving_under_load_lose_and_double_nothing_consumer() {
    three_workers_joining_and_leaving_under_load("consumer").await;
}

async fn kill_9_with_slow_records_in_flight_then_restart(protocol: &str) {
    let env = TestEnv::new("crash", 4).await;
    let lifecycles: Vec<_> = (0..50)
        .map(|i| lifecycle(&format!("k-{i}"), false))
        .collect();
    env.send_lifecycles(&lifecycles).await;

    let worker = env.start_worker(
        "slow",
        &flags(
            protocol,
            &["--bench-effect-delay-ms", "300", "--batch-size", "8"],
        ),
    );
    wait_until(
        Duration::from_secs(60),
        "some records processed",
        || async { env.processed_count().await >= 40 },
    )
    .await;
    // Let a periodic commit happen while slow batches are in flight, then crash.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut worker = worker;
    worker.child.kill().expect("kill -9");
    worker.child.wait().expect("reaped");

    let committed = env.committed_offsets();
    assert!(!committed.is_empty(), "the worker committed before it died");
    assert!(
        env.processed_count().await < 150,
        "the crash must hit the middle of the work"
    );
    assert_commits_not_ahead_of_done_work(&env, &committed).await;

    // The restarted worker gets the dead member's partitions once the broker's
    // session timeout expires it: 6 s under classic (the worker's flag), the
    // broker's group.consumer.session.timeout.ms under consumer (45 s by default).
    let restarted = env.start_worker("restart", &flags(protocol, &["--exit-when-idle", "2"]));
    let (status, stdout) = restarted.wait(Duration::from_secs(120));
    assert!(status.success(), "restart exits 0: {stdout}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON summary");
    assert_eq!(summary["dead_lettered"], 0, "{summary}");
    assert_every_event_applied_once(&env, 50).await;
}

async fn three_workers_joining_and_leaving_under_load(protocol: &str) {
    let env = TestEnv::new("rebalance", 6).await;
    let lifecycles: Vec<_> = (0..150)
        .map(|i| lifecycle(&format!("r-{i}"), false))
        .collect();
    let slow = flags(
        protocol,
        &[
            "--bench-effect-delay-ms",
            "20",
            "--batch-size",
            "10",
            "--exit-when-idle",
            "3",
        ],
    );

    let producing = async {
        for chunk in lifecycles.chunks(10) {
            env.send_lifecycles(chunk).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let membership = async {
        let first = env.start_worker("a", &slow);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let second = env.start_worker("b", &slow);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let third = env.start_worker("c", &slow);
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        first.terminate();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        third.terminate();
        (first, second, third)
    };
    let ((), (first, second, third)) = tokio::join!(producing, membership);
    let mut logs = String::new();
    for (name, worker) in [("a", first), ("c", third), ("b", second)] {
        let log_path = worker.log_path.clone();
        let (status, _) = tokio::task::spawn_blocking(move || worker.wait(Duration::from_secs(90)))
            .await
            .unwrap();
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        assert!(status.success(), "worker {name} exit: {status}\n{log}");
        logs.push_str(&log);
    }
    assert!(logs.contains("partitions revoked"), "rebalances happened");
    assert_every_event_applied_once(&env, 150).await;
}
