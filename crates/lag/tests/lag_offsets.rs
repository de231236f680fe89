//! Lag against the real broker: exact figures for known committed offsets, partitions
//! without a commit, a group without members, a group of the consumer protocol, many
//! groups read over one connection.

mod support;

use std::sync::Arc;
use std::time::Duration;

use orderflow_lag::kafka::broker_connection::WireSecurity;
use orderflow_lag::kafka::committed::{CommittedRead, CommittedReader};
use orderflow_lag::kafka::committed_source::CommittedSource;
use orderflow_lag::kafka::group_offsets::GroupOffsetReader;
use orderflow_lag::model::{Membership, OffsetState};
use orderflow_lag::{EngineConfig, LagEngine, Status};

#[tokio::test]
async fn exact_lag_for_known_committed_offsets_and_no_commit_partitions() {
    let topic = orderflow_testkit::unique_name("lag-exact");
    let group = orderflow_testkit::unique_name("lag-exact-g");
    orderflow_testkit::create_topic(&topic, 3).await;
    support::produce(&topic, 0, 10).await;
    support::produce(&topic, 1, 7).await;
    support::produce(&topic, 2, 5).await;
    support::commit(&group, &topic, &[(0, 4), (1, 7)]);

    let mut engine = support::engine(&group, Duration::from_secs(30));
    let snapshot = engine.poll().await.expect("poll");
    let g = snapshot
        .groups
        .iter()
        .find(|g| g.group == group)
        .unwrap_or_else(|| panic!("group {group} missing from {snapshot:#?}"));
    assert_eq!(g.topics.len(), 1, "{g:#?}");
    let parts = &g.topics[0].partitions;
    let figures: Vec<(i32, Option<i64>, i64, i64, OffsetState)> = parts
        .iter()
        .map(|p| {
            (
                p.partition,
                p.committed,
                p.log.high_watermark,
                p.lag,
                p.offset_state,
            )
        })
        .collect();
    assert_eq!(
        figures,
        vec![
            (0, Some(4), 10, 6, OffsetState::Committed),
            (1, Some(7), 7, 0, OffsetState::Committed),
            // Never committed: with auto.offset.reset=earliest all 5 records are lag.
            (2, None, 5, 5, OffsetState::NoCommit),
        ]
    );
    assert_eq!(g.lag, 11);
    assert_eq!(parts[1].status, Status::CaughtUp);
    assert_eq!(parts[1].lag_seconds, Some(0.0));
    // Lag in seconds comes from the timestamp of the record at the committed offset.
    let age = parts[0].lag_seconds.unwrap_or_else(|| {
        panic!(
            "lag seconds of partition 0 not read; warnings {:?}",
            snapshot.warnings
        )
    });
    assert!((0.0..120.0).contains(&age), "age {age}");
    assert!(parts[2].lag_seconds.is_some(), "{:?}", parts[2]);
    assert!(parts.iter().all(|p| p.read_skew_records == 0));
}

#[tokio::test]
async fn group_without_members_is_listed_with_its_lag() {
    let topic = orderflow_testkit::unique_name("lag-empty");
    let group = orderflow_testkit::unique_name("lag-empty-g");
    orderflow_testkit::create_topic(&topic, 2).await;
    support::produce(&topic, 0, 4).await;
    support::produce(&topic, 1, 3).await;
    support::commit(&group, &topic, &[(0, 1), (1, 3)]);

    // No filter: the group must be found by listing the cluster's groups.
    let config = EngineConfig {
        request_timeout: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let mut engine = LagEngine::new(&orderflow_testkit::kafka_config(), config).expect("engine");
    let snapshot = engine.poll().await.expect("poll");
    let g = snapshot
        .groups
        .iter()
        .find(|g| g.group == group)
        .unwrap_or_else(|| {
            panic!(
                "group {group} without members is missing; groups: {:?}; warnings: {:?}",
                snapshot.groups.iter().map(|g| &g.group).collect::<Vec<_>>(),
                snapshot.warnings
            )
        });
    assert_eq!(g.lag, 3);
    match &g.membership {
        Membership::Known { state, members } => {
            assert!(members.is_empty(), "{members:?}");
            assert_eq!(state, "Empty");
        }
        other => panic!("DescribeGroups should describe {group}: {other:?}"),
    }
    assert!(g.reason.contains("no active members"), "{}", g.reason);
}

#[tokio::test]
async fn consumer_protocol_group_is_listed_with_exact_lag_and_its_members() {
    let topic = orderflow_testkit::unique_name("lag-kip848");
    let group = orderflow_testkit::unique_name("lag-kip848-g");
    orderflow_testkit::create_topic(&topic, 1).await;
    support::produce(&topic, 0, 8).await;
    let (g, t) = (group.clone(), topic.clone());
    let member = tokio::task::spawn_blocking(move || {
        support::IdleMember::join_as("kip848-member", &g, &t, "consumer", &[(0, 5)])
    })
    .await
    .expect("member joined");

    let config = EngineConfig {
        request_timeout: Duration::from_secs(10),
        ..EngineConfig::default()
    };
    let mut engine = LagEngine::new(&orderflow_testkit::kafka_config(), config).expect("engine");
    let snapshot = engine.poll().await.expect("poll");
    let g = snapshot
        .groups
        .iter()
        .find(|g| g.group == group)
        .unwrap_or_else(|| panic!("consumer-protocol group {group} not listed: {snapshot:#?}"));
    assert_eq!(g.lag, 3, "{g:#?}");
    assert_eq!(g.topics[0].partitions[0].committed, Some(5));
    // DescribeGroups answers Dead for it; ConsumerGroupDescribe describes it.
    match &g.membership {
        Membership::Known { state, members } => {
            assert_eq!(state, "Stable", "{g:#?}");
            assert_eq!(members.len(), 1, "{members:?}");
            assert_eq!(members[0].client_id, "kip848-member");
            assert_eq!(members[0].assignment, [(topic.clone(), 0)]);
        }
        other => panic!("ConsumerGroupDescribe should describe {group}: {other:?}"),
    }
    drop(member);
}

#[tokio::test]
async fn many_groups_are_read_in_one_request_over_one_connection() {
    let topic = orderflow_testkit::unique_name("lag-many");
    let prefix = orderflow_testkit::unique_name("lag-many-g");
    orderflow_testkit::create_topic(&topic, 2).await;
    support::produce(&topic, 0, 5).await;
    let groups: Vec<String> = (0..12).map(|i| format!("{prefix}-{i}")).collect();
    for (i, group) in groups.iter().enumerate() {
        support::commit(group, &topic, &[(0, i as i64 % 5)]);
    }
    let brokers = orderflow_testkit::kafka_config()
        .get("bootstrap.servers")
        .expect("bootstrap servers")
        .to_owned();

    let reader = GroupOffsetReader::new(&brokers, WireSecurity::plaintext());
    let reads = reader.read(&groups, Duration::from_secs(10)).await;
    for (i, group) in groups.iter().enumerate() {
        let committed = reads[group]
            .as_ref()
            .unwrap_or_else(|e| panic!("{group}: {e}"));
        // Partition 1 was never committed: Kafka answers only what the group committed.
        assert_eq!(
            committed.clone().into_iter().collect::<Vec<_>>(),
            vec![((topic.clone(), 0), CommittedRead::Offset(i as i64 % 5))],
            "{group}"
        );
    }
    // One broker: its bootstrap address and, if it advertises another spelling, that.
    let connections = reader.open_connections().await;
    assert!(
        (1..=2).contains(&connections),
        "{connections} connections for {} groups",
        groups.len()
    );

    // The per-group clients kept for TLS/SASL clusters read the same offsets.
    let pool = CommittedSource::PerGroup {
        reader: Arc::new(CommittedReader::new(&orderflow_testkit::kafka_config(), 4)),
        concurrency: 2,
    };
    let every_partition = Arc::new(vec![(topic.clone(), 0), (topic.clone(), 1)]);
    let pooled = pool
        .read(&groups[..3], every_partition, Duration::from_secs(10))
        .await;
    for group in &groups[..3] {
        let committed: Vec<_> = pooled[group]
            .as_ref()
            .unwrap_or_else(|e| panic!("{group}: {e}"))
            .iter()
            .filter(|(_, read)| **read != CommittedRead::Never)
            .map(|(tp, read)| (tp.clone(), read.clone()))
            .collect();
        let batched: Vec<_> = reads[group]
            .as_ref()
            .expect("read")
            .clone()
            .into_iter()
            .collect();
        assert_eq!(committed, batched, "{group}");
    }
}
