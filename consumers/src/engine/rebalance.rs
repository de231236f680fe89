//! The consumer context: rebalance callbacks (incremental under both group
//! protocols), commit results and statistics. Revoked partitions, and those a
//! failed rebalance dropped, are given up through [`commits::release`]; assigned
//! ones start under a fresh epoch.

use std::sync::Arc;

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;

use super::commits::{self, Release};
use crate::scheduling::Shared;

/// The consumer context: rebalance callbacks, commit results, statistics.
#[derive(Debug, Clone)]
pub(crate) struct EngineContext {
    shared: Arc<Shared>,
}

impl EngineContext {
    /// A context working on `shared`.
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
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
        commits::release(&self.shared, consumer, partitions, Release::Revoke);
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
            .assignment()
            .owned()
            .into_iter()
            .filter(|partition| !held.contains(partition))
            .collect();
        tracing::error!(group = %self.shared.group, topic = %self.shared.topic, %error,
            ?lost, "rebalance error; releasing the partitions no longer held");
        commits::release(&self.shared, consumer, &lost, Release::RebalanceError);
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
        commits::commit_done(&self.shared, result, offsets);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::ClientConfig;
    use rdkafka::error::RDKafkaErrorCode;

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
        assert!(shared.lock().assignment().owned().is_empty());
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
