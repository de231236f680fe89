//! A record that waits (its own failure on backoff, a dead-letter write to retry)
//! holds none of the `--db-concurrency` slots: with every slot's record failing on
//! its own, other keys' records are still applied. (Records waiting on the schema
//! registry: `registry_trouble.rs`.)

mod support;

use std::time::Duration;

use orderflow_runtime::backoff::Backoff;
use support::{TestEnv, lifecycle, wait_until};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_retrying_their_own_failure_hold_no_database_slot() {
    let env = TestEnv::new("slots-own-failure", 1).await;
    // A handler bug stand-in: the database rejects the cursed orders with an error
    // that says nothing about whether retrying helps, so each is retried on backoff.
    sqlx::raw_sql(
        "CREATE FUNCTION reject_cursed() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.order_id LIKE 'cursed-%' THEN RAISE EXCEPTION 'cursed order'; END IF; \
         RETURN NEW; END $$; \
         CREATE TRIGGER reject_cursed BEFORE INSERT OR UPDATE ON orders \
         FOR EACH ROW EXECUTE FUNCTION reject_cursed();",
    )
    .execute(&env.pool)
    .await
    .expect("install trigger");
    let settings = order_consumer::EngineSettings {
        db_concurrency: 2,
        // Enough attempts, spaced out, that the cursed records retry for the whole test.
        max_attempts: 1_000,
        retry_backoff: Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_millis(500),
            multiplier: 2.0,
        },
        exit_when_idle: None,
        ..env.settings()
    };
    let token = CancellationToken::new();
    let engine = env.spawn_engine(settings, token.clone());

    env.send_lifecycles(&[lifecycle("warm-up", false)]).await;
    wait_until(Duration::from_secs(60), "the engine to run", || async {
        env.orders().await.contains_key("warm-up")
    })
    .await;
    // One at a time, so each fails alone in a batch of its own: more than the slots.
    for i in 0..4 {
        env.send_event(&lifecycle(&format!("cursed-{i}"), false).remove(0))
            .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let others: Vec<_> = (0..20)
        .map(|i| lifecycle(&format!("other-{i}"), false))
        .collect();
    env.send_lifecycles(&others).await;
    let other_ids: Vec<String> = (0..20).map(|i| format!("other-{i}")).collect();
    env.wait_until_shipped(
        &other_ids,
        Duration::from_secs(60),
        "other keys' records applied while four records retry their own failure",
    )
    .await;
    assert_eq!(
        env.dlq_record_count(),
        0,
        "the cursed records are still within their attempts"
    );
    token.cancel();
    engine.await.expect("engine task").expect("engine run");
}
