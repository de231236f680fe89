//! Releasing partitions and committing their done offsets: the one release
//! sequence (drop queued work, drain, commit, forget) that a revoke, a failed
//! rebalance and shutdown share, the periodic asynchronous commits and their
//! results. What may be committed is the [`Assignment`](crate::partitions::Assignment)'s
//! to say; this module talks to the consumer.

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use crate::scheduling::Shared;

/// Why partitions are released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
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
pub(crate) fn release<C: Consumer<X>, X: ConsumerContext>(
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
pub(crate) enum CommitScope {
    /// Those that moved since the last commit (every commit interval).
    Changed,
    /// Those the broker has not acknowledged yet (now and then: a commit whose result
    /// never came is sent again).
    Unacknowledged,
}

/// Sends the offsets of `scope` without waiting; the result arrives in the consumer
/// context's commit callback.
pub(crate) fn commit_async<C: Consumer<X>, X: ConsumerContext>(
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
pub(crate) fn commit_done(shared: &Shared, result: KafkaResult<()>, offsets: &TopicPartitionList) {
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
pub(crate) fn to_tpl(topic: &str, commits: &[(i32, i64)]) -> KafkaResult<TopicPartitionList> {
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
