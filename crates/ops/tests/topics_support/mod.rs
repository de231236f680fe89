//! What the topics tests (`topics_apply.rs` through the library, `topics_guarded.rs`
//! through the binary) ask the real broker, and the operator's change made outside the
//! topics file with Kafka's own tool.

use std::collections::BTreeMap;
use std::time::Duration;

use orderflow_testkit as testkit;
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Partition count of `topic` from a fresh metadata request (0 when absent).
pub fn partition_count(topic: &str) -> usize {
    let consumer: BaseConsumer = testkit::kafka_config().create().expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map_or(0, |t| t.partitions().len())
}

/// Sets `key=value` on `topic` as an operator would, with Kafka's ConfigCommand: a
/// config the topics file does not name.
pub fn set_config_outside_the_file(topic: &str, key_value: &str) {
    testkit::run_kafka_tool(
        "org.apache.kafka.tools.ConfigCommand",
        &[
            "--bootstrap-server",
            &testkit::kafka_brokers(),
            "--entity-type",
            "topics",
            "--entity-name",
            topic,
            "--alter",
            "--add-config",
            key_value,
        ],
        b"",
    );
}

/// The configs set on `topic` itself (source DynamicTopic), as the broker reports them.
pub async fn topic_level_configs(topic: &str) -> BTreeMap<String, String> {
    let admin: AdminClient<DefaultClientContext> =
        testkit::kafka_config().create().expect("admin client");
    let mut results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("DescribeConfigs");
    let resource = results.pop().expect("one result").expect("topic described");
    resource
        .entries
        .into_iter()
        .filter(|entry| entry.source == ConfigSource::DynamicTopic)
        .filter_map(|entry| Some((entry.name, entry.value?)))
        .collect()
}

/// `pairs` as the map [`topic_level_configs`] returns.
pub fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}
