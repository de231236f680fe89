//! Reads the last records of each partition of a topic to tell whether its records are
//! keyed and which keys it holds, before a partition increase is planned. By assignment:
//! no group joined, nothing committed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::error::{Result, TopicsError};
use super::key_moves::KeySample;

/// Records read from the end of each partition, at most.
pub const RECORDS_PER_PARTITION: i64 = 200;
/// How long sampling one topic may take before the plan goes on with what was read.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Samples the keys at the end of each of `partitions` partitions of `topic`.
pub fn sample_keys(base: &ClientConfig, topic: &str, partitions: i32) -> Result<KeySample> {
    let kafka = |operation: String| move |source| TopicsError::Kafka { operation, source };
    let consumer: BaseConsumer = base
        .clone()
        // librdkafka wants a group id to assign; assign() never joins it.
        .set("group.id", "orderflow-topics-key-sample")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(kafka("creating the key sampler".into()))?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in 0..partitions {
        let (low, high) = watermarks(&consumer, topic, partition).map_err(kafka(format!(
            "reading the offsets of {topic}[{partition}]"
        )))?;
        let start = low.max(high - RECORDS_PER_PARTITION);
        if start < high {
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(start))
                .map_err(kafka("building the sample assignment".into()))?;
            ends.insert(partition, high);
        }
    }
    let mut sample = KeySample::default();
    if ends.is_empty() {
        return Ok(sample);
    }
    consumer
        .assign(&assignment)
        .map_err(kafka(format!("assigning {topic}")))?;
    let mut keys: BTreeMap<Vec<u8>, i32> = BTreeMap::new();
    let deadline = Instant::now() + SAMPLE_TIMEOUT;
    while !ends.is_empty() && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(kafka(format!("reading {topic}")))?;
        sample.records += 1;
        if let Some(key) = message.key() {
            keys.insert(key.to_vec(), message.partition());
        }
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&message.partition());
        }
    }
    sample.keys = keys.into_iter().collect();
    Ok(sample)
}

/// The watermarks of one partition. A topic created a moment ago may not have a leader
/// in every broker's metadata yet: such answers are asked again until the timeout.
fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
) -> std::result::Result<(i64, i64), KafkaError> {
    let deadline = Instant::now() + SAMPLE_TIMEOUT;
    loop {
        match consumer.fetch_watermarks(topic, partition, SAMPLE_TIMEOUT) {
            Err(err)
                if Instant::now() < deadline
                    && matches!(
                        err.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::NotLeaderForPartition
                                | RDKafkaErrorCode::LeaderNotAvailable
                                | RDKafkaErrorCode::UnknownTopicOrPartition
                        )
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}
