//! The faults, one function a scenario, each run while the workloads write:
//!   a  kill -9 a random worker every 5 s and start a new one (30 s)
//!   b  kill -9 the leader of the busiest partition, restart it 20 s later; three times
//!   c  stop PostgreSQL (pg_ctl stop -m fast) for 15 s, twice
//!   d  scale the workers 1 -> 4 -> 1 while producing
//!   e  kill -9 the order service (API and relay) and restart it 3 s later; twice
//!   f  a, b, c, d and e at once
//!   g  after the main load, a trickle (2 records/s, one-record batches) while every
//!      write to `orders` fails for 10 s (a trigger raising, as a rolling migration
//!      would), then while PostgreSQL is stopped for 8 s
//!   h  PostgreSQL stopped for 20 s while workers join, leave (SIGTERM) and die (kill -9)
//!   i  a second order service on the same database, kill -9 of it; twice
//!   j  once the relay publishes, kill -9 of all three brokers (every leader it talks
//!      to) for 30 s
//!   k  once the relay publishes, PostgreSQL stopped while it waits for acknowledgements:
//!      the brokers frozen (SIGSTOP) for 3 s, PostgreSQL stopped, the brokers thawed (so
//!      the relay's transactions commit in Kafka with no database to record them); 20 s
//!      later PostgreSQL started

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::try_join_all;
use rand::Rng;
use tokio::process::Command;
use tokio::time::sleep;

use crate::infra::{Cluster, PrivatePostgres};
use crate::kafka_admin::{LagReader, leader_of};
use crate::supervisor::Supervised;
use crate::workers::{ServiceSpec, SharedService, SharedWorkers, start_service, terminate};

/// What the faults act on.
pub struct FaultContext {
    /// The workers.
    pub workers: SharedWorkers,
    /// The order service.
    pub service: SharedService,
    /// How to start it again.
    pub service_spec: ServiceSpec,
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// The private PostgreSQL.
    pub pg: Arc<PrivatePostgres>,
    /// The topic.
    pub topic: String,
    /// The group.
    pub group: String,
    /// Partitions of the topic.
    pub partitions: usize,
    /// The scenario's database URL.
    pub database_url: String,
    /// How long the main workloads produce.
    pub production: Duration,
    /// `order-producer` and its registry, for the trickle.
    pub producer_bin: PathBuf,
    /// Registry URL.
    pub registry: String,
    /// The scenario's directory.
    pub dir: PathBuf,
}

impl FaultContext {
    fn note(&self, line: &str) {
        let stamp = chrono::Utc::now().format("%H:%M:%S%.3f");
        if let Ok(mut log) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("faults.log"))
        {
            let _ = writeln!(log, "{stamp} {line}");
        }
    }
}

/// Runs the fault of `scenario`.
pub async fn run(scenario: char, ctx: &FaultContext) -> anyhow::Result<()> {
    match scenario {
        'a' => kill_workers(ctx).await,
        'b' => kill_leaders(ctx).await,
        'c' => stop_postgres(ctx).await,
        'd' => scale_workers(ctx).await,
        'e' => kill_service(ctx).await,
        'f' => {
            try_join_all([
                Box::pin(kill_workers(ctx)) as std::pin::Pin<Box<dyn Future<Output = _> + Send>>,
                Box::pin(kill_leaders(ctx)),
                Box::pin(stop_postgres(ctx)),
                Box::pin(scale_workers(ctx)),
                Box::pin(kill_service(ctx)),
            ])
            .await?;
            Ok(())
        }
        'g' => trickle_under_database_failure(ctx).await,
        'h' => churn_while_the_breaker_is_open(ctx).await,
        'i' => kill_one_of_two_services(ctx).await,
        'j' => cut_the_brokers(ctx).await,
        'k' => stop_postgres_with_acknowledgements_pending(ctx).await,
        other => anyhow::bail!("unknown scenario {other}"),
    }
}

async fn kill_workers(ctx: &FaultContext) -> anyhow::Result<()> {
    for _ in 0..6 {
        sleep(Duration::from_secs(5)).await;
        let mut workers = ctx.workers.lock().await;
        let live = workers.live();
        if !live.is_empty() {
            let victim = live[rand::rng().random_range(0..live.len())];
            let pid = workers.kill(victim).await;
            ctx.note(&format!("killed worker pid {pid}"));
        }
        workers.start_one()?;
    }
    Ok(())
}

async fn kill_leaders(ctx: &FaultContext) -> anyhow::Result<()> {
    let mut lag = LagReader::new(
        &ctx.cluster.bootstrap,
        &ctx.group,
        &ctx.topic,
        ctx.partitions,
    )?;
    let log = ctx.dir.join("faults.log");
    for round in 1..=3 {
        sleep(Duration::from_secs(5)).await;
        // The partition with most lag, then most records.
        let reading = read_lag_patiently(&mut lag).await?;
        let Some(&(partition, _, _)) = reading
            .partitions
            .iter()
            .max_by_key(|(_, lag, end)| (*lag, *end))
        else {
            ctx.note(&format!("round {round}: no partition known yet"));
            continue;
        };
        let leader = leader_of(&ctx.cluster.bootstrap, &ctx.topic, partition).await?;
        if !(1..=3).contains(&leader) {
            ctx.note(&format!(
                "round {round}: no leader for partition {partition} ({leader})"
            ));
            continue;
        }
        ctx.cluster.kill(leader, &log).await?;
        ctx.note(&format!("round {round}: killed broker {leader}"));
        sleep(Duration::from_secs(20)).await;
        ctx.cluster.start_node(leader, &log).await?;
        ctx.note(&format!("round {round}: restarted broker {leader}"));
    }
    Ok(())
}

/// A lag reading, retried for up to 30 s: a broker killed a moment ago answers with
/// errors (a fenced leader epoch) until the metadata settles.
async fn read_lag_patiently(lag: &mut LagReader) -> anyhow::Result<crate::kafka_admin::LagReading> {
    let mut tries = 0;
    loop {
        match lag.read().await {
            Ok(reading) => return Ok(reading),
            Err(error) if tries < 30 => {
                tries += 1;
                tracing::debug!(%error, "lag not readable yet");
                sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn stop_postgres(ctx: &FaultContext) -> anyhow::Result<()> {
    for round in 1..=2 {
        sleep(Duration::from_secs(5)).await;
        ctx.pg.stop_server().await?;
        ctx.note(&format!("round {round}: PostgreSQL stopped"));
        sleep(Duration::from_secs(15)).await;
        ctx.pg.start_server().await?;
        ctx.note(&format!("round {round}: PostgreSQL started"));
    }
    Ok(())
}

async fn scale_workers(ctx: &FaultContext) -> anyhow::Result<()> {
    sleep(Duration::from_secs(10)).await;
    {
        let mut workers = ctx.workers.lock().await;
        for _ in 0..3 {
            workers.start_one()?;
        }
    }
    ctx.note("scaled to 4 workers");
    sleep(Duration::from_secs(15)).await;
    let extra: Vec<usize> = ctx
        .workers
        .lock()
        .await
        .live()
        .into_iter()
        .skip(1)
        .collect();
    terminate(&ctx.workers, &extra).await;
    ctx.note("scaled to 1 worker");
    Ok(())
}

async fn kill_service(ctx: &FaultContext) -> anyhow::Result<()> {
    for round in 1..=2 {
        sleep(Duration::from_secs(10)).await;
        if let Some(mut service) = ctx.service.lock().await.take() {
            service.kill().await;
            ctx.note(&format!(
                "round {round}: killed the order service (pid {})",
                service.pid()
            ));
        }
        sleep(Duration::from_secs(3)).await;
        let pid = start_service(&ctx.service_spec, &ctx.service).await?;
        ctx.note(&format!(
            "round {round}: order service restarted (pid {pid})"
        ));
    }
    Ok(())
}

/// A second order service on the scenario's database shares the relay's slots with the
/// first (which takes the HTTP load); twice, 10 s apart, the second is killed with
/// kill -9 and started again 3 s later: the first takes its slots over meanwhile, and
/// the restarted one takes its share back. Stopped with SIGTERM once production ended.
async fn kill_one_of_two_services(ctx: &FaultContext) -> anyhow::Result<()> {
    let spec = ServiceSpec {
        port: crate::infra::free_port()?,
        log: ctx.dir.join("service2.log"),
        ..ctx.service_spec.clone()
    };
    let second: SharedService = Arc::new(tokio::sync::Mutex::new(None));
    let pid = start_service(&spec, &second).await?;
    ctx.note(&format!("second order service started (pid {pid})"));
    let started = tokio::time::Instant::now();
    for round in 1..=2 {
        sleep(Duration::from_secs(10)).await;
        if let Some(mut service) = second.lock().await.take() {
            service.kill().await;
            ctx.note(&format!(
                "round {round}: killed the second order service (pid {})",
                service.pid()
            ));
        }
        sleep(Duration::from_secs(3)).await;
        let pid = start_service(&spec, &second).await?;
        ctx.note(&format!(
            "round {round}: second order service restarted (pid {pid})"
        ));
    }
    sleep(ctx.production.saturating_sub(started.elapsed())).await;
    if let Some(mut service) = second.lock().await.take() {
        service.terminate(Duration::from_secs(30)).await;
        ctx.note("second order service stopped (SIGTERM)");
    }
    Ok(())
}

/// Waits until the relay has recorded a row sent (at most 120 s): on a fresh cluster its
/// transactional producers need some seconds (the transaction coordinator loads) before
/// the first publish, and a fault before that would not find the relay at work.
async fn relay_publishing(ctx: &FaultContext) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let sent = async {
            let mut connection =
                <sqlx::PgConnection as sqlx::Connection>::connect(&ctx.database_url).await?;
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM order_service.outbox WHERE sent_at IS NOT NULL)",
            )
            .fetch_one(&mut connection)
            .await
        }
        .await;
        if let Ok(true) = sent {
            ctx.note("the relay has recorded a row sent");
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the relay recorded no row sent within 120 s"
        );
        sleep(Duration::from_millis(500)).await;
    }
}

/// Every broker killed (kill -9) while orders are placed, all started again 30 s later:
/// the relay (and everyone else) has no broker to talk to meanwhile.
async fn cut_the_brokers(ctx: &FaultContext) -> anyhow::Result<()> {
    let log = ctx.dir.join("faults.log");
    relay_publishing(ctx).await?;
    sleep(Duration::from_secs(3)).await;
    for node in 1..=3 {
        ctx.cluster.kill(node, &log).await?;
    }
    ctx.note("killed brokers 1, 2 and 3");
    sleep(Duration::from_secs(30)).await;
    ctx.note("starting brokers 1, 2 and 3");
    // Each start waits for all three brokers to answer: start them together.
    try_join_all((1..=3).map(|node| ctx.cluster.start_node(node, &log))).await?;
    ctx.note("brokers 1, 2 and 3 answer again");
    Ok(())
}

/// The brokers are frozen (SIGSTOP) for 3 s, so the relay has sent changes it has no
/// acknowledgement for; PostgreSQL is stopped; the brokers are thawed, so those sends
/// (and their transactions) complete while the relay cannot record them; PostgreSQL is
/// started 20 s later.
async fn stop_postgres_with_acknowledgements_pending(ctx: &FaultContext) -> anyhow::Result<()> {
    let log = ctx.dir.join("faults.log");
    relay_publishing(ctx).await?;
    sleep(Duration::from_secs(3)).await;
    for node in 1..=3 {
        ctx.cluster.signal(node, "STOP", &log).await?;
    }
    ctx.note("brokers 1, 2 and 3 frozen (SIGSTOP)");
    sleep(Duration::from_secs(3)).await;
    let stopped = ctx.pg.stop_server().await;
    for node in 1..=3 {
        ctx.cluster.signal(node, "CONT", &log).await?;
    }
    stopped.context("stop PostgreSQL")?;
    ctx.note("PostgreSQL stopped, then brokers 1, 2 and 3 thawed (SIGCONT)");
    sleep(Duration::from_secs(20)).await;
    ctx.pg.start_server().await?;
    ctx.note("PostgreSQL started");
    Ok(())
}

/// Every write to `orders` fails with a non-transient error (a trigger raising).
const REFUSE: &str = "CREATE OR REPLACE FUNCTION chaos_refuse() RETURNS trigger LANGUAGE plpgsql AS \
    $$ BEGIN RAISE EXCEPTION 'chaos: orders is being migrated'; END $$; \
    CREATE TRIGGER chaos_refuse BEFORE INSERT OR UPDATE ON orders \
    FOR EACH ROW EXECUTE FUNCTION chaos_refuse();";
const ALLOW: &str = "DROP TRIGGER IF EXISTS chaos_refuse ON orders;";

async fn trickle_under_database_failure(ctx: &FaultContext) -> anyhow::Result<()> {
    sleep(ctx.production + Duration::from_secs(5)).await;
    let mut command = Command::new(&ctx.producer_bin);
    command
        .args(["generate", "--brokers", &ctx.cluster.bootstrap])
        .args([
            "--schema-registry-url",
            &ctx.registry,
            "--topic",
            &ctx.topic,
        ])
        .args([
            "--count",
            "40",
            "--rate",
            "2",
            "--duplicate-ratio",
            "0",
            "--poison-ratio",
            "0",
        ])
        .args(["--metrics-addr", "", "--flush-timeout", "120s"]);
    let mut trickle = Supervised::spawn(
        "trickle",
        command,
        &ctx.dir.join("trickle.json"),
        &ctx.dir.join("trickle.log"),
    )?;
    ctx.note("trickle started: 40 records at 2/s");
    crate::db::execute(&ctx.database_url, REFUSE).await?;
    ctx.note("every write to orders fails (trigger)");
    sleep(Duration::from_secs(10)).await;
    crate::db::execute(&ctx.database_url, ALLOW).await?;
    ctx.note("writes to orders allowed again");
    sleep(Duration::from_secs(2)).await;
    ctx.pg.stop_server().await?;
    ctx.note("PostgreSQL stopped");
    sleep(Duration::from_secs(8)).await;
    ctx.pg.start_server().await?;
    ctx.note("PostgreSQL started");
    let status = trickle.wait().await?;
    anyhow::ensure!(status.success(), "the trickle generator exited {status}");
    Ok(())
}

async fn churn_while_the_breaker_is_open(ctx: &FaultContext) -> anyhow::Result<()> {
    sleep(Duration::from_secs(8)).await;
    ctx.pg.stop_server().await.context("stop PostgreSQL")?;
    ctx.note("PostgreSQL stopped");
    sleep(Duration::from_secs(3)).await;
    {
        let mut workers = ctx.workers.lock().await;
        workers.start_one()?;
        workers.start_one()?;
    }
    ctx.note("2 workers joined");
    sleep(Duration::from_secs(5)).await;
    let oldest = ctx.workers.lock().await.live().first().copied();
    let leaving = oldest.map(|index| {
        let workers = ctx.workers.clone();
        tokio::spawn(async move { terminate(&workers, &[index]).await })
    });
    ctx.note("the oldest worker leaves (SIGTERM)");
    sleep(Duration::from_secs(4)).await;
    {
        let mut workers = ctx.workers.lock().await;
        if let Some(&victim) = workers.live().last() {
            let pid = workers.kill(victim).await;
            ctx.note(&format!("killed worker pid {pid}"));
        }
    }
    sleep(Duration::from_secs(3)).await;
    ctx.workers.lock().await.start_one()?;
    ctx.note("1 worker joined");
    sleep(Duration::from_secs(5)).await;
    ctx.pg.start_server().await?;
    ctx.note("PostgreSQL started");
    if let Some(leaving) = leaving {
        leaving.await?;
    }
    Ok(())
}
