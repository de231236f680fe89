//! The order service's relay writes its records in Kafka transactions (one
//! transactional producer per outbox slot). The engine reads with
//! `isolation.level=read_committed`: an aborted transaction's records are never
//! applied, and `--exit-when-idle` sees a partition read to its end although a commit
//! marker follows the last record (the committed offset stays one short of the high
//! watermark for good).

mod support;

use std::time::Duration;

use rdkafka::producer::{FutureRecord, Producer};
use support::{TestEnv, lifecycle};

/// Sends each event of `events` in one transaction, then commits or aborts it.
async fn in_transaction(env: &TestEnv, events: &[orderflow_schemas::OrderEvent], commit: bool) {
    let producer = orderflow_testkit::transactional_producer(&support::client_config(&env.brokers));
    producer.begin_transaction().expect("begin");
    for event in events {
        let value = env.serializer.serialize(event);
        producer
            .send(
                FutureRecord::to(&env.topic)
                    .key(event.order_id.as_bytes())
                    .payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(error, _)| error)
            .expect("record acknowledged");
    }
    if commit {
        producer
            .commit_transaction(Duration::from_secs(30))
            .expect("commit");
    } else {
        producer
            .abort_transaction(Duration::from_secs(30))
            .expect("abort");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_are_applied_aborted_ones_never_and_the_engine_exits_when_idle() {
    let env = TestEnv::new("tx-input", 1).await;
    let applied: Vec<_> = (0..3)
        .flat_map(|n| lifecycle(&format!("tx-ok-{n}"), false))
        .collect();
    let aborted: Vec<_> = lifecycle("tx-aborted", false);
    in_transaction(&env, &applied, true).await;
    in_transaction(&env, &aborted, false).await;

    // Bounded by 90 s: an idle check that compares the last record + 1 with the high
    // watermark never sees the commit and abort markers read.
    let summary = env.run_until_idle(env.settings()).await;

    let orders = env.orders().await;
    assert_eq!(
        orders.keys().cloned().collect::<Vec<_>>(),
        vec!["tx-ok-0", "tx-ok-1", "tx-ok-2"],
        "only the committed transaction's orders"
    );
    assert_eq!(summary.processed as usize, applied.len());
    assert_eq!(summary.dead_lettered, 0);
}
