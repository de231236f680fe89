//! Transactional topics: a committed transaction ends with a commit marker, so a
//! consumer that committed "last record + 1" stays one offset short of the high
//! watermark (and of the last stable offset). Such a group has read everything and
//! must read CAUGHT_UP, not turn STOPPED after the window with lag 1. An open
//! transaction holds the last stable offset: a read_committed group that reached it
//! turns BLOCKED_BY_TRANSACTION after a window, not CAUGHT_UP.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use orderflow_lag::{EngineConfig, LagEngine, Status};
use rdkafka::producer::{FutureRecord, Producer};

const WINDOW: Duration = Duration::from_secs(2);

/// Writes `count` records to `topic[0]` in one committed transaction.
async fn produce_in_transaction(topic: &str, count: usize) {
    let producer = orderflow_testkit::transactional_producer(&orderflow_testkit::kafka_config());
    producer.begin_transaction().expect("begin");
    for i in 0..count {
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(0)
                    .key(&format!("order-{i}"))
                    .payload("{}"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("record acked");
    }
    producer
        .commit_transaction(Duration::from_secs(30))
        .expect("commit transaction");
}

#[tokio::test]
async fn group_that_read_every_record_before_a_commit_marker_is_caught_up() {
    let topic = orderflow_testkit::unique_name("lag-tx");
    let plain = orderflow_testkit::unique_name("lag-tx-g");
    let committed_reader = orderflow_testkit::unique_name("lag-tx-rc");
    let behind = orderflow_testkit::unique_name("lag-tx-behind");
    orderflow_testkit::create_topic(&topic, 1).await;
    produce_in_transaction(&topic, 5).await;
    // Offsets 0..4 are the records, 5 the commit marker; both groups did all 5.
    support::commit(&plain, &topic, &[(0, 5)]);
    support::commit(&committed_reader, &topic, &[(0, 5)]);
    // Two records short: real lag, whatever the marker after them.
    support::commit(&behind, &topic, &[(0, 3)]);

    let config = EngineConfig {
        groups: vec![plain.clone(), committed_reader.clone(), behind.clone()],
        read_committed_groups: HashSet::from([committed_reader.clone()]),
        window: WINDOW,
        request_timeout: Duration::from_secs(10),
        timestamp_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let mut engine = LagEngine::new(&orderflow_testkit::kafka_config(), config).expect("engine");
    // Poll for more than a window: a lag of 1 that never moves would turn STOPPED.
    let started = Instant::now();
    let mut polls = 0;
    while started.elapsed() < WINDOW * 2 || polls < 3 {
        let snapshot = engine.poll().await.expect("poll");
        for group in [&plain, &committed_reader] {
            let g = snapshot
                .groups
                .iter()
                .find(|g| &g.group == group)
                .expect("group shown");
            let p = &g.topics[0].partitions[0];
            assert_eq!(p.log.high_watermark, 6, "5 records and a marker");
            assert_eq!(
                (g.status, g.lag),
                (Status::CaughtUp, 0),
                "{group} after {:?}: {}",
                started.elapsed(),
                g.reason
            );
        }
        let g = snapshot
            .groups
            .iter()
            .find(|g| g.group == behind)
            .expect("group shown");
        assert_eq!(g.lag, 3, "{}", g.reason);
        assert_ne!(g.status, Status::CaughtUp, "{}", g.reason);
        polls += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn read_committed_group_held_by_an_open_transaction_is_blocked_not_caught_up() {
    let topic = orderflow_testkit::unique_name("lag-tx-open");
    let group = orderflow_testkit::unique_name("lag-tx-open-rc");
    orderflow_testkit::create_topic(&topic, 1).await;
    support::produce(&topic, 0, 3).await;
    // Offset 3: a record of a transaction left open for the whole test.
    let open = orderflow_testkit::transactional_producer(&orderflow_testkit::kafka_config());
    open.begin_transaction().expect("begin");
    open.send(
        FutureRecord::to(&topic)
            .partition(0)
            .key("order-open")
            .payload("{}"),
        Duration::from_secs(10),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("record acked");
    // The high watermark goes on rising past the open transaction.
    support::produce(&topic, 0, 2).await;
    support::commit(&group, &topic, &[(0, 3)]);

    let config = EngineConfig {
        groups: vec![group.clone()],
        read_committed_groups: HashSet::from([group.clone()]),
        window: WINDOW,
        request_timeout: Duration::from_secs(10),
        timestamp_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    let mut engine = LagEngine::new(&orderflow_testkit::kafka_config(), config).expect("engine");
    let mut seen = Vec::new();
    let g = loop {
        let snapshot = engine.poll().await.expect("poll");
        let g = snapshot
            .groups
            .into_iter()
            .find(|g| g.group == group)
            .expect("group shown");
        let p = &g.topics[0].partitions[0];
        assert_eq!((p.log.last_stable, p.log.high_watermark), (3, 6), "{g:?}");
        seen.push(g.status);
        if g.status != Status::CaughtUp || seen.len() > 40 {
            break g;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        g.status,
        Status::BlockedByTransaction,
        "{seen:?}: {}",
        g.reason
    );
    assert!(g.reason.contains("open transaction"), "{}", g.reason);
    open.abort_transaction(Duration::from_secs(30))
        .expect("abort transaction");
}
