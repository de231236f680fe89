//! Log start, high watermark and last stable offset of many partitions, batched: one
//! ListOffsets per broker and kind, through `offsets_for_times` with the special
//! timestamps -2 (earliest) and -1 (latest), instead of two requests per partition.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::error::{LagError, Result};
use crate::model::LogOffsets;

/// Key of a partition.
pub type TopicPartition = (String, i32);

/// Batched reader of log offsets; cheap to clone.
#[derive(Clone)]
pub struct LogOffsetReader {
    uncommitted: Arc<BaseConsumer>,
    committed: Arc<BaseConsumer>,
}

impl LogOffsetReader {
    /// Builds the two clients (read_uncommitted for log start and high watermark,
    /// read_committed for the last stable offset).
    pub fn new(base: &ClientConfig) -> Result<Self> {
        Ok(Self {
            uncommitted: Arc::new(super::plain_consumer(base, "read_uncommitted")?),
            committed: Arc::new(super::plain_consumer(base, "read_committed")?),
        })
    }

    /// The read_uncommitted client, reused for metadata and group lists.
    pub(crate) fn client(&self) -> Arc<BaseConsumer> {
        self.uncommitted.clone()
    }

    /// Reads the offsets of `partitions`. The three lists are requested concurrently.
    /// Partitions the broker answered with an error are left out of the map.
    pub async fn read(
        &self,
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> Result<HashMap<TopicPartition, LogOffsets>> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let start = list_offsets(
            self.uncommitted.clone(),
            partitions,
            Offset::Beginning,
            timeout,
        );
        let end = list_offsets(self.uncommitted.clone(), partitions, Offset::End, timeout);
        let stable = list_offsets(self.committed.clone(), partitions, Offset::End, timeout);
        let (start, end, stable) = tokio::try_join!(start, end, stable)?;
        let mut out = HashMap::with_capacity(end.len());
        for (tp, high_watermark) in end {
            // Unanswered stays unknown: 0 would count the whole log as lag.
            let log_start = start.get(&tp).map(|&s| s.min(high_watermark));
            // A broker that cannot say gives the high watermark (no open transaction).
            let last_stable = stable.get(&tp).copied().unwrap_or(high_watermark);
            out.insert(
                tp,
                LogOffsets {
                    log_start,
                    high_watermark,
                    last_stable,
                },
            );
        }
        Ok(out)
    }
}

async fn list_offsets(
    consumer: Arc<BaseConsumer>,
    partitions: &[TopicPartition],
    which: Offset,
    timeout: Duration,
) -> Result<HashMap<TopicPartition, i64>> {
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for (topic, partition) in partitions {
        tpl.add_partition_offset(topic, *partition, which)
            .map_err(|e| LagError::kafka("building offset request", e))?;
    }
    let what = match which {
        Offset::Beginning => "ListOffsets(earliest)",
        _ => "ListOffsets(latest)",
    };
    let answered = tokio::task::spawn_blocking(move || consumer.offsets_for_times(tpl, timeout))
        .await
        .map_err(|e| LagError::Task(e.to_string()))?
        .map_err(|e| LagError::kafka(what, e))?;
    Ok(answered
        .elements()
        .iter()
        .filter(|e| e.error().is_ok())
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(((e.topic().to_owned(), e.partition()), o)),
            _ => None,
        })
        .collect())
}
