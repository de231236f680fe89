//! Per-partition offset tracking: which records are still in flight, and the one
//! place that computes the offset to commit (first offset not yet done).

use std::collections::BTreeSet;

/// Tracks the records of one partition from the moment they are received until
/// they are done (effect committed or dead-letter write acked).
///
/// The committable offset is the first offset that is not done yet, or one past
/// the highest offset seen when everything is done. Records are received in
/// increasing offset order; gaps (compaction, transaction markers) are allowed.
#[derive(Debug, Default, Clone)]
pub(crate) struct OffsetTracker {
    /// Offsets received and not yet done.
    pending: BTreeSet<i64>,
    /// One past the highest offset received, if any was received.
    next_offset: Option<i64>,
    /// The last offset handed to a commit, so unchanged offsets are not re-sent.
    last_committed: Option<i64>,
}

/// What [`OffsetTracker::track`] decided about a received offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tracked {
    /// A new offset: it is now pending.
    New,
    /// An offset at or below one already received (a redelivery after a seek):
    /// it must not be processed twice by this worker.
    Stale,
}

impl OffsetTracker {
    /// A tracker for a newly assigned partition.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Registers a received record. Offsets at or below the highest received are stale.
    pub(crate) fn track(&mut self, offset: i64) -> Tracked {
        match self.next_offset {
            Some(next) if offset < next => Tracked::Stale,
            _ => {
                self.pending.insert(offset);
                self.next_offset = Some(offset + 1);
                Tracked::New
            }
        }
    }

    /// Marks a record done. Returns false if the offset was not pending.
    pub(crate) fn mark_done(&mut self, offset: i64) -> bool {
        self.pending.remove(&offset)
    }

    /// Number of received records not done yet.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The offset to commit: the next offset to read after the last contiguous
    /// done record (last done + 1). `None` before any record was received.
    /// This is the only place in the crate where a commit offset is computed.
    pub(crate) fn committable(&self) -> Option<i64> {
        match self.pending.first() {
            Some(first_not_done) => Some(*first_not_done),
            None => self.next_offset,
        }
    }

    /// The committable offset if it moved since the last [`Self::record_commit`].
    pub(crate) fn committable_if_changed(&self) -> Option<i64> {
        let offset = self.committable()?;
        if self.last_committed.is_some_and(|last| last >= offset) {
            return None;
        }
        Some(offset)
    }

    /// Remembers that `offset` was committed (or handed to an async commit).
    pub(crate) fn record_commit(&mut self, offset: i64) {
        self.last_committed = Some(self.last_committed.map_or(offset, |last| last.max(offset)));
    }

    /// Forgets the last commit (it failed), so the next round sends it again.
    pub(crate) fn forget_commit(&mut self) {
        self.last_committed = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_commit_before_any_record() {
        let tracker = OffsetTracker::new();
        assert_eq!(tracker.committable(), None);
    }

    #[test]
    fn commit_offset_stops_at_first_record_not_done() {
        let mut tracker = OffsetTracker::new();
        for offset in 10..15 {
            assert_eq!(tracker.track(offset), Tracked::New);
        }
        assert_eq!(tracker.committable(), Some(10));
        tracker.mark_done(11);
        tracker.mark_done(12);
        assert_eq!(tracker.committable(), Some(10), "11 and 12 done, 10 is not");
        tracker.mark_done(10);
        assert_eq!(tracker.committable(), Some(13));
        tracker.mark_done(14);
        assert_eq!(tracker.committable(), Some(13));
        tracker.mark_done(13);
        assert_eq!(tracker.committable(), Some(15), "all done: last + 1");
    }

    #[test]
    fn gaps_in_offsets_are_fine() {
        let mut tracker = OffsetTracker::new();
        tracker.track(3);
        tracker.track(7);
        tracker.mark_done(3);
        assert_eq!(tracker.committable(), Some(7));
        tracker.mark_done(7);
        assert_eq!(tracker.committable(), Some(8));
    }

    #[test]
    fn redelivered_offsets_are_stale() {
        let mut tracker = OffsetTracker::new();
        tracker.track(5);
        tracker.track(6);
        assert_eq!(tracker.track(6), Tracked::Stale);
        assert_eq!(tracker.track(2), Tracked::Stale);
        assert_eq!(tracker.pending(), 2);
        assert!(!tracker.mark_done(2));
    }

    #[test]
    fn committable_if_changed_reports_each_advance_once() {
        let mut tracker = OffsetTracker::new();
        tracker.track(0);
        tracker.track(1);
        assert_eq!(tracker.committable_if_changed(), Some(0));
        tracker.record_commit(0);
        assert_eq!(tracker.committable_if_changed(), None);
        tracker.mark_done(0);
        assert_eq!(tracker.committable_if_changed(), Some(1));
        tracker.record_commit(1);
        tracker.mark_done(1);
        assert_eq!(tracker.committable_if_changed(), Some(2));
    }
}
