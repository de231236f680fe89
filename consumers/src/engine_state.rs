//! State shared by the poll loop, the rebalance callbacks and the workers:
//! per-partition offset trackers and epochs, and the per-key scheduler.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use tokio::sync::Notify;

use crate::key_scheduler::{KeyScheduler, Ticket};
use crate::metrics::ConsumerMetrics;
use crate::offset_tracker::{OffsetTracker, Tracked};

/// How records are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ordering {
    /// Per record key (order id): different keys of a partition run concurrently.
    Key,
    /// Per partition: one record of a partition at a time (the classic consumer).
    Partition,
}

/// Scheduling key: records with equal keys run one at a time, in offset order.
pub type SchedKey = (i32, Vec<u8>);

/// A received record waiting for (or in) processing.
#[derive(Debug)]
pub struct Job {
    /// The record, detached from the consumer.
    pub record: OwnedMessage,
    /// Assignment epoch of its partition when it was received.
    pub epoch: u64,
}

/// A job handed to a worker.
#[derive(Debug)]
pub struct DispatchedJob {
    /// The job.
    pub job: Job,
    /// Its scheduling key.
    pub key: SchedKey,
    /// Its dispatch ticket.
    pub ticket: Ticket,
    /// When it was dispatched.
    pub dispatched_at: Instant,
}

/// One assigned partition.
#[derive(Debug)]
pub struct PartitionState {
    /// Changes on every assignment; work from an older epoch is fenced.
    pub epoch: u64,
    /// In-flight offsets and the commit position.
    pub tracker: OffsetTracker,
    /// Records of this partition being processed now.
    pub in_flight: usize,
    /// Whether the consumer paused fetching it.
    pub paused: bool,
}

/// Mutable engine state behind one lock (critical sections are short and never await).
#[derive(Debug)]
pub struct EngineState {
    /// Assigned partitions.
    pub partitions: BTreeMap<i32, PartitionState>,
    /// Buffered records per key.
    pub scheduler: KeyScheduler<SchedKey, Job>,
    /// Offsets committed successfully, per partition (kept after revocation, for the summary).
    pub committed: BTreeMap<i32, i64>,
    /// Last time a record arrived or finished.
    pub last_activity: Instant,
    /// Last time the assignment changed.
    pub last_rebalance: Option<Instant>,
    /// When the first record arrived.
    pub first_received: Option<Instant>,
    /// When the last record was done.
    pub last_done: Option<Instant>,
    next_epoch: u64,
}

/// Counters for the `--exit-when-idle` summary.
#[derive(Debug, Default)]
pub struct Stats {
    /// Effects applied.
    pub processed: AtomicU64,
    /// Duplicates skipped.
    pub duplicates: AtomicU64,
    /// Records dead-lettered.
    pub dead_lettered: AtomicU64,
    /// Retries.
    pub retried: AtomicU64,
}

/// How a record finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Effect committed.
    Processed,
    /// Dedup table already had it.
    Duplicate,
    /// DLQ write acked.
    DeadLettered,
}

/// Everything the loop, the callbacks and the workers share.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<EngineState>,
    /// Wakes the poll loop when work finished.
    pub wake: Notify,
    /// Summary counters.
    pub stats: Stats,
    /// Metrics.
    pub metrics: ConsumerMetrics,
    /// Source topic.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// How long a revocation or a shutdown waits for in-flight work.
    pub drain_timeout: Duration,
    /// Batches being processed now.
    pub batches_in_flight: AtomicUsize,
    /// Why the engine must stop with an error (first reason wins).
    fatal: Mutex<Option<String>>,
}

impl EngineState {
    fn new() -> Self {
        Self {
            partitions: BTreeMap::new(),
            scheduler: KeyScheduler::new(),
            committed: BTreeMap::new(),
            last_activity: Instant::now(),
            last_rebalance: None,
            first_received: None,
            last_done: None,
            next_epoch: 1,
        }
    }

    /// Starts tracking a newly assigned partition under a fresh epoch.
    pub fn assign(&mut self, partition: i32) {
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        self.partitions.insert(
            partition,
            PartitionState {
                epoch,
                tracker: OffsetTracker::new(),
                in_flight: 0,
                // Unknown: a partition paused before a revocation may come back
                // paused; the loop reconciles by resuming it explicitly.
                paused: true,
            },
        );
        self.last_rebalance = Some(Instant::now());
    }

    /// Drops the queued (not started) records of `partition`; in-flight ones stay.
    pub fn drop_queued(&mut self, partition: i32) {
        // Queued records of a key sit behind its in-flight one, so dropping the whole
        // key is only safe for keys with nothing in flight; the rest is dropped on
        // `forget`. A dropped record stays pending in the tracker: never committed.
        self.scheduler.purge_queued(|(p, _)| *p == partition);
    }

    /// Forgets `partition` (revoked): its records are dropped and late completions ignored.
    pub fn forget(&mut self, partition: i32) {
        self.scheduler.purge(|(p, _)| *p == partition);
        self.partitions.remove(&partition);
        self.last_rebalance = Some(Instant::now());
    }

    /// Whether work of `partition` received under `epoch` is still ours.
    pub fn is_current(&self, partition: i32, epoch: u64) -> bool {
        self.partitions
            .get(&partition)
            .is_some_and(|p| p.epoch == epoch)
    }

    /// Accepts a received record; false when its partition is not assigned or the
    /// offset was already received (a redelivery after a seek).
    pub fn accept(&mut self, record: OwnedMessage, ordering: Ordering) -> bool {
        let partition = record.partition();
        let Some(state) = self.partitions.get_mut(&partition) else {
            return false;
        };
        if state.tracker.track(record.offset()) == Tracked::Stale {
            return false;
        }
        let key = match ordering {
            Ordering::Key => record.key().map(<[u8]>::to_vec).unwrap_or_default(),
            Ordering::Partition => Vec::new(),
        };
        let epoch = state.epoch;
        self.scheduler.push((partition, key), Job { record, epoch });
        self.last_activity = Instant::now();
        self.first_received.get_or_insert(self.last_activity);
        true
    }

    /// Takes up to `max` records that may start now.
    pub fn take_ready(&mut self, max: usize) -> Vec<DispatchedJob> {
        let mut jobs = Vec::new();
        while jobs.len() < max {
            let Some((key, job, ticket)) = self.scheduler.next_ready() else {
                break;
            };
            if let Some(state) = self.partitions.get_mut(&key.0) {
                state.in_flight += 1;
            }
            jobs.push(DispatchedJob {
                job,
                key,
                ticket,
                dispatched_at: Instant::now(),
            });
        }
        jobs
    }

    /// Marks a record done (`Some`) or gives it up without marking it done (`None`,
    /// fenced work). Returns whether it still belonged to the current epoch.
    pub fn finish(&mut self, job: &DispatchedJob, done: bool) -> bool {
        self.scheduler.complete(&job.key, job.ticket);
        self.last_activity = Instant::now();
        let partition = job.job.record.partition();
        match self.partitions.get_mut(&partition) {
            Some(state) if state.epoch == job.job.epoch => {
                state.in_flight = state.in_flight.saturating_sub(1);
                if done {
                    state.tracker.mark_done(job.job.record.offset());
                    self.last_done = Some(Instant::now());
                }
                true
            }
            _ => false,
        }
    }

    /// Committable offsets that moved since the last commit (all of them when
    /// `only_changed` is false), for the given partitions or every assigned one;
    /// each is recorded as handed to a commit.
    pub fn take_commits(
        &mut self,
        partitions: Option<&[i32]>,
        only_changed: bool,
    ) -> Vec<(i32, i64)> {
        let mut commits = Vec::new();
        for (partition, state) in self.partitions.iter_mut() {
            if partitions.is_some_and(|wanted| !wanted.contains(partition)) {
                continue;
            }
            let offset = if only_changed {
                state.tracker.committable_if_changed()
            } else {
                state.tracker.committable()
            };
            if let Some(offset) = offset {
                state.tracker.record_commit(offset);
                commits.push((*partition, offset));
            }
        }
        commits
    }

    /// Records in flight for the given partitions.
    pub fn in_flight_of(&self, partitions: &[i32]) -> usize {
        partitions
            .iter()
            .filter_map(|p| self.partitions.get(p))
            .map(|p| p.in_flight)
            .sum()
    }
}

impl Shared {
    /// New shared state.
    pub fn new(
        metrics: ConsumerMetrics,
        topic: String,
        group: String,
        drain_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(EngineState::new()),
            wake: Notify::new(),
            stats: Stats::default(),
            metrics,
            topic,
            group,
            drain_timeout,
            batches_in_flight: AtomicUsize::new(0),
            fatal: Mutex::new(None),
        })
    }

    /// A worker hit a failure the engine cannot get past: the poll loop stops
    /// and the run ends with an error carrying `reason`.
    pub fn fail(&self, reason: String) {
        self.fatal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get_or_insert(reason);
        self.wake.notify_one();
    }

    /// Why the engine must stop, once a worker called [`Shared::fail`].
    pub fn fatal(&self) -> Option<String> {
        self.fatal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Locks the state (a poisoned lock is recovered: the state stays consistent
    /// because no critical section can panic half-way through an update).
    pub fn lock(&self) -> MutexGuard<'_, EngineState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker finished a record.
    pub fn complete(&self, job: &DispatchedJob, done: Done) {
        let current = self.lock().finish(job, true);
        if current {
            let (counter, metric) = match done {
                Done::Processed => (&self.stats.processed, &self.metrics.processed),
                Done::Duplicate => (&self.stats.duplicates, &self.metrics.duplicates),
                Done::DeadLettered => (&self.stats.dead_lettered, &self.metrics.dead_lettered),
            };
            counter.fetch_add(1, AtomicOrdering::Relaxed);
            metric.inc();
            self.metrics
                .processing_seconds
                .observe(job.dispatched_at.elapsed().as_secs_f64());
        }
        self.wake.notify_one();
    }

    /// A worker gives up a record of a partition it no longer owns.
    pub fn release(&self, job: &DispatchedJob) {
        self.lock().finish(job, false);
        self.wake.notify_one();
    }

    /// Whether the job's partition is still assigned under the job's epoch.
    pub fn is_current(&self, job: &DispatchedJob) -> bool {
        self.lock()
            .is_current(job.job.record.partition(), job.job.epoch)
    }
}
