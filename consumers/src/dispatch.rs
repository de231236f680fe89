//! Dispatch: ready records go to workers in batches of at most one record per
//! key, within the limits on records and transactions in flight.

use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;

use crate::engine_state::Shared;
use crate::processing::Processor;

/// How much work may run at once.
#[derive(Debug, Clone, Copy)]
pub struct DispatchLimits {
    /// Records processed concurrently.
    pub max_in_flight: usize,
    /// Records per transaction.
    pub batch_size: usize,
    /// Transactions at once.
    pub db_concurrency: usize,
}

/// Hands ready records to workers, at most one record per key per batch. While
/// a batch is running, a new one starts only when `--max-in-flight` leaves room
/// for a fair share (max-in-flight / db-concurrency, at most a batch): a
/// transaction per handful of records would take a database slot for little.
pub fn dispatch(limits: DispatchLimits, shared: &Arc<Shared>, processor: &Arc<Processor>) {
    let fair_share = (limits.max_in_flight / limits.db_concurrency)
        .min(limits.batch_size)
        .max(1);
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
            state.take_ready(room.min(limits.batch_size))
        };
        if jobs.is_empty() {
            return;
        }
        let slot = BatchSlot::take(shared);
        let processor = Arc::clone(processor);
        tokio::spawn(async move {
            let _slot = slot;
            processor.run_batch(jobs).await;
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
