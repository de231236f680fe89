//! Reads a DLQ topic from the beginning (or `--from-offset`) up to the high watermarks
//! taken at start: the shared bounded reader
//! ([`orderflow_runtime::bounded_read`]) yielding [`DlqRecord`]s.

use std::collections::BTreeMap;
use std::time::Duration;

use orderflow_runtime::bounded_read::{self, BoundedReader};
pub use orderflow_runtime::bounded_read::{PartitionRange, ReadScope, partition_range};
use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::message::BorrowedMessage;

use super::error::Result;
use super::record::DlqRecord;

/// Group id the reader names without joining or committing (librdkafka requires one).
pub const READER_GROUP: &str = "orderflow-dlq-reader";

/// A bounded reader over one DLQ topic.
#[derive(Debug)]
pub struct DlqReader {
    inner: BoundedReader<DlqRecord>,
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
        let convert = |message: &BorrowedMessage<'_>| DlqRecord::from_message(message);
        let inner = BoundedReader::open(base, READER_GROUP, topic, scope, stall_timeout, convert)?;
        Ok(Self { inner })
    }

    /// The DLQ topic read.
    pub fn topic(&self) -> &str {
        self.inner.topic()
    }

    /// The ranges still to read, by partition.
    pub fn pending(&self) -> &BTreeMap<i32, PartitionRange> {
        self.inner.pending()
    }

    /// The next record inside the bounds, or `None` when every partition reached its end.
    pub async fn next(&mut self) -> Result<Option<DlqRecord>> {
        Ok(self.inner.next().await?)
    }
}

/// The partitions of `topic`, or [`BoundedReadError::TopicNotFound`](bounded_read::BoundedReadError::TopicNotFound).
pub fn topic_partitions<C: Consumer>(consumer: &C, topic: &str, brokers: &str) -> Result<Vec<i32>> {
    Ok(bounded_read::topic_partitions(consumer, topic, brokers)?)
}
