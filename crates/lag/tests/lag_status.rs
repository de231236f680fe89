//! Status transitions on scripted scenarios against the real broker: a group without
//! members whose records keep arriving becomes STOPPED within the window; once a
//! consumer restarts the group is OK while it works through the backlog, then
//! CAUGHT_UP. A group whose members are assigned but never commit becomes STALLED. A
//! group whose committed offset is reset backwards is REWIND.

mod support;

use std::time::{Duration, Instant};

use orderflow_lag::model::Membership;
use orderflow_lag::{GroupLag, LagEngine, Snapshot, Status};

const WINDOW: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_millis(250);

async fn poll_group(engine: &mut LagEngine, group: &str) -> GroupLag {
    let snapshot: Snapshot = engine.poll().await.expect("poll");
    snapshot
        .groups
        .into_iter()
        .find(|g| g.group == group)
        .unwrap_or_else(|| panic!("group {group} missing"))
}

async fn group_status(engine: &mut LagEngine, group: &str) -> (Status, i64, String) {
    let g = poll_group(engine, group).await;
    (g.status, g.lag, g.reason)
}

/// Polls until `want` is seen (returns the statuses seen on the way) or `limit` passes.
async fn poll_until(
    engine: &mut LagEngine,
    group: &str,
    want: Status,
    limit: Duration,
) -> Vec<Status> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let (status, lag, reason) = group_status(engine, group).await;
        seen.push(status);
        if status == want {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "no {want} within {limit:?}; saw {seen:?}; last lag {lag}: {reason}"
        );
        tokio::time::sleep(INTERVAL).await;
    }
}

#[tokio::test]
async fn stopped_then_restarted_consumer_goes_stopped_ok_caught_up() {
    let topic = orderflow_testkit::unique_name("lag-status");
    let group = orderflow_testkit::unique_name("lag-status-g");
    orderflow_testkit::create_topic(&topic, 1).await;
    support::produce(&topic, 0, 5).await;
    support::commit(&group, &topic, &[(0, 5)]);
    let mut engine = support::engine(&group, WINDOW);

    let seen = poll_until(
        &mut engine,
        &group,
        Status::CaughtUp,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(seen.last(), Some(&Status::CaughtUp));

    // The consumer is gone; records keep arriving.
    support::produce(&topic, 0, 12).await;
    let started = Instant::now();
    let seen = poll_until(&mut engine, &group, Status::Stopped, WINDOW * 3).await;
    assert!(
        seen.iter()
            .all(|s| *s == Status::Ok || *s == Status::Stopped),
        "{seen:?}"
    );
    assert!(
        started.elapsed() >= WINDOW,
        "STOPPED after {:?}, before a full window of no progress",
        started.elapsed()
    );
    let g = poll_group(&mut engine, &group).await;
    assert_eq!(g.lag, 12, "{}", g.reason);
    assert!(g.reason.contains("no progress"), "{}", g.reason);
    // STOPPED because the coordinator says nobody is there, not because it was not asked.
    match &g.membership {
        Membership::Known { state, members } => {
            assert!(members.is_empty(), "{members:?}");
            assert_eq!(state, "Empty");
        }
        other => panic!("members of {group} should be known: {other:?}"),
    }

    // Restart: a slow consumer works through the backlog.
    let (g, t) = (group.clone(), topic.clone());
    let consumer = tokio::task::spawn_blocking(move || {
        support::consume_slowly(&g, &t, 0, 12, Duration::from_millis(150));
    });
    let seen = poll_until(
        &mut engine,
        &group,
        Status::CaughtUp,
        Duration::from_secs(20),
    )
    .await;
    consumer.await.expect("consumer finished");
    assert!(
        seen.contains(&Status::Ok),
        "restart never showed OK: {seen:?}"
    );
    let first_ok = seen.iter().position(|s| *s == Status::Ok).expect("OK seen");
    assert!(
        seen[first_ok..]
            .iter()
            .all(|s| *s == Status::Ok || *s == Status::CaughtUp),
        "after restart: {seen:?}"
    );
}

#[tokio::test]
async fn assigned_member_that_never_commits_goes_stalled_not_stopped() {
    let topic = orderflow_testkit::unique_name("lag-stall");
    let group = orderflow_testkit::unique_name("lag-stall-g");
    orderflow_testkit::create_topic(&topic, 1).await;
    support::produce(&topic, 0, 10).await;
    support::commit(&group, &topic, &[(0, 3)]);
    let (g, t) = (group.clone(), topic.clone());
    let member =
        tokio::task::spawn_blocking(move || support::IdleMember::join(&g, &t, "classic", &[]))
            .await
            .expect("member joined");
    let mut engine = support::engine(&group, WINDOW);

    let seen = poll_until(&mut engine, &group, Status::Stalled, WINDOW * 4).await;
    assert!(
        seen.iter()
            .all(|s| *s == Status::Ok || *s == Status::Stalled),
        "{seen:?}"
    );
    let g = poll_group(&mut engine, &group).await;
    assert_eq!((g.status, g.lag), (Status::Stalled, 7), "{}", g.reason);
    let p = &g.topics[0].partitions[0];
    assert!(p.reason.contains("1 member(s)"), "{}", p.reason);
    match &g.membership {
        Membership::Known { state, members } => {
            assert_eq!(state, "Stable");
            assert_eq!(members.len(), 1, "{members:?}");
            assert_eq!(members[0].client_id, "lag-test-member");
            assert_eq!(members[0].assignment, vec![(topic.clone(), 0)]);
            assert_eq!(p.consumer_id.as_ref(), Some(&members[0].member_id));
        }
        other => panic!("members of {group} should be known: {other:?}"),
    }
    drop(member);
}

#[tokio::test]
async fn committed_offset_moved_backwards_is_rewind() {
    let topic = orderflow_testkit::unique_name("lag-rewind");
    let group = orderflow_testkit::unique_name("lag-rewind-g");
    orderflow_testkit::create_topic(&topic, 1).await;
    support::produce(&topic, 0, 10).await;
    support::commit(&group, &topic, &[(0, 10)]);
    let mut engine = support::engine(&group, WINDOW);
    let (status, _, reason) = group_status(&mut engine, &group).await;
    assert_eq!(status, Status::CaughtUp, "{reason}");

    // An operator resets the group to offset 3 (kafka-consumer-groups --reset-offsets).
    support::commit(&group, &topic, &[(0, 3)]);
    let g = poll_group(&mut engine, &group).await;
    assert_eq!((g.status.as_str(), g.lag), ("REWIND", 7), "{}", g.reason);
    let p = &g.topics[0].partitions[0];
    assert!(p.reason.contains("from 10 to 3"), "{}", p.reason);
}
