//! The relay touches its ownership session every tick, whatever else it waits for. A
//! relay whose outbox statements are held up (a lock, a database slow under load) is
//! alive and must keep its session and its slots; a session left idle past
//! `--relay-session-timeout` is ended by PostgreSQL, and the relay loses every slot.

mod support;

use std::time::Duration;

use support::{Service, eventually};

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
