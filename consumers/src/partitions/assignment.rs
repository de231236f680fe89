//! The partitions this worker owns and what of them is done: per-partition
//! epochs, offset trackers, in-flight counts and pause flags, and the commits they
//! allow. Sending those commits, and releasing partitions, is the engine's
//! ([`crate::engine::commits`]).

use std::collections::BTreeMap;
use std::time::Instant;

use super::back_pressure::PartitionLoad;
use super::offset_tracker::{OffsetTracker, Tracked};

/// One owned partition.
#[derive(Debug)]
struct Partition {
    /// Changes on every assignment; work from an older epoch is fenced.
    epoch: u64,
    /// Received offsets not done yet and the commit position.
    tracker: OffsetTracker,
    /// Records of this partition being processed now.
    in_flight: usize,
    /// Whether the consumer paused fetching it.
    paused: bool,
}

/// Every partition this worker owns, and the offsets it committed.
#[derive(Debug)]
pub(crate) struct Assignment {
    partitions: BTreeMap<i32, Partition>,
    /// Offsets committed successfully (kept after a partition is released, for the summary).
    committed: BTreeMap<i32, i64>,
    next_epoch: u64,
    last_change: Option<Instant>,
}

impl Default for Assignment {
    fn default() -> Self {
        Self {
            partitions: BTreeMap::new(),
            committed: BTreeMap::new(),
            next_epoch: 1,
            last_change: None,
        }
    }
}

impl Assignment {
    /// Owns nothing yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Starts owning `partition` under a fresh epoch.
    pub(crate) fn assign(&mut self, partition: i32) {
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        self.partitions.insert(
            partition,
            Partition {
                epoch,
                tracker: OffsetTracker::new(),
                in_flight: 0,
                // Unknown: a partition paused before a revocation may come back
                // paused; back-pressure reconciles by resuming it explicitly.
                paused: true,
            },
        );
        self.last_change = Some(Instant::now());
    }

    /// Stops owning `partition`: late completions of its work are fenced.
    pub(crate) fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
        self.last_change = Some(Instant::now());
    }

    /// The partitions owned now, in order.
    pub(crate) fn owned(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }

    /// When a partition was last assigned or released.
    pub(crate) fn last_change(&self) -> Option<Instant> {
        self.last_change
    }

    /// Whether work of `partition` received under `epoch` is still ours.
    pub(crate) fn is_current(&self, partition: i32, epoch: u64) -> bool {
        self.partitions
            .get(&partition)
            .is_some_and(|p| p.epoch == epoch)
    }

    /// Registers a received record; its partition's epoch, or `None` when the
    /// partition is not owned or the offset was already received (a redelivery
    /// after a seek).
    pub(crate) fn track(&mut self, partition: i32, offset: i64) -> Option<u64> {
        let state = self.partitions.get_mut(&partition)?;
        match state.tracker.track(offset) {
            Tracked::New => Some(state.epoch),
            Tracked::Stale => None,
        }
    }

    /// A record of `partition` was handed to a worker.
    pub(crate) fn started(&mut self, partition: i32) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.in_flight += 1;
        }
    }

    /// A worker finished a record received under `epoch`; `done` marks its offset
    /// done (committable), otherwise it stays pending. False when the record is
    /// from an earlier epoch (fenced: nothing changes).
    pub(crate) fn finished(&mut self, partition: i32, epoch: u64, offset: i64, done: bool) -> bool {
        match self.partitions.get_mut(&partition) {
            Some(state) if state.epoch == epoch => {
                state.in_flight = state.in_flight.saturating_sub(1);
                if done {
                    state.tracker.mark_done(offset);
                }
                true
            }
            _ => false,
        }
    }

    /// Records in flight for the given partitions.
    pub(crate) fn in_flight_of(&self, partitions: &[i32]) -> usize {
        partitions
            .iter()
            .filter_map(|p| self.partitions.get(p))
            .map(|p| p.in_flight)
            .sum()
    }

    /// Committable offsets that moved since the last commit (all of them when
    /// `only_changed` is false), for the given partitions or every owned one;
    /// each is recorded as handed to a commit.
    pub(crate) fn take_commits(
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

    /// Committable offsets of owned partitions that the broker has not acknowledged yet,
    /// each recorded as handed to a commit. An async commit whose result never comes
    /// (seen after the group coordinator's broker was killed and restarted: no error, no
    /// success, and no newer offset to send because the partition was done) would
    /// otherwise hold the group's committed offset back until the next record.
    pub(crate) fn take_unacknowledged(&mut self) -> Vec<(i32, i64)> {
        let mut commits = Vec::new();
        for (partition, state) in self.partitions.iter_mut() {
            let Some(offset) = state.tracker.committable() else {
                continue;
            };
            if self
                .committed
                .get(partition)
                .is_some_and(|&acked| acked >= offset)
            {
                continue;
            }
            state.tracker.record_commit(offset);
            commits.push((*partition, offset));
        }
        commits
    }

    /// A commit of these partitions failed: the next round sends them again.
    pub(crate) fn commit_failed(&mut self, commits: &[(i32, i64)]) {
        for (partition, _) in commits {
            if let Some(state) = self.partitions.get_mut(partition) {
                state.tracker.forget_commit();
            }
        }
    }

    /// Remembers offsets the broker accepted.
    pub(crate) fn committed(&mut self, commits: &[(i32, i64)]) {
        for &(partition, offset) in commits {
            let entry = self.committed.entry(partition).or_insert(offset);
            *entry = (*entry).max(offset);
        }
    }

    /// Offsets committed successfully per partition, released ones included.
    pub(crate) fn committed_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.committed
    }

    /// The next offset to read of each owned partition that received records
    /// (everything before it is done).
    pub(crate) fn done_up_to(&self) -> Vec<(i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|(p, s)| s.tracker.committable().map(|next| (*p, next)))
            .collect()
    }

    /// Each owned partition as back-pressure sees it, given its buffered records.
    pub(crate) fn loads(&self, buffered: &BTreeMap<i32, usize>) -> Vec<PartitionLoad> {
        self.partitions
            .iter()
            .map(|(partition, p)| PartitionLoad {
                partition: *partition,
                buffered: buffered.get(partition).copied().unwrap_or(0),
                paused: p.paused,
            })
            .collect()
    }

    /// Records that the consumer paused (or resumed) these partitions.
    pub(crate) fn set_paused(&mut self, partitions: &[i32], paused: bool) {
        for partition in partitions {
            if let Some(p) = self.partitions.get_mut(partition) {
                p.paused = paused;
            }
        }
    }

    /// Owned partitions paused now.
    pub(crate) fn paused_count(&self) -> usize {
        self.partitions.values().filter(|p| p.paused).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_of_an_earlier_epoch_is_fenced() {
        let mut assignment = Assignment::new();
        assignment.assign(0);
        let old = assignment.track(0, 10).expect("new offset");
        assignment.started(0);
        assignment.forget(0);
        assignment.assign(0);
        assert!(!assignment.is_current(0, old));
        assert!(!assignment.finished(0, old, 10, true), "fenced");
        assert_eq!(assignment.take_commits(None, false), vec![]);
    }

    #[test]
    fn commits_stop_at_the_first_record_not_done() {
        let mut assignment = Assignment::new();
        assignment.assign(3);
        let epoch = assignment.track(3, 0).unwrap();
        assert_eq!(assignment.track(3, 1), Some(epoch));
        assert_eq!(assignment.track(3, 1), None, "redelivery");
        assignment.started(3);
        assignment.started(3);
        assert!(assignment.finished(3, epoch, 1, true));
        assert_eq!(assignment.in_flight_of(&[3]), 1);
        assert_eq!(assignment.take_commits(None, true), vec![(3, 0)]);
        assert_eq!(assignment.take_commits(None, true), vec![], "unchanged");
        assert!(assignment.finished(3, epoch, 0, true));
        assert_eq!(assignment.take_commits(None, true), vec![(3, 2)]);
        assignment.commit_failed(&[(3, 2)]);
        assert_eq!(assignment.take_commits(None, true), vec![(3, 2)], "resent");
    }

    #[test]
    fn offsets_the_broker_never_acknowledged_are_sent_again() {
        let mut assignment = Assignment::new();
        assignment.assign(2);
        let epoch = assignment.track(2, 4).unwrap();
        assignment.started(2);
        assert!(assignment.finished(2, epoch, 4, true));
        assert_eq!(assignment.take_commits(None, true), vec![(2, 5)]);
        // The async commit's result never comes: nothing changed, so nothing is sent...
        assert_eq!(assignment.take_commits(None, true), vec![]);
        // ...except to the resend of unacknowledged offsets.
        assert_eq!(assignment.take_unacknowledged(), vec![(2, 5)]);
        assignment.committed(&[(2, 5)]);
        assert_eq!(assignment.take_unacknowledged(), vec![], "acknowledged");
    }

    #[test]
    fn committed_offsets_outlive_the_partition() {
        let mut assignment = Assignment::new();
        assignment.assign(1);
        assignment.committed(&[(1, 7)]);
        assignment.committed(&[(1, 5)]);
        assignment.forget(1);
        assert_eq!(assignment.committed_offsets().get(&1), Some(&7));
        assert!(assignment.owned().is_empty());
    }
}
