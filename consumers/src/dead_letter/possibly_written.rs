//! Dead-letter writes that failed but may have been persisted. A write whose ack
//! does not come within the delivery timeout is reported as failed, yet the broker
//! may have appended it (the idempotent producer calls it "possibly persisted").
//! Before such a record is written again, the dead-letter partition is read from
//! the time of the first attempt for a record naming the same source position and
//! group: found, it is not written a second time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::headers;

/// How far before an attempt the search starts: the record's timestamp is taken
/// when it is produced, after the attempt started, on the same clock; this only
/// absorbs a log-append-time topic on a broker whose clock lags a little.
const CLOCK_SLACK_MS: i64 = 5_000;

/// How long one search may take before it counts as failed (tried again later).
const SEARCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Source positions whose dead-letter write failed in a way that may have
/// persisted it, with when the first such attempt started.
pub(crate) struct PossiblyWritten {
    since: Mutex<HashMap<(String, i32, i64), i64>>,
    reader: Arc<Mutex<BaseConsumer>>,
}

impl std::fmt::Debug for PossiblyWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PossiblyWritten").finish_non_exhaustive()
    }
}

fn position(record: &OwnedMessage) -> (String, i32, i64) {
    (
        record.topic().to_owned(),
        record.partition(),
        record.offset(),
    )
}

impl PossiblyWritten {
    /// Searches through a reader built from `base` (it joins no group: it only
    /// reads assigned partitions).
    pub(crate) fn new(base: &ClientConfig, group: &str) -> KafkaResult<Self> {
        let mut config = base.clone();
        config
            .set("group.id", format!("{group}-dlq-lookup"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false");
        Ok(Self {
            since: Mutex::new(HashMap::new()),
            reader: Arc::new(Mutex::new(config.create()?)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32, i64), i64>> {
        self.since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// When the first attempt that may have written `record` started (ms since
    /// the epoch), if one did.
    pub(crate) fn since(&self, record: &OwnedMessage) -> Option<i64> {
        self.lock().get(&position(record)).copied()
    }

    /// An attempt started at `started_ms` failed and may have written `record`.
    pub(crate) fn remember(&self, record: &OwnedMessage, started_ms: i64) {
        let mut since = self.lock();
        let entry = since.entry(position(record)).or_insert(started_ms);
        *entry = (*entry).min(started_ms);
    }

    /// `record` is settled (written, or found written).
    pub(crate) fn forget(&self, record: &OwnedMessage) {
        self.lock().remove(&position(record));
    }

    /// Whether partition `record.partition()` of `dlq_topic` holds, from `since_ms`
    /// on, a record that `group` dead-lettered from `record`'s position.
    pub(crate) async fn find(
        &self,
        dlq_topic: &str,
        group: &str,
        record: &OwnedMessage,
        since_ms: i64,
    ) -> KafkaResult<bool> {
        let reader = Arc::clone(&self.reader);
        let (dlq_topic, group) = (dlq_topic.to_owned(), group.to_owned());
        let (topic, partition, offset) = position(record);
        tokio::task::spawn_blocking(move || {
            let reader = reader
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let wanted = [
                (headers::SOURCE_TOPIC, topic),
                (headers::SOURCE_PARTITION, partition.to_string()),
                (headers::SOURCE_OFFSET, offset.to_string()),
                (headers::CONSUMER_GROUP, group),
            ];
            search(
                &reader,
                &dlq_topic,
                partition,
                since_ms - CLOCK_SLACK_MS,
                &wanted,
            )
        })
        .await
        .map_err(|_| KafkaError::Canceled)?
    }
}

/// Reads `partition` of `topic` backwards in growing windows from its end, until a
/// window starts before `from_ms` (or at the log start), for a record carrying
/// every `wanted` header value. (Windows rather than a lookup by time: the search
/// must work on every broker, librdkafka's mock cluster included.)
fn search(
    reader: &BaseConsumer,
    topic: &str,
    partition: i32,
    from_ms: i64,
    wanted: &[(&str, String)],
) -> KafkaResult<bool> {
    let (low, high) = reader.fetch_watermarks(topic, partition, SEARCH_TIMEOUT)?;
    let mut window = 64;
    loop {
        let start = (high - window).max(low);
        if start >= high {
            return Ok(false);
        }
        let (found, first_timestamp) = scan(reader, topic, partition, start, high, wanted)?;
        if found {
            return Ok(true);
        }
        if start == low || first_timestamp.is_some_and(|ts| ts < from_ms) {
            return Ok(false);
        }
        window *= 4;
    }
}

/// Reads `[start, high)` of the partition: whether a record carries every `wanted`
/// header value, and the timestamp of the first record read.
fn scan(
    reader: &BaseConsumer,
    topic: &str,
    partition: i32,
    start: i64,
    high: i64,
    wanted: &[(&str, String)],
) -> KafkaResult<(bool, Option<i64>)> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
    reader.assign(&tpl)?;
    let deadline = Instant::now() + SEARCH_TIMEOUT;
    let mut first_timestamp = None;
    let result = loop {
        if Instant::now() >= deadline {
            break Err(KafkaError::MessageConsumption(
                RDKafkaErrorCode::OperationTimedOut,
            ));
        }
        let message = match reader.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(error)) => break Err(error),
            Some(Ok(message)) => message,
        };
        first_timestamp = first_timestamp.or(message.timestamp().to_millis());
        if carries(&message, wanted) {
            break Ok(true);
        }
        if message.offset() + 1 >= high {
            break Ok(false);
        }
    };
    reader.unassign()?;
    result.map(|found| (found, first_timestamp))
}

fn carries<M: Message>(message: &M, wanted: &[(&str, String)]) -> bool {
    let Some(headers) = message.headers() else {
        return false;
    };
    wanted.iter().all(|(name, value)| {
        headers
            .iter()
            .any(|h| h.key == *name && h.value == Some(value.as_bytes()))
    })
}
