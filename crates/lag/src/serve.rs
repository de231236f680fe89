//! `orderflow lag serve`: polls in the background on an interval, so a scrape or a page
//! load never waits on Kafka, and serves metrics, the JSON API and the dashboard.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use orderflow_runtime::ops_server::{OpsServer, Readiness};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::LagEngine;
use crate::error::{LagError, Result};
use crate::history::History;
use crate::metrics::LagMetrics;
use crate::model::Snapshot;

/// Settings of the exporter.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address of the HTTP server.
    pub listen: SocketAddr,
    /// Time between the starts of two poll cycles.
    pub interval: Duration,
    /// How much history the dashboard's charts keep.
    pub history: Duration,
}

/// Failed polls in a row after which the exporter stops being ready: its figures are
/// stale and whatever routes on readiness should know.
pub const UNREADY_AFTER_FAILED_POLLS: u32 = 3;

/// What the poller publishes and the HTTP handlers read.
pub struct SharedState {
    latest: RwLock<Option<Arc<Snapshot>>>,
    last_error: RwLock<Option<String>>,
    failed_polls: std::sync::atomic::AtomicU32,
    history: RwLock<History>,
    metrics: LagMetrics,
    interval: Duration,
    /// Client settings for reading dead-letter records on request.
    kafka: Option<rdkafka::ClientConfig>,
    /// Dead-letter reads that may run at once (each opens a consumer).
    dlq_reads: Arc<tokio::sync::Semaphore>,
}

/// Dead-letter reads `/api/dlq` runs at once; more requests are refused until one ends.
pub const CONCURRENT_DLQ_READS: usize = 2;

impl SharedState {
    /// Empty state for a poller running every `interval`, keeping `history`.
    pub fn new(interval: Duration, history: Duration) -> Self {
        let max_points = (history.as_millis() / interval.as_millis().max(1)) as usize + 1;
        Self {
            latest: RwLock::new(None),
            last_error: RwLock::new(None),
            failed_polls: std::sync::atomic::AtomicU32::new(0),
            history: RwLock::new(History::new(history.as_millis() as i64, max_points)),
            metrics: LagMetrics::new(),
            interval,
            kafka: None,
            dlq_reads: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_DLQ_READS)),
        }
    }

    /// A permit to read dead-letter records, unless [`CONCURRENT_DLQ_READS`] reads run.
    pub fn try_dlq_read(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.dlq_reads.clone().try_acquire_owned().ok()
    }

    /// Lets `/api/dlq` read dead-letter records with these client settings.
    pub fn with_kafka(mut self, kafka: rdkafka::ClientConfig) -> Self {
        self.kafka = Some(kafka);
        self
    }

    /// Client settings for reading dead-letter records, when given.
    pub fn kafka(&self) -> Option<&rdkafka::ClientConfig> {
        self.kafka.as_ref()
    }

    /// The latest snapshot, if a cycle finished.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Error of the last cycle, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Polls that failed in a row since the last successful one.
    pub fn failed_polls(&self) -> u32 {
        self.failed_polls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// True when the figures served come from before a failed poll.
    pub fn is_stale(&self) -> bool {
        self.failed_polls() > 0
    }

    /// History points after `since_ms`.
    pub fn history_since(&self, since_ms: Option<i64>) -> Vec<crate::history::HistoryPoint> {
        self.history
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .since(since_ms)
    }

    /// Poll interval, shown by the dashboard.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The metrics exported on `/metrics`.
    pub fn metrics(&self) -> &LagMetrics {
        &self.metrics
    }

    fn publish(&self, snapshot: Snapshot) {
        self.failed_polls
            .store(0, std::sync::atomic::Ordering::Relaxed);
        self.metrics.update(&snapshot);
        self.metrics.set_staleness(
            Some((crate::engine::now_ms() - snapshot.taken_at_ms) as f64 / 1000.0),
            0,
        );
        self.history
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .record(&snapshot);
        *self.latest.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(snapshot));
        *self.last_error.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Records a failed poll; returns the failures in a row. The last figures stay
    /// served (alert timers keep running) with their age exported.
    fn fail(&self, err: &LagError) -> u32 {
        *self.last_error.write().unwrap_or_else(|p| p.into_inner()) = Some(err.to_string());
        let failed = self
            .failed_polls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let age = self
            .latest()
            .map(|latest| (crate::engine::now_ms() - latest.taken_at_ms) as f64 / 1000.0);
        self.metrics.set_staleness(age, failed);
        failed
    }
}

/// A running exporter.
pub struct Running {
    /// Address the HTTP server is bound to.
    pub addr: SocketAddr,
    /// State shared with the handlers.
    pub state: Arc<SharedState>,
    /// Ends when the token is cancelled: the HTTP server and the poller.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Binds the server and starts the poller; returns once both run.
pub async fn start(
    engine: LagEngine,
    config: ServeConfig,
    token: CancellationToken,
) -> Result<Running> {
    engine.config().validate(config.interval)?;
    let state = Arc::new(
        SharedState::new(config.interval, config.history)
            .with_kafka(engine.client_config().clone()),
    );
    let readiness = Readiness::default();
    let (addr, server) = OpsServer::new(config.listen, state.metrics().registry().clone())
        .with_readiness(readiness.clone())
        .with_routes(crate::web::router(state.clone()))
        .spawn(token.clone())
        .await
        .map_err(LagError::Server)?;
    let poller = tokio::spawn(poll_loop(
        engine,
        state.clone(),
        readiness,
        config.interval,
        token,
    ));
    tracing::info!(address = %addr, interval = ?config.interval, "lag exporter and dashboard running");
    Ok(Running {
        addr,
        state,
        tasks: vec![server, poller],
    })
}

/// Runs the exporter until `token` is cancelled.
pub async fn run(engine: LagEngine, config: ServeConfig, token: CancellationToken) -> Result<()> {
    let running = start(engine, config, token).await?;
    for task in running.tasks {
        task.await.map_err(|e| LagError::Task(e.to_string()))?;
    }
    Ok(())
}

async fn poll_loop(
    mut engine: LagEngine,
    state: Arc<SharedState>,
    readiness: Readiness,
    interval: Duration,
    token: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let polled = tokio::select! {
            _ = token.cancelled() => return,
            polled = engine.poll() => polled,
        };
        match polled {
            Ok(snapshot) => {
                for warning in &snapshot.warnings {
                    tracing::debug!(%warning, "lag poll warning");
                }
                state.publish(snapshot);
                readiness.set_ready(true);
            }
            Err(err) => {
                let failed = state.fail(&err);
                tracing::warn!(error = %err, retryable = err.is_retryable(), failed, "lag poll failed; serving the previous figures, marked stale");
                if failed >= UNREADY_AFTER_FAILED_POLLS {
                    readiness.set_ready(false);
                }
            }
        }
    }
}
