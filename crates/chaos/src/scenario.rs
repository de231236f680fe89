//! One scenario: a fresh topic and DLQ, database and group; the workers, the order
//! service, the generator, the HTTP workload (and the lane poisoner) while the fault
//! runs; then the drain, both verifiers and the figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::Command;
use tokio::sync::{Mutex, mpsc};

use crate::ack_delay::{self, AckDelay};
use crate::faults::{self, FaultContext};
use crate::http_workload::{HttpSummary, HttpWorkload};
use crate::infra::{Cluster, PrivatePostgres, free_port};
use crate::kafka_admin::{LagReader, create_topics};
use crate::lane_poison::{self, LanePoisonSummary};
use crate::observe::{LogFigures, read_log};
use crate::supervisor::Supervised;
use crate::verifier::{self, DlqDuplicates, Target, Verdict};
use crate::workers::{self, ServiceSpec, WorkerMemory, WorkerSpec, Workers};

/// Partitions of each scenario's topic.
const PARTITIONS: i32 = 12;

/// What every scenario shares.
pub struct Run {
    /// The binaries.
    pub bin: PathBuf,
    /// The run's directory.
    pub work: PathBuf,
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// The private PostgreSQL.
    pub pg: Arc<PrivatePostgres>,
    /// Registry URL.
    pub registry: String,
    /// `name:secret` of the order API.
    pub api_token: String,
    /// Events of the generator.
    pub events: u64,
    /// Its rate.
    pub rate: u64,
    /// Workers to start with.
    pub workers: usize,
    /// `classic` or `consumer`.
    pub protocol: String,
    /// Drain limit of each wait.
    pub drain_timeout: Duration,
    /// One lane poison record every N HTTP orders (0: none) in scenarios a to f.
    pub lane_poison: u64,
    /// `--max-buffered` of the workers, when set.
    pub max_buffered: Option<usize>,
    /// Most resident memory a worker may reach, MiB.
    pub rss_bound_mib: u64,
}

/// The outcome of one scenario, as the report holds it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// a..h.
    pub scenario: char,
    /// `orderflow verify`'s JSON summary (`null` when it printed none).
    pub verify: serde_json::Value,
    /// Its exit code.
    pub verify_exit: i32,
    /// The independent verifier's verdict (`None`: it failed to run; see `errors`).
    pub independent: Option<Verdict>,
    /// Whether DLQ duplicates were tolerated.
    pub dlq_duplicates: DlqDuplicates,
    /// Seconds from the workloads' end to the drain.
    pub drain_seconds: u64,
    /// The drain finished within the limit.
    pub drained: bool,
    /// From the workers' logs.
    pub logs: LogFigures,
    /// The HTTP workload.
    pub http: Option<HttpSummary>,
    /// HTTP 2xx to the broker's append of the change (scenarios j and k).
    pub ack_delay: Option<AckDelay>,
    /// Poison written into live orders' lanes.
    pub lane_poison: Option<LanePoisonSummary>,
    /// Each worker's peak memory.
    pub memory: Vec<WorkerMemory>,
    /// What went wrong besides verification.
    pub errors: Vec<String>,
    /// Every check passed.
    pub ok: bool,
    /// The scenario's logs.
    pub dir: PathBuf,
}

/// The scenarios whose fault is the documented crash window (a worker killed, or the
/// database lost, between a DLQ write's ack and the ledger's commit).
fn crash_window(scenario: char) -> DlqDuplicates {
    if matches!(scenario, 'a' | 'c' | 'f' | 'g' | 'h' | 'k') {
        DlqDuplicates::CrashWindow
    } else {
        DlqDuplicates::Forbidden
    }
}

/// Runs `scenario`.
pub async fn run(run: &Run, scenario: char) -> anyhow::Result<Outcome> {
    let suffix = format!(
        "{}-{}",
        chrono::Utc::now().timestamp(),
        rand::random::<u16>()
    );
    let dir = run.work.join(scenario.to_string());
    std::fs::create_dir_all(&dir)?;
    let topic = format!("chaos-{scenario}-{suffix}");
    let group = topic.clone();
    let db = format!("chaos_{scenario}_{}", suffix.replace('-', "_"));
    let brokers = run.cluster.bootstrap.clone();
    let database_url = run.pg.url(&db);
    println!("scenario {scenario} ({}): topic {topic}", run.protocol);
    // Scenarios j and k measure how late an acknowledged change reaches Kafka.
    let measure_ack_delay = matches!(scenario, 'j' | 'k');
    create_topics(&brokers, &topic, PARTITIONS, measure_ack_delay).await?;
    crate::db::execute(
        &run.pg.url("postgres"),
        &format!("CREATE DATABASE \"{db}\""),
    )
    .await?;

    let max_buffered = match scenario {
        'h' => Some(run.max_buffered.unwrap_or(1000)),
        _ => run.max_buffered,
    };
    let workers = Workers::new(WorkerSpec {
        bin: run.bin.join("order-consumer"),
        brokers: brokers.clone(),
        registry: run.registry.clone(),
        topic: topic.clone(),
        group: group.clone(),
        database_url: database_url.clone(),
        protocol: run.protocol.clone(),
        max_buffered,
        dir: dir.clone(),
    });
    let start_with = if matches!(scenario, 'd' | 'f') {
        1
    } else {
        run.workers
    };
    for _ in 0..start_with {
        workers.lock().await.start_one()?;
    }
    let sampler = tokio::spawn(workers::sample_forever(workers.clone()));
    let service_spec = ServiceSpec {
        bin: run.bin.join("order-producer"),
        brokers: brokers.clone(),
        registry: run.registry.clone(),
        topic: topic.clone(),
        database_url: database_url.clone(),
        api_token: run.api_token.clone(),
        port: free_port()?,
        log: dir.join("service.log"),
    };
    let service = Arc::new(Mutex::new(None));
    workers::start_service(&service_spec, &service).await?;

    let mut generator = Command::new(run.bin.join("order-producer"));
    generator
        .args([
            "generate",
            "--brokers",
            &brokers,
            "--schema-registry-url",
            &run.registry,
        ])
        .args(["--topic", &topic, "--count", &run.events.to_string()])
        .args(["--rate", &run.rate.to_string(), "--duplicate-ratio", "0.01"])
        .args([
            "--poison-ratio",
            "0.005",
            "--metrics-addr",
            "",
            "--flush-timeout",
            "120s",
        ]);
    let mut generator = Supervised::spawn(
        "order-producer generate",
        generator,
        &dir.join("producer.json"),
        &dir.join("producer.log"),
    )?;
    let production = Duration::from_secs((run.events / run.rate.max(1)).max(1));
    let orders = run.events / 100;
    let every = match scenario {
        'g' | 'h' => 5,
        _ => run.lane_poison,
    };
    let (lane_tx, lane_rx) = mpsc::unbounded_channel();
    let poisoner = (every > 0).then(|| {
        let (brokers, registry, topic) = (brokers.clone(), run.registry.clone(), topic.clone());
        tokio::spawn(
            async move { lane_poison::run(&brokers, &registry, &topic, every, lane_rx).await },
        )
    });
    let http = tokio::spawn(
        HttpWorkload {
            base: format!("http://127.0.0.1:{}", service_spec.port),
            token: run
                .api_token
                .split_once(':')
                .map_or("", |(_, s)| s)
                .to_string(),
            orders,
            rate: (orders as f64 / production.as_secs_f64()).max(1.0),
            concurrency: 16,
            deadline: Duration::from_secs(180),
        }
        .run(dir.join("http.jsonl"), (every > 0).then_some(lane_tx)),
    );

    let ctx = FaultContext {
        workers: workers.clone(),
        service: service.clone(),
        service_spec,
        cluster: run.cluster.clone(),
        pg: run.pg.clone(),
        topic: topic.clone(),
        group: group.clone(),
        partitions: PARTITIONS as usize,
        database_url: database_url.clone(),
        production,
        producer_bin: run.bin.join("order-producer"),
        registry: run.registry.clone(),
        dir: dir.clone(),
    };
    let mut errors = Vec::new();
    if let Err(error) = faults::run(scenario, &ctx).await {
        errors.push(format!(
            "the fault of {scenario} failed: {error:#} (see faults.log)"
        ));
    }
    match generator.wait().await {
        Ok(status) if status.success() => {}
        Ok(status) => errors.push(format!("order-producer exited {status} (see producer.log)")),
        Err(error) => errors.push(format!("{error:#}")),
    }
    let http = match http.await? {
        Ok(summary) if summary.failed == 0 => Some(summary),
        Ok(summary) => {
            errors.push(format!(
                "the HTTP workload failed {} changes (see {})",
                summary.failed,
                dir.display()
            ));
            Some(summary)
        }
        Err(error) => {
            errors.push(format!("the HTTP workload: {error:#}"));
            None
        }
    };
    let lane_poison = match poisoner {
        Some(task) => match task.await? {
            Ok(summary) => Some(summary),
            Err(error) => {
                errors.push(format!("lane poison: {error:#}"));
                None
            }
        },
        None => None,
    };

    // The relay has sent every outbox row, then the group committed the log end.
    let started = Instant::now();
    let drained = drain(
        &database_url,
        &brokers,
        &group,
        &topic,
        run.drain_timeout,
        &mut errors,
    )
    .await;
    let drain_seconds = started.elapsed().as_secs();

    let mut logs = LogFigures::default();
    for path in workers.lock().await.logs() {
        read_log(&path, &mut logs);
    }
    workers::stop_all(&workers).await;
    if let Some(mut service) = service.lock().await.take() {
        service.terminate(Duration::from_secs(30)).await;
    }
    sampler.abort();
    let memory = workers.lock().await.memory();
    check_memory(&memory, max_buffered, run.rss_bound_mib, &mut errors);

    let (verify, verify_exit) =
        old_verifier(run, &dir, &brokers, &topic, &group, &database_url).await;
    let target = Target {
        brokers,
        registry: run.registry.clone(),
        dlq_topic: orderflow_contracts::dead_letter::dlq_topic(&topic),
        topic,
        group,
        database_url,
        stall_timeout: Duration::from_secs(60),
    };
    let independent = match verifier::verify(&target, crash_window(scenario)).await {
        Ok(verdict) => {
            std::fs::write(
                dir.join("independent.json"),
                serde_json::to_string_pretty(&verdict)?,
            )?;
            Some(verdict)
        }
        Err(error) => {
            errors.push(format!("the independent verifier: {error:#}"));
            None
        }
    };
    let ack_delay = match (&independent, measure_ack_delay) {
        (Some(verdict), true) => {
            match ack_delay::measure(
                &dir.join("http.jsonl"),
                &verdict.first_record_ms,
                &dir.join("ack-delay.csv"),
            ) {
                Ok(delay) => {
                    if let Some(d) = &delay {
                        println!(
                            "scenario {scenario}: HTTP 2xx to Kafka over {} changes: p50 {} ms, p99 {} ms, max {} ms",
                            d.changes, d.p50_ms, d.p99_ms, d.max_ms
                        );
                    }
                    delay
                }
                Err(error) => {
                    errors.push(format!("the acknowledgement delay: {error:#}"));
                    None
                }
            }
        }
        _ => None,
    };
    let ok = errors.is_empty()
        && drained
        && verify_exit == 0
        && independent
            .as_ref()
            .is_some_and(|v| v.violations.is_empty());
    Ok(Outcome {
        scenario,
        verify,
        verify_exit,
        independent,
        dlq_duplicates: crash_window(scenario),
        drain_seconds,
        drained,
        logs,
        http,
        ack_delay,
        lane_poison,
        memory,
        errors,
        ok,
        dir,
    })
}

/// Each worker's peak buffered records stay within `--max-buffered` (when the run set
/// it), and its peak RSS within `rss_bound_mib`.
fn check_memory(
    memory: &[WorkerMemory],
    max_buffered: Option<usize>,
    rss_bound_mib: u64,
    errors: &mut Vec<String>,
) {
    for worker in memory {
        if let Some(max) = max_buffered
            && worker.peak_buffered > max as f64
        {
            errors.push(format!(
                "worker {} buffered {} records, above --max-buffered {max}",
                worker.worker, worker.peak_buffered
            ));
        }
        if worker.peak_rss_kib > rss_bound_mib * 1024 {
            errors.push(format!(
                "worker {} reached {} MiB resident, above the bound of {rss_bound_mib} MiB",
                worker.worker,
                worker.peak_rss_kib / 1024
            ));
        }
    }
}

/// Waits for unsent outbox rows, then lag, to reach 0 (each at most `limit`).
async fn drain(
    database_url: &str,
    brokers: &str,
    group: &str,
    topic: &str,
    limit: Duration,
    errors: &mut Vec<String>,
) -> bool {
    let mut drained = true;
    let deadline = Instant::now() + limit;
    let mut pending;
    loop {
        let unsent = match sqlx::PgPool::connect(database_url).await {
            Ok(pool) => {
                let unsent = orderflow_outbox::queries::count_unsent(&pool).await;
                pool.close().await;
                unsent.map_err(anyhow::Error::from)
            }
            Err(error) => Err(error.into()),
        };
        match unsent {
            Ok(unsent) if unsent.pending == 0 => {
                if unsent.parked > 0 {
                    errors.push(format!("{} outbox rows parked", unsent.parked));
                }
                break;
            }
            Ok(unsent) => pending = format!("{} unsent outbox rows", unsent.pending),
            Err(error) => pending = format!("outbox: {error:#}"),
        }
        if Instant::now() > deadline {
            errors.push(format!("still {pending} after {limit:?}"));
            drained = false;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let deadline = Instant::now() + limit;
    let mut lag = match LagReader::new(brokers, group, topic, PARTITIONS as usize) {
        Ok(lag) => lag,
        Err(error) => {
            errors.push(format!("lag engine: {error:#}"));
            return false;
        }
    };
    loop {
        let now = match lag.read().await {
            Ok(reading) => reading
                .total
                .map_or("unknown".to_string(), |t| t.to_string()),
            Err(error) => format!("unreadable ({error})"),
        };
        if now == "0" {
            return drained;
        }
        if Instant::now() > deadline {
            errors.push(format!("lag still {now} after {limit:?}"));
            return false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `orderflow verify` as today: its JSON summary and exit code.
async fn old_verifier(
    run: &Run,
    dir: &std::path::Path,
    brokers: &str,
    topic: &str,
    group: &str,
    database_url: &str,
) -> (serde_json::Value, i32) {
    let out = Command::new(run.bin.join("orderflow"))
        .args([
            "verify",
            "--brokers",
            brokers,
            "--schema-registry-url",
            &run.registry,
        ])
        .args([
            "--topic",
            topic,
            "--group",
            group,
            "--database-url",
            database_url,
        ])
        .arg("--http-log")
        .arg(dir.join("http.jsonl"))
        .output()
        .await;
    match out {
        Ok(out) => {
            let _ = std::fs::write(dir.join("verify.json"), &out.stdout);
            let _ = std::fs::write(dir.join("verify.log"), &out.stderr);
            let summary = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            (summary, out.status.code().unwrap_or(-1))
        }
        Err(error) => {
            let _ = std::fs::write(dir.join("verify.log"), error.to_string());
            (serde_json::Value::Null, -1)
        }
    }
}
