//! The relay touches its ownership session every tick, whatever else it waits for. A
//! relay whose outbox statements are held up (a lock, a database slow under load) is
//! alive and must keep its session and its slots; a session left idle past
//! `--relay-session-timeout` is ended by PostgreSQL, and the relay loses every slot.

mod support;

use std::time::Duration;

use support::{Service, all_sent, eventually};

/// The backend pid of the service's ownership session, if one is open.
async fn ownership_session(pool: &sqlx::PgPool) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'orderflow-relay'",
    )
    .fetch_optional(pool)
    .await
    .expect("read pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_held_up_on_the_outbox_keeps_its_ownership_session() {
    let session_timeout = Duration::from_secs(3);
    let service = Service::start(|args| args.relay_session_timeout = session_timeout).await;
    let before = eventually("the relay's ownership session", || async {
        ownership_session(&service.pool).await
    })
    .await;

    // Every outbox statement of the relay (its slots' claims, its gauges) waits on this
    // lock for three session timeouts.
    let mut hold = service.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE order_service.outbox IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .expect("lock the outbox");
    tokio::time::sleep(session_timeout * 3).await;
    hold.rollback().await.expect("release the outbox");

    let after = ownership_session(&service.pool).await;
    assert_eq!(
        after,
        Some(before),
        "the ownership session was ended while the relay waited on the outbox \
         (pid {before} before, {after:?} after): the relay lost its slots"
    );
    service.stop().await;
}

/// Scans of the outbox table so far (sequential and by index), as the statistics
/// collector has them.
async fn outbox_scans(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::bigint
         FROM pg_stat_user_tables WHERE schemaname = 'order_service' AND relname = 'outbox'",
    )
    .fetch_one(pool)
    .await
    .expect("read pg_stat_user_tables")
}

/// Lets every backend of the service flush its statistics: a backend that went idle
/// reports within `PGSTAT_IDLE_INTERVAL` (10 s).
async fn settled_outbox_scans(pool: &sqlx::PgPool) -> i64 {
    tokio::time::sleep(Duration::from_secs(11)).await;
    outbox_scans(pool).await
}

/// A write wakes the slot its order belongs to, not all 64: with every slot looking
/// at the outbox on every write, an API at a few hundred writes/s spent the database
/// on empty reads, and its own requests timed out waiting for a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_wakes_only_its_own_slot() {
    const WRITES: i64 = 6;
    let service = Service::start(|args| {
        // Idle slots never look by themselves within the test.
        args.relay_poll_interval = Duration::from_secs(120);
    })
    .await;
    eventually("the relay's ownership session", || async {
        ownership_session(&service.pool).await
    })
    .await;
    let before = settled_outbox_scans(&service.pool).await;
    for _ in 0..WRITES {
        let placed = service.post("/orders", support::ORDER, &[]).await;
        assert_eq!(
            placed.status,
            reqwest::StatusCode::CREATED,
            "{}",
            placed.body
        );
        all_sent(&service.pool, "the order's event sent").await;
    }
    let scans = settled_outbox_scans(&service.pool).await - before;
    // Per write: the owner's claim, its claim after recording, the insert's own look-up
    // and the gauges' count every second (about 25 over the test): far below 64.
    println!("{scans} outbox scans for {WRITES} writes");
    assert!(
        scans < WRITES * 32,
        "{scans} scans of the outbox for {WRITES} writes: each write woke more than its own slot"
    );
    service.stop().await;
}
