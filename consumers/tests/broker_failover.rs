//! The leader of a partition of the 3-broker cluster is killed (kill -9) while the
//! producer writes and a group of `order-consumer` workers applies events, then
//! restarted: nothing lost, nothing applied twice, committed offsets reach the log end.
//!
//! Needs `KAFKA_CLUSTER_BROKERS` and `KAFKA_CLUSTER_DIR` (scripts/test.sh exports them)
//! and drives the cluster with `scripts/kafka-cluster.sh --dir DIR kill N|start-node N`.
//! The workers take their group protocol from `GROUP_PROTOCOL` (classic when unset).

mod support;

use std::time::Duration;

use orderflow_testkit::KilledNode;
use rdkafka::consumer::{BaseConsumer, Consumer};
use support::{TestEnv, lifecycle, wait_until};

/// The broker id (= node number) leading `partition` of the env's topic.
async fn leader(env: &TestEnv, partition: i32) -> i32 {
    let client: BaseConsumer = support::client_config(&env.brokers)
        .create()
        .expect("client");
    let topic = env.topic.clone();
    tokio::task::spawn_blocking(move || {
        let metadata = client
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .expect("metadata");
        metadata.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .map(|p| p.leader())
            .expect("partition in metadata")
    })
    .await
    .expect("metadata task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_and_restarted_under_load_loses_and_doubles_nothing() {
    let env = TestEnv::on_cluster("failover", 3).await;
    let orders = 600;
    let lifecycles: Vec<_> = (0..orders)
        .map(|i| lifecycle(&format!("f-{i}"), false))
        .collect();
    let workers = [env.start_worker("a", &[]), env.start_worker("b", &[])];

    // Paced so the kill and the restart both fall while events are still written.
    let producing = async {
        for chunk in lifecycles.chunks(10) {
            env.send_lifecycles(chunk).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let failover = async {
        wait_until(
            Duration::from_secs(60),
            "the workers apply events",
            || async { env.processed_count().await >= 150 },
        )
        .await;
        let old_leader = leader(&env, 0).await;
        let killed = tokio::task::spawn_blocking(move || KilledNode::kill(old_leader))
            .await
            .expect("kill task");
        wait_until(
            Duration::from_secs(60),
            "another broker leads partition 0",
            || async { leader(&env, 0).await != old_leader },
        )
        .await;
        killed.restart().await;
        old_leader
    };
    let ((), killed) = tokio::join!(producing, failover);

    let events = 3 * orders as i64;
    wait_until(
        Duration::from_secs(120),
        "every event applied and its offset committed",
        || async {
            env.processed_count().await == events
                && env.committed_offsets() == env.non_empty_end_offsets()
        },
    )
    .await;
    for (worker, name) in workers.into_iter().zip(["a", "b"]) {
        worker.terminate();
        let (status, _) = tokio::task::spawn_blocking(move || worker.wait(Duration::from_secs(30)))
            .await
            .expect("wait task");
        assert!(status.success(), "worker {name} exit: {status}");
    }

    // The log holds every event exactly once (idempotent producer across the
    // leader change), the projection applied each exactly once, no DLQ record,
    // and the commits reached the log end.
    let end_offsets = env.end_offsets();
    assert_eq!(
        end_offsets.values().sum::<i64>(),
        events,
        "records in the log after killing broker {killed}: {end_offsets:?}"
    );
    let projection = env.orders().await;
    assert_eq!(projection.len(), orders);
    for (order, (status, applied)) in projection {
        assert_eq!((status.as_str(), applied), ("shipped", 3), "{order}");
    }
    assert_eq!(env.processed_count().await, events);
    assert!(env.dlq_records(0, Duration::from_millis(300)).is_empty());
    assert_eq!(env.committed_offsets(), env.non_empty_end_offsets());
}
