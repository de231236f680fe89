//! Rebalance handling (incremental under both group protocols): on revoke, drop
//! queued work of the revoked partitions, wait up to the drain timeout for their
//! in-flight records, commit what is done synchronously and fence the rest; a
//! failed rebalance releases the partitions librdkafka dropped the same way; on
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
        self.release(consumer, partitions, "revoke");
    }

    /// A rebalance that failed: librdkafka unassigns the partitions it concerned
    /// (all of them under the eager protocol) right after this callback, so the
    /// partitions the consumer no longer holds afterwards are released like revoked
    /// ones (drain, commit what is done, fence the rest). librdkafka 2.12 never
    /// reports one (it only sends assign and revoke); this keeps a future one from
    /// leaving per-partition state behind for partitions another member now owns.
    fn on_rebalance_error(&self, consumer: &BaseConsumer<Self>, error: &KafkaError) {
        let held: Vec<i32> = consumer
            .assignment()
            .map(|tpl| self.partitions_of(&tpl))
            .unwrap_or_default();
        let lost: Vec<i32> = self
            .shared
            .lock()
            .partitions
            .keys()
            .copied()
            .filter(|partition| !held.contains(partition))
            .collect();
        tracing::error!(group = %self.shared.group, topic = %self.shared.topic, %error,
            ?lost, "rebalance error; releasing the partitions no longer held");
        self.release(consumer, &lost, "error");
    }

    /// Drops queued work of `partitions`, waits up to the drain timeout for their
    /// in-flight records, commits what is done and forgets them (late completions
    /// are fenced by the epoch); counted as a rebalance of `kind`.
    fn release(&self, consumer: &BaseConsumer<Self>, partitions: &[i32], kind: &str) {
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
            .with_label_values(&[&self.shared.group, &self.shared.topic, kind])
            .inc();
        tracing::info!(
            group = %self.shared.group, topic = %self.shared.topic, ?partitions, kind,
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
            // Handled once librdkafka has unassigned what it lost (post_rebalance).
            Rebalance::Error(_) => {}
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Error(error) = rebalance {
            self.on_rebalance_error(consumer, error);
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

#[cfg(test)]
mod tests {
    use rdkafka::ClientConfig;

    use super::*;
    use crate::metrics::ConsumerMetrics;

    #[test]
    fn a_rebalance_error_fences_the_partitions_the_consumer_no_longer_holds() {
        let registry = prometheus::Registry::new();
        let shared = Shared::new(
            ConsumerMetrics::new(&registry, "g", "t"),
            "t".into(),
            "g".into(),
            Duration::from_millis(10),
        );
        let context = EngineContext::new(Arc::clone(&shared));
        // Never subscribed: after the error librdkafka holds no partition of ours.
        let consumer: BaseConsumer<EngineContext> = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("group.id", "g")
            .create_with_context(context.clone())
            .expect("consumer");
        {
            let mut state = shared.lock();
            state.assign(0);
            state.assign(1);
        }
        let error = Rebalance::Error(KafkaError::Rebalance(RDKafkaErrorCode::Fail));
        context.pre_rebalance(&consumer, &error);
        context.post_rebalance(&consumer, &error);
        assert!(shared.lock().partitions.is_empty());
        assert_eq!(
            shared
                .metrics
                .rebalances
                .with_label_values(&["g", "t", "error"])
                .get(),
            1
        );
    }
}
