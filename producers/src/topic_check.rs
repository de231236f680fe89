//! Start-up check that the target topic exists. Producers write to topics created from
//! `topics.yaml` and never rely on auto-creation: a broker that auto-creates would give
//! the topic its default partition count and configs, and one that does not would fail
//! every record only after the delivery timeout. The producer's client config turns
//! auto-creation off, so this check's own metadata request cannot create the topic.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
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

/// librdkafka's default `message.max.bytes`.
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// The largest record the producer configured by `config` may send to `topic`: the
/// smaller of the producer's `message.max.bytes` and the topic's `max.message.bytes`
/// (read with DescribeConfigs through an admin client built from `config`). A topic
/// whose limit cannot be read counts with the producer's alone.
pub async fn max_record_bytes(config: &ClientConfig, topic: &str) -> KafkaResult<usize> {
    let producer_limit = config
        .get("message.max.bytes")
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
    let admin: AdminClient<DefaultClientContext> = config.create()?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await?;
    let topic_limit = described
        .into_iter()
        .filter_map(Result::ok)
        .find_map(|resource| {
            resource
                .get("max.message.bytes")
                .and_then(|entry| entry.value.as_deref())
                .and_then(|value| value.parse::<usize>().ok())
        });
    if topic_limit.is_none() {
        tracing::warn!(%topic, "cannot read the topic's max.message.bytes; checking events against the producer's message.max.bytes only");
    }
    Ok(topic_limit.map_or(producer_limit, |limit| limit.min(producer_limit)))
}
