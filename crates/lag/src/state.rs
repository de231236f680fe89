//! The state the poller publishes and the HTTP handlers read: the latest snapshot, the
//! last error, the history and the metrics. Its own module so that the server (which
//! writes it) and the web handlers (which read it) both depend on it, not on each other.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::error::LagError;
use crate::history::History;
use crate::metrics::LagMetrics;
use crate::model::Snapshot;

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

    pub(crate) fn publish(&self, snapshot: Snapshot) {
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
    pub(crate) fn fail(&self, err: &LagError) -> u32 {
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
