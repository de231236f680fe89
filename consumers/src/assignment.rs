//! The partitions this worker owns and what of them is done: per-partition
//! epochs, offset trackers, in-flight counts and pause flags; the commits they
//! allow; and the one release sequence (drop queued work, drain, commit, forget)
//! that a revoke, a failed rebalance and shutdown share.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use crate::back_pressure::PartitionLoad;
use crate::engine_state::Shared;
use crate::offset_tracker::{OffsetTracker, Tracked};

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
pub struct Assignment {
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
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts owning `partition` under a fresh epoch.
    pub fn assign(&mut self, partition: i32) {
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
    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
        self.last_change = Some(Instant::now());
    }

    /// The partitions owned now, in order.
    pub fn owned(&self) -> Vec<i32> {
        self.partitions.keys().copied().collect()
    }

    /// When a partition was last assigned or released.
    pub fn last_change(&self) -> Option<Instant> {
        self.last_change
    }

    /// Whether work of `partition` received under `epoch` is still ours.
    pub fn is_current(&self, partition: i32, epoch: u64) -> bool {
        self.partitions
            .get(&partition)
            .is_some_and(|p| p.epoch == epoch)
    }

    /// Registers a received record; its partition's epoch, or `None` when the
    /// partition is not owned or the offset was already received (a redelivery
    /// after a seek).
    pub fn track(&mut self, partition: i32, offset: i64) -> Option<u64> {
        let state = self.partitions.get_mut(&partition)?;
        match state.tracker.track(offset) {
            Tracked::New => Some(state.epoch),
            Tracked::Stale => None,
        }
    }

    /// A record of `partition` was handed to a worker.
    pub fn started(&mut self, partition: i32) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.in_flight += 1;
        }
    }

    /// A worker finished a record received under `epoch`; `done` marks its offset
    /// done (committable), otherwise it stays pending. False when the record is
    /// from an earlier epoch (fenced: nothing changes).
    pub fn finished(&mut self, partition: i32, epoch: u64, offset: i64, done: bool) -> bool {
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
    pub fn in_flight_of(&self, partitions: &[i32]) -> usize {
        partitions
            .iter()
            .filter_map(|p| self.partitions.get(p))
            .map(|p| p.in_flight)
            .sum()
    }

    /// Committable offsets that moved since the last commit (all of them when
    /// `only_changed` is false), for the given partitions or every owned one;
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

    /// Committable offsets of owned partitions that the broker has not acknowledged yet,
    /// each recorded as handed to a commit. An async commit whose result never comes
    /// (seen after the group coordinator's broker was killed and restarted: no error, no
    /// success, and no newer offset to send because the partition was done) would
    /// otherwise hold the group's committed offset back until the next record.
    pub fn take_unacknowledged(&mut self) -> Vec<(i32, i64)> {
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
    pub fn commit_failed(&mut self, commits: &[(i32, i64)]) {
        for (partition, _) in commits {
            if let Some(state) = self.partitions.get_mut(partition) {
                state.tracker.forget_commit();
            }
        }
    }

    /// Remembers offsets the broker accepted.
    pub fn committed(&mut self, commits: &[(i32, i64)]) {
        for &(partition, offset) in commits {
            let entry = self.committed.entry(partition).or_insert(offset);
            *entry = (*entry).max(offset);
        }
    }

    /// Offsets committed successfully per partition, released ones included.
    pub fn committed_offsets(&self) -> &BTreeMap<i32, i64> {
        &self.committed
    }

    /// The next offset to read of each owned partition that received records
    /// (everything before it is done).
    pub fn done_up_to(&self) -> Vec<(i32, i64)> {
        self.partitions
            .iter()
            .filter_map(|(p, s)| s.tracker.committable().map(|next| (*p, next)))
            .collect()
    }

    /// Each owned partition as back-pressure sees it, given its buffered records.
    pub fn loads(&self, buffered: &BTreeMap<i32, usize>) -> Vec<PartitionLoad> {
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
    pub fn set_paused(&mut self, partitions: &[i32], paused: bool) {
        for partition in partitions {
            if let Some(p) = self.partitions.get_mut(partition) {
                p.paused = paused;
            }
        }
    }

    /// Owned partitions paused now.
    pub fn paused_count(&self) -> usize {
        self.partitions.values().filter(|p| p.paused).count()
    }
}

/// Why partitions are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The group took them away.
    Revoke,
    /// A rebalance failed and librdkafka dropped them.
    RebalanceError,
    /// The worker is stopping.
    Shutdown,
}

impl Release {
    /// Label of the rebalance metric (`None`: not a rebalance).
    fn rebalance_kind(self) -> Option<&'static str> {
        match self {
            Release::Revoke => Some("revoke"),
            Release::RebalanceError => Some("error"),
            Release::Shutdown => None,
        }
    }
}

/// Gives `partitions` up: drops their queued work, waits up to the drain timeout
/// for their in-flight records, commits what is done synchronously and forgets
/// them (late completions are fenced by the epoch, and what was not done is
/// read again by the next owner).
pub fn release<C: Consumer<X>, X: ConsumerContext>(
    shared: &Shared,
    consumer: &C,
    partitions: &[i32],
    reason: Release,
) {
    let started = Instant::now();
    {
        let mut state = shared.lock();
        for &partition in partitions {
            state.drop_queued(partition);
        }
    }
    let drained = drain(shared, partitions, shared.drain_timeout);
    let commits = shared
        .lock()
        .assignment_mut()
        .take_commits(Some(partitions), false);
    let committed = commit_sync(consumer, shared, &commits);
    let fenced = {
        let mut state = shared.lock();
        let fenced = state.assignment().in_flight_of(partitions);
        for &partition in partitions {
            state.forget(partition);
        }
        fenced
    };
    match reason.rebalance_kind() {
        Some(kind) => {
            shared
                .metrics
                .rebalances
                .with_label_values(&[&shared.group, &shared.topic, kind])
                .inc();
            tracing::info!(
                group = %shared.group, topic = %shared.topic, ?partitions, kind,
                drained, fenced_in_flight = fenced, commit_ok = committed, ?commits,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "partitions revoked"
            );
        }
        None => tracing::info!(group = %shared.group, drained, commit_ok = committed, ?commits,
            processed = shared.stats.processed.load(std::sync::atomic::Ordering::Relaxed),
            "stopped: drained, committed, leaving the group"),
    }
}

/// Waits (blocking this thread, bounded by `timeout`) until no record of
/// `partitions` is in flight. Returns whether it drained in time. Workers run on
/// other runtime threads; on a current-thread runtime they cannot, so it does not wait.
fn drain(shared: &Shared, partitions: &[i32], timeout: Duration) -> bool {
    let in_flight = || shared.lock().assignment().in_flight_of(partitions);
    let wait = || {
        let deadline = Instant::now() + timeout;
        loop {
            if in_flight() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
        Ok(_) => in_flight() == 0,
        Err(_) => wait(),
    }
}

/// Which offsets an asynchronous commit sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitScope {
    /// Those that moved since the last commit (every commit interval).
    Changed,
    /// Those the broker has not acknowledged yet (now and then: a commit whose result
    /// never came is sent again).
    Unacknowledged,
}

/// Sends the offsets of `scope` without waiting; the result arrives in the consumer
/// context's commit callback.
pub fn commit_async<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    shared: &Shared,
    scope: CommitScope,
) {
    let commits = {
        let mut state = shared.lock();
        let assignment = state.assignment_mut();
        match scope {
            CommitScope::Changed => assignment.take_commits(None, true),
            CommitScope::Unacknowledged => assignment.take_unacknowledged(),
        }
    };
    if commits.is_empty() {
        return;
    }
    match to_tpl(&shared.topic, &commits) {
        Ok(tpl) => {
            if let Err(error) = consumer.commit(&tpl, CommitMode::Async) {
                tracing::warn!(%error, "async commit could not be sent");
                shared.lock().assignment_mut().commit_failed(&commits);
            }
        }
        Err(error) => tracing::warn!(%error, "commit list"),
    }
}

/// The result of an asynchronous commit, as the commit callback reports it.
pub fn commit_done(shared: &Shared, result: KafkaResult<()>, offsets: &TopicPartitionList) {
    let commits: Vec<(i32, i64)> = offsets
        .elements()
        .iter()
        .filter(|e| e.topic() == shared.topic)
        .filter_map(|e| match e.offset() {
            Offset::Offset(offset) => Some((e.partition(), offset)),
            _ => None,
        })
        .collect();
    match result {
        Ok(()) => record_committed(shared, &commits),
        Err(error) => {
            tracing::warn!(group = %shared.group, %error, ?commits,
                "commit failed; it will be sent again");
            shared.lock().assignment_mut().commit_failed(&commits);
        }
    }
}

/// Commits `commits` synchronously and records them. Returns whether it succeeded.
fn commit_sync<C: Consumer<X>, X: ConsumerContext>(
    consumer: &C,
    shared: &Shared,
    commits: &[(i32, i64)],
) -> bool {
    if commits.is_empty() {
        return true;
    }
    let tpl = match to_tpl(&shared.topic, commits) {
        Ok(tpl) => tpl,
        Err(error) => {
            tracing::error!(%error, "cannot build commit list");
            return false;
        }
    };
    let mut attempt = 1;
    loop {
        match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => {
                record_committed(shared, commits);
                return true;
            }
            // Consumer protocol: the broker bumped the member epoch (a rebalance) and
            // the heartbeat bringing it is on its way; librdkafka does not retry a
            // manual commit, so this does.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::StaleMemberEpoch))
                if attempt < STALE_EPOCH_ATTEMPTS =>
            {
                std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
                attempt += 1;
            }
            Err(error) => {
                tracing::warn!(group = %shared.group, %error, ?commits, attempt,
                    "synchronous commit failed");
                return false;
            }
        }
    }
}

/// Attempts of a synchronous commit that fails with STALE_MEMBER_EPOCH (waits
/// 0.1 + 0.2 + 0.3 + 0.4 s in between).
const STALE_EPOCH_ATTEMPTS: u32 = 5;

/// A topic-partition list with the given offsets.
pub fn to_tpl(topic: &str, commits: &[(i32, i64)]) -> KafkaResult<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for &(partition, offset) in commits {
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    Ok(tpl)
}

/// Remembers committed offsets for the summary and the metrics.
fn record_committed(shared: &Shared, commits: &[(i32, i64)]) {
    shared.lock().assignment_mut().committed(commits);
    for &(partition, offset) in commits {
        shared
            .metrics
            .committed_offset
            .with_label_values(&[&shared.group, &shared.topic, &partition.to_string()])
            .set(offset);
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
