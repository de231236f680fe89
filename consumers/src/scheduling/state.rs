//! State shared by the poll loop, the rebalance callbacks and the workers: the
//! owned partitions ([`Assignment`]) and the records received from them, queued
//! per key until a worker takes them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use tokio::sync::Notify;

use super::key_scheduler::{KeyScheduler, Ticket};
use crate::metrics::ConsumerMetrics;
use crate::partitions::Assignment;

/// How records are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ordering {
    /// Per record key (order id): different keys of a partition run concurrently.
    Key,
    /// Per partition: one record of a partition at a time (the classic consumer).
    Partition,
}

/// Scheduling key: records with equal keys run one at a time, in offset order.
pub(crate) type SchedKey = (i32, Vec<u8>);

/// A received record waiting for (or in) processing.
#[derive(Debug)]
pub(crate) struct Job {
    /// The record, detached from the consumer.
    pub(crate) record: OwnedMessage,
    /// Assignment epoch of its partition when it was received.
    pub(crate) epoch: u64,
}

/// A job handed to a worker.
#[derive(Debug)]
pub(crate) struct DispatchedJob {
    /// The job.
    pub(crate) job: Job,
    /// Its scheduling key.
    pub(crate) key: SchedKey,
    /// Its dispatch ticket.
    pub(crate) ticket: Ticket,
    /// When it was dispatched.
    pub(crate) dispatched_at: Instant,
}

/// Mutable engine state behind one lock (critical sections are short and never await).
#[derive(Debug)]
pub(crate) struct EngineState {
    assignment: Assignment,
    scheduler: KeyScheduler<SchedKey, Job>,
    last_activity: Instant,
    first_received: Option<Instant>,
    last_done: Option<Instant>,
}

/// Counters for the `--exit-when-idle` summary.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Effects applied.
    pub(crate) processed: AtomicU64,
    /// Duplicates skipped.
    pub(crate) duplicates: AtomicU64,
    /// Records dead-lettered.
    pub(crate) dead_lettered: AtomicU64,
    /// Records not dead-lettered again: the group had written them before.
    pub(crate) dead_letter_skipped: AtomicU64,
    /// Retries.
    pub(crate) retried: AtomicU64,
}

/// How a record finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Done {
    /// Effect committed.
    Processed,
    /// Dedup table already had it.
    Duplicate,
    /// DLQ write acked.
    DeadLettered,
    /// Dead-lettered before by this group (a redelivery): not written again.
    AlreadyDeadLettered,
}

/// Everything the loop, the callbacks and the workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<EngineState>,
    /// Wakes the poll loop when work finished.
    pub(crate) wake: Notify,
    /// Summary counters.
    pub(crate) stats: Stats,
    /// Metrics.
    pub(crate) metrics: ConsumerMetrics,
    /// Source topic.
    pub(crate) topic: String,
    /// Consumer group.
    pub(crate) group: String,
    /// How long a revocation or a shutdown waits for in-flight work.
    pub(crate) drain_timeout: Duration,
    /// Batches being processed now.
    pub(crate) batches_in_flight: AtomicUsize,
    /// Why the engine must stop with an error (first reason wins).
    fatal: Mutex<Option<String>>,
}

impl EngineState {
    fn new() -> Self {
        Self {
            assignment: Assignment::new(),
            scheduler: KeyScheduler::new(),
            last_activity: Instant::now(),
            first_received: None,
            last_done: None,
        }
    }

    /// The owned partitions.
    pub(crate) fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// The owned partitions, to change through their own methods.
    pub(crate) fn assignment_mut(&mut self) -> &mut Assignment {
        &mut self.assignment
    }

    /// Starts owning a newly assigned partition under a fresh epoch.
    pub(crate) fn assign(&mut self, partition: i32) {
        self.assignment.assign(partition);
    }

    /// Drops the queued (not started) records of `partition`; in-flight ones stay.
    pub(crate) fn drop_queued(&mut self, partition: i32) {
        // Queued records of a key sit behind its in-flight one, so dropping the whole
        // key is only safe for keys with nothing in flight; the rest is dropped on
        // `forget`. A dropped record stays pending in the tracker: never committed.
        self.scheduler.purge_queued(|(p, _)| *p == partition);
    }

    /// Forgets `partition` (released): its records are dropped and late completions ignored.
    pub(crate) fn forget(&mut self, partition: i32) {
        self.scheduler.purge(|(p, _)| *p == partition);
        self.assignment.forget(partition);
    }

    /// Accepts a received record; false when its partition is not assigned or the
    /// offset was already received (a redelivery after a seek).
    pub(crate) fn accept(&mut self, record: OwnedMessage, ordering: Ordering) -> bool {
        let partition = record.partition();
        let Some(epoch) = self.assignment.track(partition, record.offset()) else {
            return false;
        };
        let key = match ordering {
            Ordering::Key => record.key().map(<[u8]>::to_vec).unwrap_or_default(),
            Ordering::Partition => Vec::new(),
        };
        self.scheduler.push((partition, key), Job { record, epoch });
        self.last_activity = Instant::now();
        self.first_received.get_or_insert(self.last_activity);
        true
    }

    /// Takes up to `max` records that may start now: runs of consecutive records
    /// of a key (several events of one order go to one batch, in offset order).
    pub(crate) fn take_ready(&mut self, max: usize) -> Vec<DispatchedJob> {
        let mut jobs = Vec::new();
        while jobs.len() < max {
            let Some((key, run, ticket)) = self.scheduler.next_ready_run(max - jobs.len()) else {
                break;
            };
            for job in run {
                self.assignment.started(key.0);
                jobs.push(DispatchedJob {
                    job,
                    key: key.clone(),
                    ticket,
                    dispatched_at: Instant::now(),
                });
            }
        }
        jobs
    }

    /// Gives dispatched records of one run back unfinished (`jobs` in offset
    /// order): they go back to the front of their key's queue and start again
    /// after the rest of their run finished.
    pub(crate) fn put_back(&mut self, jobs: Vec<DispatchedJob>) {
        let Some(first) = jobs.first() else {
            return;
        };
        let (key, ticket) = (first.key.clone(), first.ticket);
        debug_assert!(jobs.iter().all(|j| j.key == key && j.ticket == ticket));
        for job in &jobs {
            let record = &job.job.record;
            self.assignment
                .finished(record.partition(), job.job.epoch, record.offset(), false);
        }
        let records = jobs.into_iter().map(|dispatched| dispatched.job).collect();
        self.scheduler.put_back(&key, ticket, records);
        self.last_activity = Instant::now();
    }

    /// Marks a record done (`done`) or gives it up without marking it done
    /// (fenced work). Returns whether it still belonged to the current epoch.
    pub(crate) fn finish(&mut self, job: &DispatchedJob, done: bool) -> bool {
        self.scheduler.complete(&job.key, job.ticket);
        self.last_activity = Instant::now();
        let record = &job.job.record;
        let current =
            self.assignment
                .finished(record.partition(), job.job.epoch, record.offset(), done);
        if current && done {
            self.last_done = Some(Instant::now());
        }
        current
    }

    /// Records received and not finished.
    pub(crate) fn buffered(&self) -> usize {
        self.scheduler.buffered()
    }

    /// Records received and not finished, per partition.
    pub(crate) fn buffered_by_partition(&self) -> BTreeMap<i32, usize> {
        self.scheduler.buffered_by(|(partition, _)| *partition)
    }

    /// Records being processed now.
    pub(crate) fn in_flight(&self) -> usize {
        self.scheduler.in_flight()
    }

    /// Last time a record arrived or finished.
    pub(crate) fn last_activity(&self) -> Instant {
        self.last_activity
    }

    /// From the first record received to the last record done, if both happened.
    pub(crate) fn active_span(&self) -> Option<Duration> {
        match (self.first_received, self.last_done) {
            (Some(first), Some(last)) => Some(last.saturating_duration_since(first)),
            _ => None,
        }
    }
}

impl Shared {
    /// New shared state.
    pub(crate) fn new(
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
    pub(crate) fn fail(&self, reason: String) {
        self.fatal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get_or_insert(reason);
        self.wake.notify_one();
    }

    /// Why the engine must stop, once a worker called [`Shared::fail`].
    pub(crate) fn fatal(&self) -> Option<String> {
        self.fatal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Locks the state (a poisoned lock is recovered: the state stays consistent
    /// because no critical section can panic half-way through an update).
    pub(crate) fn lock(&self) -> MutexGuard<'_, EngineState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A worker finished a record.
    pub(crate) fn complete(&self, job: &DispatchedJob, done: Done) {
        let current = self.lock().finish(job, true);
        if current {
            let (counter, metric) = match done {
                Done::Processed => (&self.stats.processed, &self.metrics.processed),
                Done::Duplicate => (&self.stats.duplicates, &self.metrics.duplicates),
                Done::DeadLettered => (&self.stats.dead_lettered, &self.metrics.dead_lettered),
                Done::AlreadyDeadLettered => (
                    &self.stats.dead_letter_skipped,
                    &self.metrics.dead_letter_skipped,
                ),
            };
            counter.fetch_add(1, AtomicOrdering::Relaxed);
            metric.inc();
            self.metrics
                .processing_seconds
                .observe(job.dispatched_at.elapsed().as_secs_f64());
        }
        self.wake.notify_one();
    }

    /// A worker gives up a record without finishing it (its partition moved on,
    /// or it can never be dead-lettered): its offset is never committed past.
    pub(crate) fn give_up(&self, job: &DispatchedJob) {
        self.lock().finish(job, false);
        self.wake.notify_one();
    }

    /// A worker gives records of one run back unfinished, to start again later in
    /// offset order ([`EngineState::put_back`]).
    pub(crate) fn put_back(&self, jobs: Vec<DispatchedJob>) {
        self.lock().put_back(jobs);
        self.wake.notify_one();
    }

    /// Whether the job's partition is still assigned under the job's epoch.
    pub(crate) fn is_current(&self, job: &DispatchedJob) -> bool {
        self.lock()
            .assignment
            .is_current(job.job.record.partition(), job.job.epoch)
    }
}
