//! Two writers of the same order overlapping (a former and a new owner of a
//! partition during a rebalance, or a keyless record): nothing may be merged,
//! applied twice or dead-lettered by mistake. Only PostgreSQL is needed: each race
//! is forced by holding a lock in an open transaction until both writers wait.

use std::time::{Duration, Instant};

use chrono::Utc;
use order_consumer::MIGRATOR;
use order_consumer::error::FailureKind;
use order_consumer::store::dedup_store;
use order_consumer::store::projection::{Effect, ProjectionEvent};
use order_consumer::worker::effect_batch::{self, BatchEntry, EntryOutcome};
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
    effect_batch::apply_batch(pool, group, dedup_store::LegacyRows::Absent, &[entry]).await
}

/// Waits until two sessions of `database` wait for a lock.
async fn wait_for_two_blocked(pool: &PgPool, database: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind(database)
        .fetch_one(pool)
        .await
        .expect("pg_stat_activity")
        .get("n");
        if waiting == 2 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "both writers blocked on the held lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A migrated fresh database: its pool, its name, and a group name.
async fn fresh(prefix: &str) -> (PgPool, String, String) {
    let (db_url, pool) = orderflow_testkit::fresh_database().await;
    MIGRATOR.run(&pool).await.expect("migrations run");
    let database = db_url.rsplit('/').next().unwrap();
    let database = database.split('?').next().unwrap().to_owned();
    (pool, database, orderflow_testkit::unique_name(prefix))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_event_from_two_owners_is_a_duplicate_not_a_lifecycle_violation() {
    let (pool, database, group) = fresh("group").await;
    let create = created("o-1", "alice");
    let outcome = apply(&pool, &group, &create, 0).await.expect("create");
    assert_eq!(outcome, [EntryOutcome::Applied]);
    let paid = ProjectionEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: "o-1".into(),
        occurred_at: Utc::now(),
        effect: Effect::Paid {
            amount_cents: 1_500,
        },
    };

    // Both owners get past their reads, then wait on the order's row lock.
    let mut blocker = PgConnection::connect(&orderflow_testkit::database_url_for(&database))
        .await
        .expect("connect");
    let mut hold = blocker.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM orders WHERE order_id = 'o-1' FOR UPDATE")
        .execute(&mut *hold)
        .await
        .expect("lock the order");
    let owners: Vec<_> = (0..2)
        .map(|_| {
            let (pool, group, event) = (pool.clone(), group.clone(), paid.clone());
            tokio::spawn(async move { apply(&pool, &group, &event, 1).await })
        })
        .collect();
    wait_for_two_blocked(&pool, &database).await;
    hold.rollback().await.expect("release");

    let mut outcomes = Vec::new();
    for owner in owners {
        outcomes.push(owner.await.expect("owner task").expect("apply"));
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [vec![EntryOutcome::Applied], vec![EntryOutcome::Duplicate]],
        "the later owner sees the event as applied, never as a violation"
    );
    let row = sqlx::query("SELECT status, events_applied FROM orders WHERE order_id = 'o-1'")
        .fetch_one(&pool)
        .await
        .expect("order row");
    assert_eq!(row.get::<String, _>("status"), "paid");
    assert_eq!(row.get::<i32, _>("events_applied"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_of_a_new_order_are_not_merged() {
    let (pool, database, group) = fresh("group").await;
    let first = created("o-1", "alice");
    let second = created("o-1", "bob");

    // Both writers read "no such order", then wait on these uncommitted dedup rows.
    let mut blocker = PgConnection::connect(&orderflow_testkit::database_url_for(&database))
        .await
        .expect("connect");
    let mut hold = blocker.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO processed_events (consumer_group, order_id, event_id, topic, \"partition\", \"offset\") \
         SELECT $1, 'o-1', id, 'orders', 0, 0 FROM UNNEST($2::text[]) AS id",
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
