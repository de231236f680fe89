//! Reads from Kafka: metadata, log offsets, groups and their members, committed
//! offsets, record timestamps. Blocking librdkafka calls, run off the async threads,
//! and batched OffsetFetch over the engine's own broker connections.

pub mod assignment;
pub mod broker_connection;
pub mod committed;
pub mod committed_source;
pub mod dlq_records;
pub mod group_offsets;
pub mod groups;
pub mod log_offsets;
pub mod sasl;
pub mod timestamps;
pub mod wire_security;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::error::{LagError, Result};

/// Partitions of every topic in the cluster, internal topics (`__...`) left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterTopics {
    /// (topic, partition count), ordered by topic.
    pub topics: Vec<(String, i32)>,
}

impl ClusterTopics {
    /// Partition count of `topic`, if it exists.
    pub fn partitions(&self, topic: &str) -> Option<i32> {
        self.topics
            .binary_search_by(|(t, _)| t.as_str().cmp(topic))
            .ok()
            .map(|i| self.topics[i].1)
    }
}

/// A consumer without a group, used for metadata, group lists and ListOffsets.
pub(crate) fn plain_consumer(base: &ClientConfig, isolation: &str) -> Result<BaseConsumer> {
    let mut config = base.clone();
    config
        .set("client.id", "orderflow-lag")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        // Only offsets are read; no need for fast broker reconnect churn.
        .set("topic.metadata.refresh.interval.ms", "30000");
    config.create().map_err(LagError::ClientConfig)
}

/// Reads the topic list of the cluster.
pub(crate) fn cluster_topics(consumer: &BaseConsumer, timeout: Duration) -> Result<ClusterTopics> {
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(|e| LagError::kafka("metadata", e))?;
    let mut topics: Vec<(String, i32)> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
        .filter(|(_, n)| *n > 0)
        .collect();
    topics.sort();
    Ok(ClusterTopics { topics })
}
