//! The scenario's consumer workers and its order service, shared by faults that run at
//! once (scenario f), with each worker's memory and buffered records sampled while it runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::infra::{free_port, wait_for_http};
use crate::observe::{gauge_sum, rss_kib};
use crate::supervisor::Supervised;

/// How a worker is started.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// `order-consumer`.
    pub bin: PathBuf,
    /// Bootstrap brokers.
    pub brokers: String,
    /// Registry URL.
    pub registry: String,
    /// Topic.
    pub topic: String,
    /// Group.
    pub group: String,
    /// Consumer database.
    pub database_url: String,
    /// `classic` or `consumer`.
    pub protocol: String,
    /// `--max-buffered`, when set.
    pub max_buffered: Option<usize>,
    /// Where the logs go.
    pub dir: PathBuf,
}

struct Worker {
    process: Supervised,
    metrics_port: u16,
    peak_rss_kib: u64,
    peak_buffered: f64,
}

/// Peak memory of one worker over its life.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerMemory {
    /// 1-based, in start order (its log is `worker-N.log`).
    pub worker: usize,
    /// Peak VmRSS sampled, KiB.
    pub peak_rss_kib: u64,
    /// Peak of `orderflow_consumer_buffered_records`.
    pub peak_buffered: f64,
}

/// The workers of a scenario.
pub struct Workers {
    spec: WorkerSpec,
    list: Vec<Worker>,
}

/// Workers shared by the faults and the sampler.
pub type SharedWorkers = Arc<Mutex<Workers>>;

impl Workers {
    /// No worker yet.
    pub fn new(spec: WorkerSpec) -> SharedWorkers {
        Arc::new(Mutex::new(Self {
            spec,
            list: Vec::new(),
        }))
    }

    /// One more worker, logging JSON to `worker-N.log`.
    pub fn start_one(&mut self) -> anyhow::Result<()> {
        let s = &self.spec;
        let port = free_port()?;
        let mut command = Command::new(&s.bin);
        command
            .args([
                "--brokers",
                &s.brokers,
                "--schema-registry-url",
                &s.registry,
            ])
            .args(["--topic", &s.topic, "--group", &s.group])
            .args([
                "--database-url",
                &s.database_url,
                "--group-protocol",
                &s.protocol,
            ])
            .args(["--drain-timeout", "5s", "--dedup-retention", "forever"])
            // The generator's unknown-schema-id poison would wait out the default 60 s
            // grace (a follower registry catching up) on every worker that sees it.
            .args(["--registry-not-found-grace", "5s"])
            .args([
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
                "--log-format",
                "json",
            ]);
        if s.protocol == "classic" {
            command.args(["--session-timeout", "10s"]);
        }
        if let Some(max) = s.max_buffered {
            let max = max.to_string();
            command.args(["--max-buffered", &max, "--max-in-flight", &max]);
        }
        let log = s.dir.join(format!("worker-{}.log", self.list.len() + 1));
        let process = Supervised::spawn(
            format!("worker {}", self.list.len() + 1),
            command,
            &log,
            &log,
        )?;
        self.list.push(Worker {
            process,
            metrics_port: port,
            peak_rss_kib: 0,
            peak_buffered: 0.0,
        });
        Ok(())
    }

    /// Indexes of the workers still running.
    pub fn live(&mut self) -> Vec<usize> {
        (0..self.list.len())
            .filter(|&i| self.list[i].process.running())
            .collect()
    }

    /// `kill -9` of worker `index`; its pid.
    pub async fn kill(&mut self, index: usize) -> u32 {
        self.list[index].process.kill().await;
        self.list[index].process.pid()
    }

    /// Log paths of every worker started.
    pub fn logs(&self) -> Vec<PathBuf> {
        (1..=self.list.len())
            .map(|n| self.spec.dir.join(format!("worker-{n}.log")))
            .collect()
    }

    /// Peak memory of every worker started.
    pub fn memory(&self) -> Vec<WorkerMemory> {
        self.list
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerMemory {
                worker: i + 1,
                peak_rss_kib: w.peak_rss_kib,
                peak_buffered: w.peak_buffered,
            })
            .collect()
    }
}

/// One SIGTERM to each of `indexes`, up to 30 s for all to stop, then SIGKILL. The lock is
/// not held while waiting, so other faults go on.
pub async fn terminate(workers: &SharedWorkers, indexes: &[usize]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for &i in indexes {
        workers.lock().await.list[i].process.term();
    }
    for &i in indexes {
        while workers.lock().await.list[i].process.running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut guard = workers.lock().await;
        if guard.list[i].process.running() {
            tracing::warn!(
                worker = i + 1,
                "did not stop within 30 s of SIGTERM: SIGKILL"
            );
            guard.list[i].process.kill().await;
        }
    }
}

/// Stops every live worker.
pub async fn stop_all(workers: &SharedWorkers) {
    let live = workers.lock().await.live();
    terminate(workers, &live).await;
}

/// Samples every live worker once a second until the task is aborted.
pub async fn sample_forever(workers: SharedWorkers) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("a plain HTTP client builds");
    loop {
        let targets: Vec<(usize, u32, u16)> = {
            let mut guard = workers.lock().await;
            guard
                .live()
                .into_iter()
                .map(|i| (i, guard.list[i].process.pid(), guard.list[i].metrics_port))
                .collect()
        };
        for (i, pid, port) in targets {
            let rss = rss_kib(pid).unwrap_or(0);
            let buffered = match http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
            {
                Ok(answer) => answer
                    .text()
                    .await
                    .ok()
                    .and_then(|text| gauge_sum(&text, "orderflow_consumer_buffered_records")),
                Err(_) => None,
            };
            let mut guard = workers.lock().await;
            let worker = &mut guard.list[i];
            worker.peak_rss_kib = worker.peak_rss_kib.max(rss);
            worker.peak_buffered = worker.peak_buffered.max(buffered.unwrap_or(0.0));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How the order service is started.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// `order-producer`.
    pub bin: PathBuf,
    /// Bootstrap brokers.
    pub brokers: String,
    /// Registry URL.
    pub registry: String,
    /// Topic.
    pub topic: String,
    /// Its database (the scenario's).
    pub database_url: String,
    /// `name:secret` for ORDERFLOW_API_TOKENS.
    pub api_token: String,
    /// Listen port.
    pub port: u16,
    /// Its log.
    pub log: PathBuf,
}

/// The order service (HTTP API and outbox relay), restartable.
pub type SharedService = Arc<Mutex<Option<Supervised>>>;

/// Starts the service and waits until its API answers.
pub async fn start_service(spec: &ServiceSpec, slot: &SharedService) -> anyhow::Result<u32> {
    let mut command = Command::new(&spec.bin);
    command
        .env("ORDERFLOW_API_TOKENS", &spec.api_token)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", spec.port)])
        .args([
            "--brokers",
            &spec.brokers,
            "--schema-registry-url",
            &spec.registry,
        ])
        .args(["--topic", &spec.topic, "--database-url", &spec.database_url])
        .args([
            "--rate-limit-per-second",
            "0",
            "--metrics-addr",
            "",
            "--log-format",
            "json",
        ]);
    let process = Supervised::spawn("order service", command, &spec.log, &spec.log)?;
    let pid = process.pid();
    *slot.lock().await = Some(process);
    wait_for_http(
        &format!("http://127.0.0.1:{}/openapi.json", spec.port),
        Duration::from_secs(120),
    )
    .await?;
    Ok(pid)
}
