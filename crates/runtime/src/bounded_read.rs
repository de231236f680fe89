//! Reads the partitions of a topic up to the end offsets taken when it starts, by
//! partition assignment: no consumer group is joined and nothing is committed, and
//! records written while it runs are not read, so a read always ends. The DLQ list and
//! redrive, the verifier and the dashboard's DLQ panel all read this way; what they
//! keep of each record is theirs (the reader is generic over what it yields).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// Timeout of each metadata and watermark request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a record before checking positions again.
const POLL_SLICE: Duration = Duration::from_millis(500);

/// Why a bounded read stopped.
#[derive(Debug, thiserror::Error)]
pub enum BoundedReadError {
    /// A Kafka client call failed; `context` says which.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done (`fetch metadata of orders.dlq`, ...).
        context: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// The topic does not exist on the cluster.
    #[error("topic {topic} does not exist on {brokers}")]
    TopicNotFound {
        /// The topic asked for.
        topic: String,
        /// The bootstrap address asked.
        brokers: String,
    },
    /// The scope names a partition the topic does not have.
    #[error("topic {topic} has no partition {partition} (it has {partitions})")]
    PartitionNotFound {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: usize,
    },
    /// A partition stopped delivering records before reaching the bound taken at start.
    #[error(
        "reading {topic}[{partition}] stalled at offset {position} (bound {end}) for {waited:?}"
    )]
    Stalled {
        /// The topic being read.
        topic: String,
        /// The partition that stalled.
        partition: i32,
        /// The next offset the reader expected.
        position: i64,
        /// The end bound (exclusive) fixed at start.
        end: i64,
        /// How long nothing arrived.
        waited: Duration,
    },
}

impl BoundedReadError {
    /// Whether reading again later can succeed without a change by the operator.
    pub fn is_retryable(&self) -> bool {
        match self {
            BoundedReadError::Stalled { .. } => true,
            BoundedReadError::Kafka { source, .. } => !matches!(
                source,
                KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)
            ),
            BoundedReadError::TopicNotFound { .. } | BoundedReadError::PartitionNotFound { .. } => {
                false
            }
        }
    }

    fn kafka(context: impl Into<String>) -> impl FnOnce(KafkaError) -> Self {
        let context = context.into();
        move |source| BoundedReadError::Kafka { context, source }
    }
}

/// Result alias of bounded reads.
pub type ReadResult<T> = std::result::Result<T, BoundedReadError>;

/// Which part of the topic to read; every bound is clipped to the watermarks taken at start.
#[derive(Debug, Clone, Default)]
pub struct ReadScope {
    /// Only this partition (all when unset).
    pub partition: Option<i32>,
    /// First offset to read in each partition (the log start when unset or earlier).
    pub from_offset: Option<i64>,
    /// Last offset to read in each partition, inclusive (the high watermark when unset).
    pub to_offset: Option<i64>,
    /// At most this many offsets at the end of each partition (the newest records).
    pub newest: Option<i64>,
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

/// The range to read given the watermarks and the scope; empty when start >= end.
pub fn partition_range(low: i64, high: i64, scope: &ReadScope) -> PartitionRange {
    let mut start = scope.from_offset.map_or(low, |from| from.max(low));
    if let Some(newest) = scope.newest {
        start = start.max(high.saturating_sub(newest));
    }
    let end = scope
        .to_offset
        .map_or(high, |to| to.saturating_add(1).min(high));
    PartitionRange { start, end }
}

/// A read of one topic bounded by the end offsets taken at start, yielding what
/// `convert` makes of each record.
pub struct BoundedReader<T> {
    consumer: StreamConsumer,
    topic: String,
    /// Partitions not finished yet, with their range.
    pending: BTreeMap<i32, PartitionRange>,
    stall_timeout: Duration,
    last_progress: Instant,
    convert: fn(&BorrowedMessage<'_>) -> T,
}

impl<T> std::fmt::Debug for BoundedReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedReader")
            .field("topic", &self.topic)
            .field("pending", &self.pending)
            .finish()
    }
}

impl<T> BoundedReader<T> {
    /// Checks the topic exists, takes the watermarks of the chosen partitions and
    /// assigns them at their start offsets. `base` carries the bootstrap servers and
    /// user overrides; `group` is the group id librdkafka needs to assign partitions
    /// (never joined, nothing committed under it). `stall_timeout` bounds how long a
    /// partition may deliver nothing before its bound is reached.
    pub fn open(
        base: &ClientConfig,
        group: &str,
        topic: &str,
        scope: &ReadScope,
        stall_timeout: Duration,
        convert: fn(&BorrowedMessage<'_>) -> T,
    ) -> ReadResult<Self> {
        let mut config = base.clone();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("allow.auto.create.topics", "false")
            .set("group.id", group);
        let consumer: StreamConsumer = config.create().map_err(BoundedReadError::kafka(
            format!("create a reader of {topic}"),
        ))?;
        let brokers = base.get("bootstrap.servers").unwrap_or_default().to_owned();
        let partitions = topic_partitions(&consumer, topic, &brokers)?;
        let chosen: Vec<i32> = match scope.partition {
            Some(partition) if partitions.contains(&partition) => vec![partition],
            Some(partition) => {
                return Err(BoundedReadError::PartitionNotFound {
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
                .map_err(BoundedReadError::kafka(format!(
                    "read the offsets of {topic}[{partition}]"
                )))?;
            let mut range = partition_range(low, high, scope);
            if let Some(resume) = scope.resume_from.get(&partition) {
                range.start = range.start.max(*resume);
            }
            if range.start < range.end {
                assignment
                    .add_partition_offset(topic, partition, Offset::Offset(range.start))
                    .map_err(BoundedReadError::kafka("build the assignment"))?;
                pending.insert(partition, range);
            }
        }
        if !pending.is_empty() {
            consumer
                .assign(&assignment)
                .map_err(BoundedReadError::kafka(format!("assign {topic}")))?;
        }
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            pending,
            stall_timeout,
            last_progress: Instant::now(),
            convert,
        })
    }

    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The ranges still to read, by partition.
    pub fn pending(&self) -> &BTreeMap<i32, PartitionRange> {
        &self.pending
    }

    /// Whether every partition reached its end.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next record inside the bounds, or `None` when every partition reached its end.
    pub async fn next(&mut self) -> ReadResult<Option<T>> {
        loop {
            if self.pending.is_empty() {
                return Ok(None);
            }
            match tokio::time::timeout(POLL_SLICE, self.consumer.recv()).await {
                Ok(Ok(message)) => {
                    let (partition, offset) = (message.partition(), message.offset());
                    let Some(range) = self.pending.get(&partition).copied() else {
                        continue; // a partition already finished; later records are out of bounds
                    };
                    self.last_progress = Instant::now();
                    if offset + 1 >= range.end {
                        self.pending.remove(&partition);
                    }
                    if offset >= range.start && offset < range.end {
                        return Ok(Some((self.convert)(&message)));
                    }
                }
                Ok(Err(err)) => {
                    return Err(BoundedReadError::kafka(format!("read {}", self.topic))(err));
                }
                Err(_elapsed) => self.check_positions()?,
            }
        }
    }

    /// Every record inside the bounds.
    pub async fn collect(mut self) -> ReadResult<Vec<T>> {
        let mut records = Vec::new();
        while let Some(record) = self.next().await? {
            records.push(record);
        }
        Ok(records)
    }

    /// Finishes partitions whose position passed the end without a record at the end
    /// (transaction markers, compacted tail) and fails when nothing moves for too long.
    fn check_positions(&mut self) -> ReadResult<()> {
        let positions = self
            .consumer
            .position()
            .map_err(BoundedReadError::kafka(format!(
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
                Err(BoundedReadError::Stalled {
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

/// The partitions of `topic`, sorted, or [`BoundedReadError::TopicNotFound`].
pub fn topic_partitions<C: Consumer>(
    consumer: &C,
    topic: &str,
    brokers: &str,
) -> ReadResult<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(BoundedReadError::kafka(format!(
            "fetch metadata of {topic} from {brokers}"
        )))?;
    let not_found = || BoundedReadError::TopicNotFound {
        topic: topic.to_owned(),
        brokers: brokers.to_owned(),
    };
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Err(not_found());
    };
    match found.error().map(RDKafkaErrorCode::from) {
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            return Err(not_found());
        }
        Some(code) => {
            return Err(BoundedReadError::kafka(format!("metadata of {topic}"))(
                KafkaError::MetadataFetch(code),
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

/// Per partition of `topic`: the offset `group` committed (`None` when it has none) and
/// the log end taken now. The verifiers read the topic up to the same kind of bound, so
/// "committed to the end" is judged against what they read.
pub fn committed_and_end_offsets(
    base: &ClientConfig,
    topic: &str,
    group: &str,
) -> ReadResult<BTreeMap<i32, (Option<i64>, i64)>> {
    let mut config = base.clone();
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().map_err(BoundedReadError::kafka(format!(
        "create a client of group {group}"
    )))?;
    let brokers = base.get("bootstrap.servers").unwrap_or_default();
    let mut list = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in topic_partitions(&consumer, topic, brokers)? {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .map_err(BoundedReadError::kafka(format!(
                "read the offsets of {topic}[{partition}]"
            )))?;
        ends.insert(partition, high);
        list.add_partition(topic, partition);
    }
    let committed =
        consumer
            .committed_offsets(list, REQUEST_TIMEOUT)
            .map_err(BoundedReadError::kafka(format!(
                "committed offsets of group {group}"
            )))?;
    Ok(ends
        .into_iter()
        .map(|(partition, end)| {
            let at = committed
                .find_partition(topic, partition)
                .and_then(|p| match p.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                });
            (partition, (at, end))
        })
        .collect())
}

/// Moves a partition's end back to its last record read where the group committed
/// exactly there. A transactional writer (the order service's relay) ends each
/// transaction with a control record that no reader is given, so a group that processed
/// a partition's last record commits that record + 1, short of the log end, and has
/// still read everything. `records` are the (partition, offset) pairs a read_committed
/// reader got, up to the same end.
pub fn settle_ends_behind_markers(
    offsets: &mut BTreeMap<i32, (Option<i64>, i64)>,
    records: impl IntoIterator<Item = (i32, i64)>,
) {
    let mut data_ends: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition, offset) in records {
        let end = data_ends.entry(partition).or_insert(offset + 1);
        *end = (*end).max(offset + 1);
    }
    for (partition, (committed, end)) in offsets.iter_mut() {
        if let (Some(committed), Some(&data_end)) = (*committed, data_ends.get(partition))
            && committed == data_end
            && data_end < *end
        {
            *end = data_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_committed_at_its_last_record_is_at_the_end_behind_markers() {
        // Partition 0: last record 9, committed 10, end 12 (two markers): at the end.
        // Partition 1: last record 9, committed 8: behind, the end stays.
        // Partition 2: nothing read, nothing committed: the end stays.
        let mut offsets = BTreeMap::from([(0, (Some(10), 12)), (1, (Some(8), 11)), (2, (None, 3))]);
        settle_ends_behind_markers(&mut offsets, [(0, 3), (0, 9), (1, 9)]);
        assert_eq!(
            offsets,
            BTreeMap::from([(0, (Some(10), 10)), (1, (Some(8), 11)), (2, (None, 3))])
        );
    }

    #[test]
    fn ranges_clip_the_scope_to_the_watermarks() {
        let all = ReadScope::default();
        assert_eq!(
            partition_range(3, 10, &all),
            PartitionRange { start: 3, end: 10 }
        );
        let scoped = ReadScope {
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
                from_offset: Some(6),
                ..ReadScope::default()
            },
        );
        assert!(empty.start >= empty.end);
        let newest = ReadScope {
            newest: Some(3),
            ..ReadScope::default()
        };
        assert_eq!(
            partition_range(2, 10, &newest),
            PartitionRange { start: 7, end: 10 }
        );
        assert_eq!(
            partition_range(2, 4, &newest),
            PartitionRange { start: 2, end: 4 }
        );
    }
}
