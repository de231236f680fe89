//! Reads a DLQ topic from the beginning (or `--from-offset`) up to the high watermarks
//! taken at start, by partition assignment: no consumer group, nothing committed, and
//! records written while it runs are not read, so a run always ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::error::{DeadLetterError, Result};
use super::record::DlqRecord;

/// Timeout of each metadata and watermark request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Group id the reader names without joining or committing (librdkafka requires one).
pub const READER_GROUP: &str = "orderflow-dlq-reader";
/// How long to wait for a record before checking positions again.
const POLL_SLICE: Duration = Duration::from_millis(500);

/// Which part of the topic to read.
#[derive(Debug, Clone, Default)]
pub struct ReadScope {
    /// Only this partition (all when unset).
    pub partition: Option<i32>,
    /// First offset to read in each partition (the log start when unset or earlier).
    pub from_offset: Option<i64>,
    /// Last offset to read in each partition, inclusive (the high watermark when unset).
    pub to_offset: Option<i64>,
    /// Per partition, an offset reading never starts before (a redrive's cursor: what
    /// lies before it was handled by an earlier run).
    pub resume_from: BTreeMap<i32, i64>,
}

/// The offsets a partition is read between, fixed at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    /// First offset to read.
    pub start: i64,
    /// One past the last offset to read.
    pub end: i64,
}

/// Computes the range to read given the watermarks and the scope; empty when start >= end.
pub fn partition_range(low: i64, high: i64, scope: &ReadScope) -> PartitionRange {
    let start = scope.from_offset.map_or(low, |from| from.max(low));
    let end = scope
        .to_offset
        .map_or(high, |to| to.saturating_add(1).min(high));
    PartitionRange { start, end }
}

/// A bounded reader over one DLQ topic.
pub struct DlqReader {
    consumer: StreamConsumer,
    topic: String,
    /// Partitions not finished yet, with their range.
    pending: BTreeMap<i32, PartitionRange>,
    stall_timeout: Duration,
    last_progress: Instant,
}

impl std::fmt::Debug for DlqReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DlqReader")
            .field("topic", &self.topic)
            .field("pending", &self.pending)
            .finish()
    }
}

impl DlqReader {
    /// Checks the topic exists, takes the watermarks of the chosen partitions and
    /// assigns them at their start offsets. `base` carries the bootstrap servers and
    /// user overrides. `stall_timeout` bounds how long a partition may deliver nothing
    /// before its bound is reached.
    pub fn open(
        base: &ClientConfig,
        topic: &str,
        scope: &ReadScope,
        stall_timeout: Duration,
    ) -> Result<Self> {
        let mut config = base.clone();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false");
        // librdkafka needs a group.id to assign partitions, but assign() never joins
        // the group and with auto-commit off nothing is ever committed under it.
        config.set("group.id", READER_GROUP);
        let consumer: StreamConsumer = config
            .create()
            .map_err(DeadLetterError::kafka("create the DLQ reader"))?;
        let brokers = base.get("bootstrap.servers").unwrap_or_default().to_owned();
        let partitions = topic_partitions(&consumer, topic, &brokers)?;
        let chosen: Vec<i32> = match scope.partition {
            Some(partition) if partitions.contains(&partition) => vec![partition],
            Some(partition) => {
                return Err(DeadLetterError::PartitionNotFound {
                    topic: topic.to_owned(),
                    partition,
                    partitions: partitions.len(),
                });
            }
            None => partitions,
        };
        let mut pending = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for partition in chosen {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
                .map_err(DeadLetterError::kafka(format!(
                    "read the offsets of {topic}[{partition}]"
                )))?;
            let mut range = partition_range(low, high, scope);
            if let Some(resume) = scope.resume_from.get(&partition) {
                range.start = range.start.max(*resume);
            }
            if range.start < range.end {
                assignment
                    .add_partition_offset(topic, partition, Offset::Offset(range.start))
                    .map_err(DeadLetterError::kafka("build the assignment"))?;
                pending.insert(partition, range);
            }
        }
        if !pending.is_empty() {
            consumer
                .assign(&assignment)
                .map_err(DeadLetterError::kafka(format!("assign {topic}")))?;
        }
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            pending,
            stall_timeout,
            last_progress: Instant::now(),
        })
    }

    /// The DLQ topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The ranges still to read, by partition.
    pub fn pending(&self) -> &BTreeMap<i32, PartitionRange> {
        &self.pending
    }

    /// The next record inside the bounds, or `None` when every partition reached its end.
    pub async fn next(&mut self) -> Result<Option<DlqRecord>> {
        loop {
            if self.pending.is_empty() {
                return Ok(None);
            }
            match tokio::time::timeout(POLL_SLICE, self.consumer.recv()).await {
                Ok(Ok(message)) => {
                    let record = DlqRecord::from_message(&message);
                    let Some(range) = self.pending.get(&record.partition).copied() else {
                        continue; // a partition already finished; later records are out of bounds
                    };
                    self.last_progress = Instant::now();
                    if record.offset + 1 >= range.end {
                        self.pending.remove(&record.partition);
                    }
                    if record.offset >= range.start && record.offset < range.end {
                        return Ok(Some(record));
                    }
                }
                Ok(Err(err)) => {
                    return Err(DeadLetterError::kafka(format!("read {}", self.topic))(err));
                }
                Err(_elapsed) => self.check_positions()?,
            }
        }
    }

    /// Finishes partitions whose position passed the end without a record at the end
    /// (transaction markers, compacted tail) and fails when nothing moves for too long.
    fn check_positions(&mut self) -> Result<()> {
        let positions = self
            .consumer
            .position()
            .map_err(DeadLetterError::kafka(format!(
                "positions on {}",
                self.topic
            )))?;
        let mut stalled = None;
        self.pending.retain(|partition, range| {
            let position = positions
                .find_partition(&self.topic, *partition)
                .and_then(|elem| match elem.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                })
                .unwrap_or(range.start);
            if position >= range.end {
                return false;
            }
            stalled.get_or_insert((*partition, position, range.end));
            true
        });
        match stalled {
            Some((partition, position, end))
                if self.last_progress.elapsed() > self.stall_timeout =>
            {
                Err(DeadLetterError::ReadStalled {
                    topic: self.topic.clone(),
                    partition,
                    position,
                    end,
                    waited: self.last_progress.elapsed(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// The partitions of `topic`, or [`DeadLetterError::TopicNotFound`].
pub fn topic_partitions<C: Consumer>(consumer: &C, topic: &str, brokers: &str) -> Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(DeadLetterError::kafka(format!(
            "fetch metadata of {topic} from {brokers}"
        )))?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    let not_found = || DeadLetterError::TopicNotFound {
        topic: topic.to_owned(),
        brokers: brokers.to_owned(),
    };
    let Some(found) = found else {
        return Err(not_found());
    };
    match found.error().map(RDKafkaErrorCode::from) {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            return Err(not_found());
        }
        Some(code) => {
            return Err(DeadLetterError::kafka(format!("metadata of {topic}"))(
                rdkafka::error::KafkaError::MetadataFetch(code),
            ));
        }
        None => {}
    }
    if found.partitions().is_empty() {
        return Err(not_found());
    }
    let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    Ok(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clip_the_scope_to_the_watermarks() {
        let all = ReadScope::default();
        assert_eq!(
            partition_range(3, 10, &all),
            PartitionRange { start: 3, end: 10 }
        );
        let scoped = ReadScope {
            partition: None,
            from_offset: Some(5),
            to_offset: Some(7),
            ..ReadScope::default()
        };
        assert_eq!(
            partition_range(0, 10, &scoped),
            PartitionRange { start: 5, end: 8 }
        );
        // The scope beyond the log: clipped to the high watermark taken at start.
        let beyond = ReadScope {
            partition: None,
            from_offset: Some(1),
            to_offset: Some(99),
            ..ReadScope::default()
        };
        assert_eq!(
            partition_range(2, 10, &beyond),
            PartitionRange { start: 2, end: 10 }
        );
        let empty = partition_range(
            0,
            4,
            &ReadScope {
                partition: None,
                from_offset: Some(6),
                to_offset: None,
                ..ReadScope::default()
            },
        );
        assert!(empty.start >= empty.end);
    }
}
