//! The harness's Kafka side through the project's own libraries: topics created with
//! the ops crate's topics-as-code admin, lag read with the lag engine.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, anyhow};
use orderflow_lag::{EngineConfig, LagEngine};
use orderflow_ops::topics::{ConfigValue, DesiredTopic, Plan, PlanOptions, TopicName, TopicsAdmin};
use orderflow_runtime::kafka::KafkaArgs;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// Creates `topic` and `topic.dlq` with `partitions` partitions, RF 3, min ISR 2,
/// unclean leader election off; with `log_append_time`, records carry the time the
/// broker appended them (the measure of an acknowledged change's delay).
pub async fn create_topics(
    brokers: &str,
    topic: &str,
    partitions: i32,
    log_append_time: bool,
) -> anyhow::Result<()> {
    let admin = TopicsAdmin::connect(&KafkaArgs::for_brokers(brokers)).await?;
    let mut configs = BTreeMap::from([
        ("min.insync.replicas".to_string(), ConfigValue::new("2")),
        (
            "unclean.leader.election.enable".to_string(),
            ConfigValue::new("false"),
        ),
    ]);
    if log_append_time {
        configs.insert(
            "message.timestamp.type".to_string(),
            ConfigValue::new("LogAppendTime"),
        );
    }
    let desired = [
        topic.to_string(),
        orderflow_contracts::dead_letter::dlq_topic(topic),
    ]
    .into_iter()
    .map(|name| {
        Ok(DesiredTopic {
            name: TopicName::new(name).map_err(|e| anyhow!(e))?,
            partitions,
            replication_factor: 3,
            configs: configs.clone(),
        })
    })
    .collect::<anyhow::Result<Vec<_>>>()?;
    let plan: Plan = admin.plan(&desired, PlanOptions::default()).await?;
    admin.apply(&plan).await?.into_result()?;
    Ok(())
}

/// The group's lag on one topic, from the lag engine.
pub struct LagReader {
    engine: LagEngine,
    group: String,
    topic: String,
    partitions: usize,
}

/// One reading.
#[derive(Debug, Clone)]
pub struct LagReading {
    /// Sum over the partitions (`None`: not every partition is known to the engine yet).
    pub total: Option<i64>,
    /// (partition, lag, log end) of each partition the engine reported.
    pub partitions: Vec<(i32, i64, i64)>,
}

impl LagReader {
    /// A reader for `group` on `topic` (with `partitions` partitions).
    pub fn new(brokers: &str, group: &str, topic: &str, partitions: usize) -> anyhow::Result<Self> {
        let mut kafka = ClientConfig::new();
        kafka.set("bootstrap.servers", brokers);
        let config = EngineConfig {
            groups: vec![group.to_string()],
            ..EngineConfig::default()
        };
        Ok(Self {
            engine: LagEngine::new(&kafka, config)?,
            group: group.into(),
            topic: topic.into(),
            partitions,
        })
    }

    /// One poll of the engine.
    pub async fn read(&mut self) -> anyhow::Result<LagReading> {
        let snapshot = self.engine.poll().await?;
        let partitions: Vec<(i32, i64, i64)> = snapshot
            .groups
            .iter()
            .filter(|g| g.group == self.group)
            .flat_map(|g| g.topics.iter())
            .filter(|t| t.topic == self.topic)
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition, p.lag, p.end_offset))
            .collect();
        let total = (partitions.len() == self.partitions)
            .then(|| partitions.iter().map(|(_, lag, _)| lag).sum());
        Ok(LagReading { total, partitions })
    }
}

/// The broker leading `partition` of `topic`.
pub async fn leader_of(brokers: &str, topic: &str, partition: i32) -> anyhow::Result<i32> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()?;
        let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(15))?;
        metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .and_then(|t| t.partitions().iter().find(|p| p.id() == partition))
            .map(|p| p.leader())
            .context("partition not in the metadata")
    })
    .await?
}
