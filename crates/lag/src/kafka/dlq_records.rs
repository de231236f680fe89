//! The newest records of a dead-letter topic with their error category, for the
//! dashboard's DLQ panel. Bounded: at most a given number of records per partition,
//! read backwards from the high watermark by a group-less consumer within a time budget.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;

use crate::error::{LagError, Result};

/// Headers written by order-consumer on a dead-lettered record (its
/// `dead_letter::headers`; this crate does not depend on the consumer).
mod header {
    pub const CATEGORY: &str = "dlq-error-category";
    pub const MESSAGE: &str = "dlq-error-message";
    pub const SOURCE_TOPIC: &str = "dlq-source-topic";
    pub const SOURCE_PARTITION: &str = "dlq-source-partition";
    pub const SOURCE_OFFSET: &str = "dlq-source-offset";
    pub const CONSUMER_GROUP: &str = "dlq-consumer-group";
    pub const ATTEMPTS: &str = "dlq-attempts";
}

/// Category shown for a record without the category header.
pub const NO_CATEGORY: &str = "(none)";

/// One dead-lettered record, without its key and value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DlqEntry {
    /// Partition of the DLQ topic.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// When it was dead-lettered (the record's timestamp), ms since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// `dlq-error-category`, or [`NO_CATEGORY`].
    pub category: String,
    /// `dlq-error-message`.
    pub error: Option<String>,
    /// Where the record came from: `dlq-source-topic`, `-partition`, `-offset`.
    pub source_topic: Option<String>,
    /// Source partition.
    pub source_partition: Option<i32>,
    /// Source offset.
    pub source_offset: Option<i64>,
    /// Consumer group that gave up on it.
    pub consumer_group: Option<String>,
    /// Attempts made before giving up.
    pub attempts: Option<u32>,
}

/// Records read from one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    /// Error category.
    pub category: String,
    /// Records of it among those read.
    pub records: usize,
}

/// The newest records of a DLQ topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DlqRecords {
    /// The DLQ topic.
    pub dlq_topic: String,
    /// Most records read per partition.
    pub per_partition: i64,
    /// Records read, per category, most first.
    pub by_category: Vec<CategoryCount>,
    /// Records read, newest first.
    pub records: Vec<DlqEntry>,
    /// False when the time budget ran out before every partition was read.
    pub complete: bool,
}

/// Reads up to `per_partition` records from the end of each partition of `topic`,
/// giving up after `budget`. Blocking.
pub fn read_newest(
    base: &ClientConfig,
    topic: &str,
    per_partition: i64,
    budget: Duration,
) -> Result<DlqRecords> {
    let deadline = Instant::now() + budget;
    let consumer: BaseConsumer = base
        .clone()
        // librdkafka wants a group id to assign partitions; nothing joins or commits.
        .set("group.id", "orderflow-lag-dlq-reader")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| LagError::kafka("creating the DLQ reader", e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), budget)
        .map_err(|e| LagError::kafka("DLQ topic metadata", e))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    // Per partition, the offset one past the last record to read.
    let mut pending: HashMap<i32, i64> = HashMap::new();
    for partition in partitions {
        let left = deadline.saturating_duration_since(Instant::now());
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, left)
            .map_err(|e| LagError::kafka("DLQ watermarks", e))?;
        let start = low.max(high - per_partition);
        if start < high {
            tpl.add_partition_offset(topic, partition, Offset::Offset(start))
                .map_err(|e| LagError::kafka("DLQ assignment", e))?;
            pending.insert(partition, high);
        }
    }
    let mut records = Vec::new();
    if !pending.is_empty() {
        consumer
            .assign(&tpl)
            .map_err(|e| LagError::kafka("assigning the DLQ topic", e))?;
    }
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left.min(Duration::from_millis(200))) {
            None => {}
            Some(Ok(message)) => {
                let partition = message.partition();
                if pending
                    .get(&partition)
                    .is_some_and(|end| message.offset() + 1 >= *end)
                {
                    pending.remove(&partition);
                }
                records.push(entry(&message));
            }
            // The end of a partition whose last offsets are transaction markers.
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                pending.remove(&partition);
            }
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange))) => {}
            Some(Err(e)) => return Err(LagError::kafka("reading the DLQ topic", e)),
        }
    }
    records.sort_by_key(|r| std::cmp::Reverse((r.timestamp_ms, r.offset, r.partition)));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &records {
        *counts.entry(record.category.as_str()).or_default() += 1;
    }
    let mut by_category: Vec<CategoryCount> = counts
        .into_iter()
        .map(|(category, records)| CategoryCount {
            category: category.to_owned(),
            records,
        })
        .collect();
    by_category.sort_by_key(|c| std::cmp::Reverse(c.records));
    Ok(DlqRecords {
        dlq_topic: topic.to_owned(),
        per_partition,
        by_category,
        complete: pending.is_empty(),
        records,
    })
}

fn entry(message: &impl Message) -> DlqEntry {
    let header = |name: &str| {
        message.headers().and_then(|headers| {
            headers
                .iter()
                .filter(|h| h.key == name)
                .last()
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    let number = |name: &str| header(name).and_then(|v| v.trim().parse::<i64>().ok());
    DlqEntry {
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        category: header(header::CATEGORY).unwrap_or_else(|| NO_CATEGORY.to_owned()),
        error: header(header::MESSAGE),
        source_topic: header(header::SOURCE_TOPIC),
        source_partition: number(header::SOURCE_PARTITION).and_then(|p| i32::try_from(p).ok()),
        source_offset: number(header::SOURCE_OFFSET),
        consumer_group: header(header::CONSUMER_GROUP),
        attempts: number(header::ATTEMPTS).and_then(|a| u32::try_from(a).ok()),
    }
}
