//! The newest records of a dead-letter topic with their error category, for the
//! dashboard's DLQ panel. Bounded: at most a given number of records per partition,
//! read up to the end offsets taken at start within a time budget.

use std::collections::BTreeMap;
use std::time::Duration;

use orderflow_contracts::dead_letter::DeadLetterHeaders;
use orderflow_runtime::bounded_read::{BoundedReadError, BoundedReader, ReadScope};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message};
use serde::Serialize;

use crate::error::{LagError, Result};

/// Group id the reader names without joining or committing (librdkafka requires one).
const READER_GROUP: &str = "orderflow-lag-dlq-reader";

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
/// giving up after `budget`. Blocking: call it from a blocking task of a tokio runtime.
pub fn read_newest(
    base: &ClientConfig,
    topic: &str,
    per_partition: i64,
    budget: Duration,
) -> Result<DlqRecords> {
    let scope = ReadScope {
        newest: Some(per_partition),
        ..ReadScope::default()
    };
    let mut reader = match BoundedReader::open(base, READER_GROUP, topic, &scope, budget, entry) {
        Ok(reader) => Some(reader),
        // A topic nobody dead-lettered to yet has no records to show.
        Err(BoundedReadError::TopicNotFound { .. }) => None,
        Err(error) => return Err(read_error(error)),
    };
    let mut records = Vec::new();
    let mut complete = true;
    if let Some(reader) = reader.as_mut() {
        let deadline = tokio::time::Instant::now() + budget;
        tokio::runtime::Handle::current().block_on(async {
            loop {
                match tokio::time::timeout_at(deadline, reader.next()).await {
                    Ok(Ok(Some(record))) => records.push(record),
                    Ok(Ok(None)) => return Ok(()),
                    // The budget ran out: show what was read.
                    Err(_) | Ok(Err(BoundedReadError::Stalled { .. })) => {
                        complete = false;
                        return Ok(());
                    }
                    Ok(Err(error)) => return Err(read_error(error)),
                }
            }
        })?;
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
        complete,
        records,
    })
}

fn read_error(error: BoundedReadError) -> LagError {
    match error {
        BoundedReadError::Kafka { context, source } => LagError::kafka(context, source),
        other => crate::error::protocol("reading the DLQ topic", other),
    }
}

fn entry(message: &BorrowedMessage<'_>) -> DlqEntry {
    let headers = message
        .headers()
        .map(DeadLetterHeaders::from_kafka)
        .unwrap_or_default();
    DlqEntry {
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        category: headers.category.unwrap_or_else(|| NO_CATEGORY.to_owned()),
        error: headers.message,
        source_topic: headers.source_topic,
        source_partition: headers.source_partition,
        source_offset: headers.source_offset,
        consumer_group: headers.consumer_group,
        attempts: headers.attempts,
    }
}
