//! The projection database becomes unavailable for ~10 s mid-stream. The shared
//! PostgreSQL cannot be stopped, so this test's database alone refuses connections
//! (`ALTER DATABASE .. ALLOW_CONNECTIONS false` plus terminating its backends),
//! which is what clients see when the server is down. Expected: no DLQ records,
//! no commit past unprocessed work, full recovery afterwards. A poison record
//! waits for the database too (its dead-letter ledger lives there), then is
//! dead-lettered once.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use order_consumer::Summary;
use sqlx::{Connection, Executor, PgConnection, Row};
use support::{TestEnv, counter_total, lifecycle, wait_until};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

async fn set_allow_connections(admin: &mut PgConnection, database: &str, allow: bool) {
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS {allow}"
        )))
        .await
        .expect("alter database");
    if !allow {
        end_sessions(admin, database).await;
    }
}

/// Ends every session on `database`, so that each new one sees what was just altered.
async fn end_sessions(admin: &mut PgConnection, database: &str) {
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(database)
        .execute(&mut *admin)
        .await
        .expect("terminate backends");
}

/// The database's name, from the test's URL.
fn database_name(env: &TestEnv) -> String {
    let last = env.db_url.rsplit('/').next().unwrap();
    last.split('?').next().unwrap().to_owned()
}

/// `count` order lifecycles (placed, paid, shipped) with ids `prefix-0..`.
fn lifecycles(prefix: &str, count: usize) -> Vec<Vec<orderflow_schemas::OrderEvent>> {
    (0..count)
        .map(|i| lifecycle(&format!("{prefix}-{i}"), false))
        .collect()
}

/// Starts the engine, to exit once idle for 3 s.
fn spawn_until_idle(env: &TestEnv) -> JoinHandle<order_consumer::Result<Summary>> {
    let mut settings = env.settings();
    settings.exit_when_idle = Some(Duration::from_secs(3));
    env.spawn_engine(settings, CancellationToken::new())
}

/// The state an outage interrupts: `count` lifecycles (`b-0..`) sent and applied by an
/// engine that keeps running, and an admin connection to cause the outage with.
async fn applying(
    env: &TestEnv,
    count: usize,
) -> (JoinHandle<order_consumer::Result<Summary>>, PgConnection) {
    env.send_lifecycles(&lifecycles("b", count)).await;
    let engine = spawn_until_idle(env);
    wait_until(Duration::from_secs(60), "first events applied", || async {
        env.processed_count().await >= 3 * count as i64
    })
    .await;
    let admin = PgConnection::connect(&orderflow_testkit::database_url())
        .await
        .expect("admin connection");
    (engine, admin)
}

/// Makes every write to `orders` fail with the same error of unknown kind (P0001), as
/// a broken migration or a misbehaving extension would; [`thaw_projection`] undoes it.
async fn freeze_projection(env: &TestEnv) {
    sqlx::raw_sql(
        "CREATE FUNCTION frozen() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'projection frozen'; END $$; \
         CREATE TRIGGER frozen BEFORE INSERT OR UPDATE ON orders \
         FOR EACH ROW EXECUTE FUNCTION frozen();",
    )
    .execute(&env.pool)
    .await
    .expect("install trigger");
}

/// Writes to `orders` succeed again.
async fn thaw_projection(env: &TestEnv) {
    sqlx::raw_sql("DROP TRIGGER frozen ON orders")
        .execute(&env.pool)
        .await
        .expect("drop trigger");
}

/// Waits for the engine to recover and exit, then checks that the outage cost
/// nothing: no dead letters, each of the `orders` lifecycles applied once and in full,
/// and offsets committed to the log end. Returns the engine's summary.
async fn recovered(
    env: &TestEnv,
    engine: JoinHandle<order_consumer::Result<Summary>>,
    orders: usize,
) -> Summary {
    let summary = tokio::time::timeout(Duration::from_secs(90), engine)
        .await
        .expect("engine recovers and exits when idle")
        .expect("engine task")
        .expect("engine run");
    assert_eq!(
        summary.dead_lettered, 0,
        "a failure of the database never dead-letters: {summary:?}"
    );
    assert!(env.dlq_records(0, Duration::from_millis(300)).is_empty());
    let applied = env.orders().await;
    assert_eq!(applied.len(), orders);
    assert!(
        applied
            .values()
            .all(|(status, applied)| status == "shipped" && *applied == 3),
        "every event applied exactly once: {applied:?}"
    );
    assert_eq!(env.processed_count().await, 3 * orders as i64);
    assert_eq!(env.committed_offsets(), env.non_empty_end_offsets());
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_is_retried_without_dead_letters_and_recovers() {
    let env = TestEnv::new("db-outage", 3).await;
    let database = database_name(&env);
    let (engine, mut admin) = applying(&env, 30).await;

    let outage_started: DateTime<Utc> = Utc::now();
    set_allow_connections(&mut admin, &database, false).await;
    env.send_lifecycles(&lifecycles("d", 30)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let committed_during_outage = env.committed_offsets();
    set_allow_connections(&mut admin, &database, true).await;

    let summary = recovered(&env, engine, 60).await;
    assert!(
        summary.retried > 0,
        "the outage caused retries: {summary:?}"
    );

    // Nothing could be done during the outage, so what was committed by its end
    // must be covered by effects committed before it started.
    for (partition, offset) in committed_during_outage {
        let row = sqlx::query(
            "SELECT count(*) AS n, coalesce(bool_and(processed_at < $4), true) AS before_outage \
             FROM processed_events WHERE consumer_group = $1 AND \"partition\" = $2 AND \"offset\" < $3",
        )
        .bind(&env.group)
        .bind(partition)
        .bind(offset)
        .bind(outage_started)
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(row.get::<i64, _>("n"), offset, "partition {partition}");
        assert!(
            row.get::<bool, _>("before_outage"),
            "partition {partition}: commit ran ahead"
        );
    }
}

/// Sets or clears `default_transaction_read_only` on `database` and ends its
/// sessions so every new one sees the change: what clients of a demoted primary
/// see during a failover (SQLSTATE 25006 on every write).
async fn set_read_only(admin: &mut PgConnection, database: &str, read_only: bool) {
    let statement = if read_only {
        format!("ALTER DATABASE {database} SET default_transaction_read_only = on")
    } else {
        format!("ALTER DATABASE {database} RESET default_transaction_read_only")
    };
    admin
        .execute(sqlx::AssertSqlSafe(statement))
        .await
        .expect("alter database");
    end_sessions(admin, database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_database_never_dead_letters_valid_events() {
    let env = TestEnv::new("db-read-only", 3).await;
    let database = database_name(&env);
    let (engine, mut admin) = applying(&env, 20).await;
    set_read_only(&mut admin, &database, true).await;
    env.send_lifecycles(&lifecycles("d", 20)).await;
    // Long enough for --max-attempts (3) at 50 ms..1 s backoff to run out many times.
    tokio::time::sleep(Duration::from_secs(8)).await;
    set_read_only(&mut admin, &database, false).await;
    recovered(&env, engine, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn error_shared_by_every_record_is_a_database_failure() {
    let env = TestEnv::new("db-wide-error", 1).await;
    freeze_projection(&env).await;
    env.send_lifecycles(&lifecycles("o", 20)).await;
    let engine = spawn_until_idle(&env);
    // Long enough for --max-attempts (3) to run out many times over.
    tokio::time::sleep(Duration::from_secs(5)).await;
    thaw_projection(&env).await;

    let summary = recovered(&env, engine, 20).await;
    assert!(summary.retried > 0, "{summary:?}");
}

/// The same database-wide error at low traffic: every batch holds one record, so
/// "every record of the batch failed alike" can never be seen. The error must still
/// be judged the database's (by probing it), not each record's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_record_under_a_database_wide_error_is_not_dead_lettered() {
    let env = TestEnv::new("db-wide-lone", 1).await;
    freeze_projection(&env).await;
    env.send_lifecycles(&lifecycles("lone", 3)).await;
    let mut settings = env.settings();
    settings.batch_size = 1;
    settings.exit_when_idle = Some(Duration::from_secs(3));
    let engine = env.spawn_engine(settings, CancellationToken::new());
    // Long enough for --max-attempts (3) to run out many times over.
    tokio::time::sleep(Duration::from_secs(5)).await;
    thaw_projection(&env).await;

    let summary = recovered(&env, engine, 3).await;
    assert!(summary.retried > 0, "{summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_record_waits_for_the_database_then_is_dead_lettered_once() {
    let env = TestEnv::new("db-outage-dlq", 1).await;
    let database = database_name(&env);
    let mut admin = PgConnection::connect(&orderflow_testkit::database_url())
        .await
        .expect("admin connection");
    let metrics = prometheus::Registry::new();
    let mut settings = env.settings();
    settings.exit_when_idle = Some(Duration::from_secs(3));
    let engine = env.spawn_engine_observed(settings, CancellationToken::new(), metrics.clone());
    // The database goes down once the worker runs: start-up itself needs it (the
    // binary migrates, the engine checks no other group writes there).
    wait_until(
        Duration::from_secs(60),
        "the partition assigned",
        || async { counter_total(&metrics, "orderflow_consumer_rebalances_total") >= 1.0 },
    )
    .await;
    set_allow_connections(&mut admin, &database, false).await;
    env.send_raw(b"poison", b"this is not avro", "OrderCreated")
        .await;
    // Each retry round follows a dead-letter attempt that found no ledger.
    wait_until(
        Duration::from_secs(60),
        "the dead-letter step retried while the database is down",
        || async { counter_total(&metrics, "orderflow_consumer_retries_total") >= 3.0 },
    )
    .await;
    assert_eq!(
        env.dlq_record_count(),
        0,
        "nothing is dead-lettered without the ledger"
    );
    assert!(
        env.committed_offsets().get(&0).is_none_or(|&o| o == 0),
        "nothing committed past the record"
    );

    set_allow_connections(&mut admin, &database, true).await;
    let summary = tokio::time::timeout(Duration::from_secs(90), engine)
        .await
        .expect("engine recovers and exits when idle")
        .expect("engine task")
        .expect("engine run");
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert_eq!(env.dlq_record_count(), 1, "{summary:?}");
    assert_eq!(env.committed_offsets(), env.non_empty_end_offsets());
}
