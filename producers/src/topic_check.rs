//! Start-up check that the target topic exists. Producers write to topics created from
//! `topics.yaml` and never rely on auto-creation: a broker that auto-creates would give
//! the topic its default partition count and configs, and one that does not would fail
//! every record only after the delivery timeout. The producer's client config turns
//! auto-creation off, so this check's own metadata request cannot create the topic.

use std::time::Duration;

use rdkafka::error::KafkaResult;
use rdkafka::producer::{Producer, ProducerContext};

/// The partition count of `topic` as the broker reports it; `None` when the topic does
/// not exist (or has no partitions).
pub async fn partition_count<P, C>(producer: &P, topic: &str) -> KafkaResult<Option<usize>>
where
    P: Producer<C> + Clone + Send + 'static,
    C: ProducerContext,
{
    let client = producer.clone();
    let name = topic.to_string();
    let metadata = tokio::task::spawn_blocking(move || {
        client
            .client()
            .fetch_metadata(Some(&name), Duration::from_secs(10))
    })
    .await
    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .map(|t| t.partitions().len()))
}

/// The one-line error for a topic that does not exist.
pub fn missing_topic_message(topic: &str, brokers: &str) -> String {
    format!(
        "topic {topic:?} does not exist on {brokers}; create it first (e.g. `orderflow topics apply`)"
    )
}
