//! Rebalance handling (incremental under both group protocols): on revoke, drop
//! queued work of the revoked partitions, wait up to the drain timeout for their
//! in-flight records, commit what is done synchronously and fence the rest; on
//! assign, start new trackers under a fresh epoch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use crate::engine_state::Shared;

/// The consumer context: rebalance callbacks, commit results, statistics.
#[derive(Debug, Clone)]
pub struct EngineContext {
    shared: Arc<Shared>,
}

impl EngineContext {
    /// A context working on `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn partitions_of(&self, tpl: &TopicPartitionList) -> Vec<i32> {
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == self.shared.topic)
            .map(|e| e.partition())
            .collect()
    }

    fn on_revoke(&self, consumer: &BaseConsumer<Self>, partitions: &[i32]) {
        let started = Instant::now();
        {
            let mut state = self.shared.lock();
            for &partition in partitions {
                state.drop_queued(partition);
            }
        }
        let drained = drain(&self.shared, partitions, self.shared.drain_timeout);
        let commits = self.shared.lock().take_commits(Some(partitions), false);
        let committed = commit_sync(consumer, &self.shared, &commits);
        let fenced = {
            let mut state = self.shared.lock();
            let fenced = state.in_flight_of(partitions);
            for &partition in partitions {
                state.forget(partition);
            }
            fenced
        };
        self.shared
            .metrics
            .rebalances
            .with_label_values(&[&self.shared.group, &self.shared.topic, "revoke"])
            .inc();
        tracing::info!(
            group = %self.shared.group, topic = %self.shared.topic, ?partitions,
            drained, fenced_in_flight = fenced, commit_ok = committed, ?commits,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "partitions revoked"
        );
    }

    fn on_assign(&self, partitions: &[i32]) {
        {
            let mut state = self.shared.lock();
            for &partition in partitions {
                state.assign(partition);
            }
        }
        self.shared
            .metrics
            .rebalances
            .with_label_values(&[&self.shared.group, &self.shared.topic, "assign"])
            .inc();
        tracing::info!(group = %self.shared.group, topic = %self.shared.topic, ?partitions,
            "partitions assigned");
        self.shared.wake.notify_one();
    }
}

/// Waits (blocking this thread, bounded by `timeout`) until no record of
/// `partitions` is in flight. Returns whether it drained in time. Workers run on
/// other runtime threads; on a current-thread runtime they cannot, so it does not wait.
pub fn drain(shared: &Shared, partitions: &[i32], timeout: Duration) -> bool {
    let wait = || {
        let deadline = Instant::now() + timeout;
        loop {
            if shared.lock().in_flight_of(partitions) == 0 {
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
        Ok(_) => shared.lock().in_flight_of(partitions) == 0,
        Err(_) => wait(),
    }
}

/// Commits `commits` synchronously and records them. Returns whether it succeeded.
pub fn commit_sync<C: Consumer<X>, X: ConsumerContext>(
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
pub fn record_committed(shared: &Shared, commits: &[(i32, i64)]) {
    let mut state = shared.lock();
    for &(partition, offset) in commits {
        let entry = state.committed.entry(partition).or_insert(offset);
        *entry = (*entry).max(offset);
        shared
            .metrics
            .committed_offset
            .with_label_values(&[&shared.group, &shared.topic, &partition.to_string()])
            .set(offset);
    }
}

impl ClientContext for EngineContext {
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.shared.topic) else {
            return;
        };
        for (partition, stats) in &topic.partitions {
            if *partition < 0 || stats.consumer_lag < 0 {
                continue;
            }
            self.shared
                .metrics
                .lag
                .with_label_values(&[
                    &self.shared.group,
                    &self.shared.topic,
                    &partition.to_string(),
                ])
                .set(stats.consumer_lag);
        }
    }
}

impl ConsumerContext for EngineContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => self.on_revoke(consumer, &self.partitions_of(tpl)),
            // Trackers exist before the partitions are fetched.
            Rebalance::Assign(tpl) => self.on_assign(&self.partitions_of(tpl)),
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.shared.group, %error, "rebalance error")
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let commits: Vec<(i32, i64)> = offsets
            .elements()
            .iter()
            .filter(|e| e.topic() == self.shared.topic)
            .filter_map(|e| match e.offset() {
                Offset::Offset(offset) => Some((e.partition(), offset)),
                _ => None,
            })
            .collect();
        match result {
            Ok(()) => record_committed(&self.shared, &commits),
            Err(error) => {
                tracing::warn!(group = %self.shared.group, %error, ?commits,
                    "commit failed; it will be sent again");
                let mut state = self.shared.lock();
                for (partition, _) in commits {
                    if let Some(p) = state.partitions.get_mut(&partition) {
                        p.tracker.forget_commit();
                    }
                }
            }
        }
    }
}
