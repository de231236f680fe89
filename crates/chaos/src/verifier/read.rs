//! What the verifier reads: a topic by assignment from its log start to the end offsets
//! taken at start (the shared bounded reader), a group's committed offsets, and the
//! consumer's tables.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::Context;
use orderflow_runtime::bounded_read::{BoundedReader, ReadScope, committed_and_end_offsets};
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{ClientConfig, Message};
use sqlx::{PgPool, Row};

use super::commit_order::Committed;
use super::model::{AppliedRow, Position, ProjectionRow};

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

/// Group id of the topic reader; it assigns partitions and never joins or commits.
const READER_GROUP: &str = "orderflow-chaos-verifier";

fn base_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    // The order service's relay writes in Kafka transactions: read what a
    // read_committed consumer reads (librdkafka's default, stated). The bounded reader
    // finishes a partition whose last offset is a commit marker by its position.
    config
        .set("bootstrap.servers", brokers)
        .set("isolation.level", "read_committed");
    config
}

/// What the verifier keeps of a record: everything, as owned bytes.
fn raw(message: &BorrowedMessage<'_>) -> RawRecord {
    let headers = message
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    RawRecord {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        timestamp_ms: message.timestamp().to_millis(),
        headers,
    }
}

/// Every record of `topic` from the log start to the end offsets taken now.
pub async fn read_topic(
    brokers: &str,
    topic: &str,
    stall: Duration,
) -> anyhow::Result<Vec<RawRecord>> {
    let reader = BoundedReader::open(
        &base_config(brokers),
        READER_GROUP,
        topic,
        &ReadScope::default(),
        stall,
        raw,
    )
    .with_context(|| format!("open a reader of {topic}"))?;
    reader
        .collect()
        .await
        .with_context(|| format!("read {topic}"))
}

/// Per partition of `topic`: the offset `group` committed and the log end (blocking).
pub fn committed_offsets(
    brokers: &str,
    topic: &str,
    group: &str,
) -> anyhow::Result<BTreeMap<i32, (Option<i64>, i64)>> {
    committed_and_end_offsets(&base_config(brokers), topic, group)
        .with_context(|| format!("committed offsets of group {group} on {topic}"))
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

/// The events the order service committed, in outbox id order (nothing when the
/// database holds no order service): every row but those an operator skipped or a
/// parked row, which are not published.
pub async fn committed_events(pool: &PgPool) -> anyhow::Result<Vec<Committed>> {
    let present: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('order_service.outbox')::text")
            .fetch_one(pool)
            .await
            .context("look for the order service's outbox")?;
    if present.is_none() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT order_id, event_id::text AS event_id FROM order_service.outbox
         WHERE state NOT IN ('skipped', 'parked') ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .context("read the order service's outbox")?;
    rows.into_iter()
        .map(|row| {
            Ok(Committed {
                order_id: row.try_get("order_id")?,
                event_id: row.try_get("event_id")?,
            })
        })
        .collect()
}
