//! Status transitions on a scripted scenario against the real broker: a consumer that
//! stops while records keep arriving becomes STOPPED within the window; once it
//! restarts the group is OK while it works through the backlog, then CAUGHT_UP.

mod support;

use std::time::{Duration, Instant};

use orderflow_lag::{LagEngine, Snapshot, Status};

const WINDOW: Duration = Duration::from_secs(2);
const INTERVAL: Duration = Duration::from_millis(250);

async fn group_status(engine: &mut LagEngine, group: &str) -> (Status, i64, String) {
    let snapshot: Snapshot = engine.poll().await.expect("poll");
    let g = snapshot
        .groups
        .iter()
        .find(|g| g.group == group)
        .unwrap_or_else(|| panic!("group {group} missing"));
    (g.status, g.lag, g.reason.clone())
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
    let (_, lag, reason) = group_status(&mut engine, &group).await;
    assert_eq!(lag, 12, "{reason}");
    assert!(reason.contains("no progress"), "{reason}");

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
