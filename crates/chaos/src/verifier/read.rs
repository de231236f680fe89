//! What the verifier reads: a topic by assignment from its log start to the end offsets
//! taken at start, a group's committed offsets, and the consumer's tables.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sqlx::{PgPool, Row};

use super::model::{AppliedRow, Position, ProjectionRow};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A record as read.
pub struct RawRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// The record's timestamp, ms since the epoch (`None`: the record has none).
    pub timestamp_ms: Option<i64>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl RawRecord {
    /// The last header called `name`, as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_ref())
            .map(|value| String::from_utf8_lossy(value).into_owned())
    }
}

fn client(brokers: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // The order service's relay writes in Kafka transactions: read what a
        // read_committed consumer reads, and learn a partition's end from the end-of-
        // partition event (a commit marker, which no reader gets, may be the last offset).
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("allow.auto.create.topics", "false")
        .create()
        .context("create a Kafka consumer")
}

fn partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .with_context(|| format!("metadata of {topic}"))?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
        .ok_or_else(|| anyhow!("topic {topic} not found"))?;
    Ok(found.partitions().iter().map(|p| p.id()).collect())
}

/// Every record of `topic` from the log start to the end offsets taken now (blocking).
pub fn read_topic(brokers: &str, topic: &str, stall: Duration) -> anyhow::Result<Vec<RawRecord>> {
    let consumer = client(brokers, "orderflow-chaos-verifier")?;
    let mut pending: BTreeMap<i32, i64> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions(&consumer, topic)? {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .with_context(|| format!("offsets of {topic}[{partition}]"))?;
        if low < high {
            assignment.add_partition_offset(topic, partition, Offset::Offset(low))?;
            pending.insert(partition, high);
        }
    }
    let mut records = Vec::new();
    if pending.is_empty() {
        return Ok(records);
    }
    consumer.assign(&assignment)?;
    let mut progress = Instant::now();
    while !pending.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                progress = Instant::now();
                let partition = message.partition();
                let Some(&end) = pending.get(&partition) else {
                    continue;
                };
                if message.offset() < end {
                    let headers = message
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default();
                    records.push(RawRecord {
                        partition,
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        value: message.payload().map(<[u8]>::to_vec),
                        timestamp_ms: message.timestamp().to_millis(),
                        headers,
                    });
                }
                if message.offset() + 1 >= end {
                    pending.remove(&partition);
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                progress = Instant::now();
                pending.remove(&partition);
            }
            Some(Err(error)) => bail!("reading {topic}: {error}"),
            None if progress.elapsed() > stall => {
                bail!("reading {topic}: partitions {pending:?} stalled before their end offsets")
            }
            None => {}
        }
    }
    Ok(records)
}

/// Per partition of `topic`: the offset `group` committed and the log end (blocking).
pub fn committed_offsets(
    brokers: &str,
    topic: &str,
    group: &str,
) -> anyhow::Result<BTreeMap<i32, (Option<i64>, i64)>> {
    let consumer = client(brokers, group)?;
    let mut list = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in partitions(&consumer, topic)? {
        let (_, high) = consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT)?;
        ends.insert(partition, high);
        list.add_partition(topic, partition);
    }
    let committed = consumer
        .committed_offsets(list, REQUEST_TIMEOUT)
        .with_context(|| format!("committed offsets of group {group}"))?;
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

/// The group's `processed_events` rows for `topic`.
pub async fn applied(pool: &PgPool, group: &str, topic: &str) -> anyhow::Result<Vec<AppliedRow>> {
    let rows = sqlx::query(
        r#"SELECT event_id, "partition", "offset" FROM processed_events
           WHERE consumer_group = $1 AND topic = $2"#,
    )
    .bind(group)
    .bind(topic)
    .fetch_all(pool)
    .await
    .context("read processed_events")?;
    rows.into_iter()
        .map(|row| {
            let position: Position = (row.try_get("partition")?, row.try_get("offset")?);
            Ok(AppliedRow {
                event_id: row.try_get("event_id")?,
                position,
            })
        })
        .collect()
}

/// Every `orders` row.
pub async fn projection(pool: &PgPool) -> anyhow::Result<HashMap<String, ProjectionRow>> {
    let rows = sqlx::query(
        "SELECT order_id, status, customer_id, currency, total_cents, item_count,
                events_applied, last_event_id FROM orders",
    )
    .fetch_all(pool)
    .await
    .context("read orders")?;
    rows.into_iter()
        .map(|row| {
            Ok((
                row.try_get("order_id")?,
                ProjectionRow {
                    status: row.try_get("status")?,
                    customer_id: row.try_get("customer_id")?,
                    currency: row.try_get("currency")?,
                    total_cents: row.try_get("total_cents")?,
                    item_count: i64::from(row.try_get::<i32, _>("item_count")?),
                    events_applied: i64::from(row.try_get::<i32, _>("events_applied")?),
                    last_event_id: row.try_get("last_event_id")?,
                },
            ))
        })
        .collect()
}
