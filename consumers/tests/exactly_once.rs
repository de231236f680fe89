//! Exactly-once effects against the real broker and PostgreSQL: duplicates and
//! redeliveries are absorbed, and records of one order apply in offset order
//! while different orders run concurrently.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::Row;
use support::{TestEnv, lifecycle};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_and_redeliveries_are_absorbed() {
    let env = TestEnv::new("eo-dup", 4).await;
    let lifecycles: Vec<_> = (0..40)
        .map(|i| lifecycle(&format!("order-{i}"), i % 5 == 0))
        .collect();
    env.send_lifecycles(&lifecycles).await;
    // The exact same records again (same event ids), after the originals.
    let duplicates: Vec<_> = lifecycles.iter().take(10).cloned().collect();
    env.send_lifecycles(&duplicates).await;

    let summary = env.run_until_idle(env.settings()).await;
    assert_eq!(summary.processed, 120, "{summary:?}");
    assert_eq!(summary.duplicates, 30, "{summary:?}");
    assert_eq!(summary.dead_lettered, 0, "{summary:?}");
    let orders = env.orders().await;
    assert_eq!(orders.len(), 40);
    for (i, _) in lifecycles.iter().enumerate() {
        let (status, applied) = &orders[&format!("order-{i}")];
        let expected = if i % 5 == 0 { "cancelled" } else { "shipped" };
        assert_eq!((status.as_str(), *applied), (expected, 3), "order-{i}");
    }
    assert_eq!(env.processed_count().await, 120);
    assert_eq!(
        env.committed_offsets(),
        env.non_empty_end_offsets(),
        "everything done is committed"
    );

    // Rewind the group to the beginning: a full redelivery changes nothing.
    let rewind: BaseConsumer = support::kafka_config()
        .set("group.id", &env.group)
        .create()
        .expect("client");
    let mut tpl = TopicPartitionList::new();
    for p in 0..env.partitions {
        tpl.add_partition_offset(&env.topic, p, Offset::Offset(0))
            .unwrap();
    }
    rewind
        .commit(&tpl, CommitMode::Sync)
        .expect("rewind commit");
    drop(rewind);
    let again = env.run_until_idle(env.settings()).await;
    assert_eq!(again.processed, 0, "{again:?}");
    assert_eq!(again.duplicates, 150, "{again:?}");
    let after = env.orders().await;
    assert_eq!(after, orders, "redelivery must not change the projection");
    assert!(env.dlq_records(0, Duration::from_millis(500)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_of_one_order_apply_in_offset_order_under_concurrency() {
    // One partition: every order shares it, so only key-level scheduling can run
    // them concurrently, and only the per-key gate keeps each order in order.
    let env = TestEnv::new("eo-order", 1).await;
    let lifecycles: Vec<_> = (0..60)
        .map(|i| lifecycle(&format!("o-{i}"), false))
        .collect();
    // Interleave: every order's created, then paid, then shipped, in rounds.
    for step in 0..3 {
        for events in &lifecycles {
            env.send_event(&events[step]).await;
        }
    }
    let mut settings = env.settings();
    settings.max_in_flight = 64;
    settings.batch_size = 8;
    settings.effect_delay = Duration::from_millis(2);
    let summary = env.run_until_idle(settings).await;
    assert_eq!(
        summary.dead_lettered, 0,
        "an out-of-order apply is dead-lettered: {summary:?}"
    );
    assert_eq!(summary.processed, 180);
    for (order, (status, applied)) in env.orders().await {
        assert_eq!((status.as_str(), applied), ("shipped", 3), "{order}");
    }

    // Each order's events were applied in offset order: one after the other, or
    // together in one transaction (a run of the key's records in one batch).
    let rows = sqlx::query(
        "SELECT event_id, \"offset\", processed_at FROM processed_events WHERE consumer_group = $1",
    )
    .bind(&env.group)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let by_event: HashMap<String, (i64, DateTime<Utc>)> = rows
        .iter()
        .map(|r| (r.get("event_id"), (r.get("offset"), r.get("processed_at"))))
        .collect();
    for events in &lifecycles {
        let applied: Vec<(i64, DateTime<Utc>)> = events
            .iter()
            .map(|e| by_event[&e.event_id.to_string()])
            .collect();
        for pair in applied.windows(2) {
            assert!(pair[0].0 < pair[1].0, "offsets in order: {applied:?}");
            assert!(pair[0].1 <= pair[1].1, "applied in order: {applied:?}");
        }
    }
    // Concurrency really happened: some batch held several orders.
    let concurrent: i64 = sqlx::query(
        "SELECT max(n) AS m FROM (SELECT count(*) AS n FROM processed_events WHERE consumer_group = $1 GROUP BY processed_at) t",
    )
    .bind(&env.group)
    .fetch_one(&env.pool)
    .await
    .unwrap()
    .get("m");
    assert!(
        concurrent > 1,
        "expected several orders per transaction, got {concurrent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_events_of_one_order_apply_in_one_transaction_in_order() {
    // created, paid, paid again (the same event: a producer's retry) and shipped
    // of one order, all on the topic before the engine starts: one fetch, one run
    // of the key, one batch.
    let env = TestEnv::new("eo-run", 1).await;
    let events = lifecycle("order-run", false);
    for event in [&events[0], &events[1], &events[1], &events[2]] {
        env.send_event(event).await;
    }
    let summary = env.run_until_idle(env.settings()).await;
    assert_eq!(
        (summary.processed, summary.duplicates, summary.dead_lettered),
        (3, 1, 0),
        "in offset order, created, paid and shipped all apply: {summary:?}"
    );
    let orders = env.orders().await;
    assert_eq!(orders["order-run"], ("shipped".to_owned(), 3));

    // Rows inserted by one transaction carry its id (xmin): one for all three.
    let rows = sqlx::query(
        "SELECT event_id, \"offset\", xmin::text AS tx FROM processed_events \
         WHERE consumer_group = $1 ORDER BY \"offset\"",
    )
    .bind(&env.group)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let applied: Vec<(String, i64, String)> = rows
        .iter()
        .map(|r| (r.get("event_id"), r.get("offset"), r.get("tx")))
        .collect();
    let expected: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    let ids: Vec<String> = applied.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(
        ids, expected,
        "the first of the two paid records is the one applied"
    );
    assert_eq!(
        applied
            .iter()
            .map(|(_, offset, _)| *offset)
            .collect::<Vec<_>>(),
        vec![0, 1, 3]
    );
    assert!(
        applied.iter().all(|(_, _, tx)| *tx == applied[0].2),
        "one transaction: {applied:?}"
    );
    assert_eq!(
        env.committed_offsets(),
        env.non_empty_end_offsets(),
        "all four records done and committed"
    );
}

/// Dedup rows written before the key held the order id (order id '') still mark
/// their events processed: a redelivery of those is a duplicate, not a new effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_recorded_before_the_order_keyed_dedup_are_still_duplicates() {
    let env = TestEnv::new("eo-legacy", 2).await;
    let lifecycles: Vec<_> = (0..10)
        .map(|i| lifecycle(&format!("order-{i}"), false))
        .collect();
    // order-0's three events were processed before the upgrade.
    for event in &lifecycles[0] {
        sqlx::query(
            "INSERT INTO processed_events (consumer_group, order_id, event_id, topic, \"partition\", \"offset\") \
             VALUES ($1, '', $2, $3, 0, 0)",
        )
        .bind(&env.group)
        .bind(event.event_id.to_string())
        .bind(&env.topic)
        .execute(&env.pool)
        .await
        .unwrap();
    }
    env.send_lifecycles(&lifecycles).await;

    let summary = env.run_until_idle(env.settings()).await;
    assert_eq!(summary.processed, 27, "{summary:?}");
    assert_eq!(summary.duplicates, 3, "{summary:?}");
    let orders = env.orders().await;
    assert!(!orders.contains_key("order-0"), "{orders:?}");
    assert_eq!(orders.len(), 9);
    assert_eq!(
        env.processed_count().await,
        30,
        "27 new rows beside the 3 old ones"
    );
}
