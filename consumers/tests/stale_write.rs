//! Two transactions that both find no row for a new order must not both write it:
//! the projection update refuses a stale write (optimistic check on
//! `events_applied`) and the loser is retried, where it sees the order exists.
//! Only PostgreSQL is needed: the race is forced by holding the dedup rows of
//! both events in an open transaction until both writers are past their reads.

use std::time::{Duration, Instant};

use chrono::Utc;
use order_consumer::dedup_store::MIGRATOR;
use order_consumer::effect_batch::{self, BatchEntry, EntryOutcome};
use order_consumer::error::FailureKind;
use order_consumer::projection::{Effect, ProjectionEvent};
use sqlx::{Connection, PgConnection, PgPool, Row};

fn created(order_id: &str, customer_id: &str) -> ProjectionEvent {
    ProjectionEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: order_id.into(),
        occurred_at: Utc::now(),
        effect: Effect::Created {
            customer_id: customer_id.into(),
            currency: "EUR".into(),
            total_cents: 1_500,
            item_count: 3,
        },
    }
}

async fn apply(
    pool: &PgPool,
    group: &str,
    event: &ProjectionEvent,
    offset: i64,
) -> Result<Vec<EntryOutcome>, effect_batch::BatchFailure> {
    let entry = BatchEntry {
        event,
        topic: "orders",
        partition: 0,
        offset,
    };
    effect_batch::apply_batch(pool, group, &[entry]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_of_a_new_order_are_not_merged() {
    let (db_url, pool) = orderflow_testkit::fresh_database().await;
    MIGRATOR.run(&pool).await.expect("migrations run");
    let database = db_url.rsplit('/').next().unwrap();
    let database = database.split('?').next().unwrap().to_owned();
    let group = orderflow_testkit::unique_name("group");
    let first = created("o-1", "alice");
    let second = created("o-1", "bob");

    // Both writers read "no such order", then wait on these uncommitted dedup rows.
    let mut blocker = PgConnection::connect(&db_url).await.expect("connect");
    let mut hold = blocker.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO processed_events (consumer_group, event_id, topic, \"partition\", \"offset\") \
         SELECT $1, id, 'orders', 0, 0 FROM UNNEST($2::text[]) AS id",
    )
    .bind(&group)
    .bind(vec![first.event_id.clone(), second.event_id.clone()])
    .execute(&mut *hold)
    .await
    .expect("hold dedup rows");

    let a = tokio::spawn({
        let (pool, group, event) = (pool.clone(), group.clone(), first.clone());
        async move { apply(&pool, &group, &event, 1).await }
    });
    let b = tokio::spawn({
        let (pool, group, event) = (pool.clone(), group.clone(), second.clone());
        async move { apply(&pool, &group, &event, 2).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind(&database)
        .fetch_one(&pool)
        .await
        .expect("pg_stat_activity")
        .get("n");
        if waiting == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both writers blocked on the dedup rows"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hold.rollback().await.expect("release");

    let results = [a.await.expect("task a"), b.await.expect("task b")];
    let applied = results
        .iter()
        .filter(|r| matches!(r.as_deref(), Ok([EntryOutcome::Applied])))
        .count();
    assert_eq!(
        applied, 1,
        "only one creation of o-1 may be applied: {results:?}"
    );
    let (loser, loser_offset) = match &results[0] {
        Ok(_) => (&second, 2),
        Err(_) => (&first, 1),
    };
    let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(refused.kind, FailureKind::Transient, "{refused}");
    // The retry sees the order and rejects the second creation.
    let retried = apply(&pool, &group, loser, loser_offset)
        .await
        .expect("retry");
    assert!(
        matches!(&retried[..], [EntryOutcome::Invalid(reason)] if reason.contains("created twice")),
        "{retried:?}"
    );
    let row = sqlx::query("SELECT events_applied FROM orders WHERE order_id = 'o-1'")
        .fetch_one(&pool)
        .await
        .expect("order row");
    assert_eq!(row.get::<i32, _>("events_applied"), 1);
    let dedup: i64 =
        sqlx::query("SELECT count(*) AS n FROM processed_events WHERE consumer_group = $1")
            .bind(&group)
            .fetch_one(&pool)
            .await
            .expect("count")
            .get("n");
    assert_eq!(dedup, 1, "the refused event left no dedup row");
}
