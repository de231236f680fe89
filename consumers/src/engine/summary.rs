//! The JSON summary printed by `--exit-when-idle`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::scheduling::Shared;

/// Why the engine stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// Caught up and idle (`--exit-when-idle`).
    Idle,
    /// Shutdown requested (signal or token).
    Shutdown,
    /// A failure nothing can get past (a dead-letter write that can never
    /// succeed); the run ends with an error.
    Failed,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Consumer group.
    pub group: String,
    /// Source topic.
    pub topic: String,
    /// Why it stopped.
    pub exit_reason: ExitReason,
    /// Effects applied.
    pub processed: u64,
    /// Duplicates skipped.
    pub duplicates: u64,
    /// Records dead-lettered.
    pub dead_lettered: u64,
    /// Redelivered records not dead-lettered again (written before by the group).
    pub dead_letter_skipped: u64,
    /// Retries made.
    pub retried: u64,
    /// Seconds from the first record received to the last record done.
    pub active_secs: f64,
    /// Last committed offset per partition (the next offset to read).
    pub committed_offsets: BTreeMap<i32, i64>,
}

impl Summary {
    /// Reads the counters and committed offsets.
    pub(crate) fn collect(shared: &Shared, exit_reason: ExitReason) -> Self {
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        let state = shared.lock();
        let active_secs = state.active_span().map_or(0.0, |span| span.as_secs_f64());
        Self {
            group: shared.group.clone(),
            topic: shared.topic.clone(),
            exit_reason,
            processed: load(&shared.stats.processed),
            duplicates: load(&shared.stats.duplicates),
            dead_lettered: load(&shared.stats.dead_lettered),
            dead_letter_skipped: load(&shared.stats.dead_letter_skipped),
            retried: load(&shared.stats.retried),
            active_secs,
            committed_offsets: state.assignment().committed_offsets().clone(),
        }
    }

    /// One line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
