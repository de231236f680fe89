//! Dispatch: ready records go to workers in batches (runs of consecutive records
//! of a key), within the limits on records and transactions in flight.

use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;

use futures::future::BoxFuture;

use super::state::{DispatchedJob, Shared};

/// How much work may run at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DispatchLimits {
    /// Records processed concurrently.
    pub(crate) max_in_flight: usize,
    /// Records per transaction.
    pub(crate) batch_size: usize,
    /// Transactions at once.
    pub(crate) db_concurrency: usize,
}

/// Hands ready records to workers, in runs of consecutive records per key. While
/// a batch is running, a new one starts only when `--max-in-flight` leaves room
/// for a fair share (max-in-flight / db-concurrency, at most a batch): a
/// transaction per handful of records would take a database slot for little.
///
/// `run_batch` makes the task that processes a batch (the worker's); it runs on
/// its own tokio task.
pub(crate) fn dispatch(
    limits: DispatchLimits,
    shared: &Arc<Shared>,
    run_batch: impl Fn(Vec<DispatchedJob>) -> BoxFuture<'static, ()>,
) {
    let fair_share = (limits.max_in_flight / limits.db_concurrency)
        .min(limits.batch_size)
        .max(1);
    // A batch leaves room for another: one that waits on a lock (another
    // transaction holds a row it needs) must not take the whole in-flight budget
    // from the other keys, now that a run can carry many records of one key.
    let batch_cap = if limits.db_concurrency > 1 {
        limits
            .max_in_flight
            .saturating_sub(fair_share)
            .max(fair_share)
    } else {
        limits.max_in_flight
    };
    loop {
        let running = shared.batches_in_flight.load(AtomicOrdering::SeqCst);
        if running >= limits.db_concurrency {
            return;
        }
        let jobs = {
            let mut state = shared.lock();
            let room = limits.max_in_flight.saturating_sub(state.in_flight());
            if room == 0 || (running > 0 && room < fair_share) {
                return;
            }
            state.take_ready(room.min(limits.batch_size).min(batch_cap))
        };
        if jobs.is_empty() {
            return;
        }
        let slot = BatchSlot::take(shared);
        let batch = run_batch(jobs);
        tokio::spawn(async move {
            let _slot = slot;
            batch.await;
        });
    }
}

/// Guard that counts a batch task as running while it lives.
#[derive(Debug)]
struct BatchSlot(Arc<Shared>);

impl BatchSlot {
    fn take(shared: &Arc<Shared>) -> Self {
        shared
            .batches_in_flight
            .fetch_add(1, AtomicOrdering::SeqCst);
        Self(Arc::clone(shared))
    }
}

impl Drop for BatchSlot {
    fn drop(&mut self) {
        self.0
            .batches_in_flight
            .fetch_sub(1, AtomicOrdering::SeqCst);
        self.0.wake.notify_one();
    }
}
