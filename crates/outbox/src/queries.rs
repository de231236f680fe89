//! The `outbox` table: rows written in the same transaction as the order change, read
//! and marked by the relay. The SQL lives in `crates/outbox/sql/`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

const INSERT_OUTBOX: &str = include_str!("../sql/insert_outbox.sql");
const CLAIM_SLOT_BATCH: &str = include_str!("../sql/claim_slot_batch.sql");
const MARK_OUTBOX_SENT: &str = include_str!("../sql/mark_outbox_sent.sql");
const LOCK_ORDERS: &str = include_str!("../sql/lock_orders.sql");
const PROMOTE_WAITING_OUTBOX: &str = include_str!("../sql/promote_waiting_outbox.sql");
const MARK_OUTBOX_FAILED: &str = include_str!("../sql/mark_outbox_failed.sql");
const PARK_OUTBOX_ROW: &str = include_str!("../sql/park_outbox_row.sql");
const COUNT_OUTBOX_UNSENT: &str = include_str!("../sql/count_outbox_unsent.sql");
const DELETE_SENT_OUTBOX: &str = include_str!("../sql/delete_sent_outbox.sql");
const LIST_OUTBOX: &str = include_str!("../sql/list_outbox.sql");
const RETRY_PARKED_OUTBOX: &str = include_str!("../sql/retry_parked_outbox.sql");
const PARKED_ORDERS: &str = include_str!("../sql/parked_orders.sql");
const SKIP_PARKED_OUTBOX: &str = include_str!("../sql/skip_parked_outbox.sql");
const DISCARD_PARKED_OUTBOX: &str = include_str!("../sql/discard_parked_outbox.sql");
const SWEEP_STRANDED_OUTBOX: &str = include_str!("../sql/sweep_stranded_outbox.sql");
const SWEEP_SLOT_OUTBOX: &str = include_str!("../sql/sweep_slot_outbox.sql");

/// Every statement this crate runs on the outbox, by the name of its file in `sql/`:
/// a test plans each against a table with a long history and refuses a full scan.
pub const STATEMENTS: &[(&str, &str)] = &[
    ("insert_outbox", INSERT_OUTBOX),
    ("claim_slot_batch", CLAIM_SLOT_BATCH),
    ("mark_outbox_sent", MARK_OUTBOX_SENT),
    ("lock_orders", LOCK_ORDERS),
    ("promote_waiting_outbox", PROMOTE_WAITING_OUTBOX),
    ("mark_outbox_failed", MARK_OUTBOX_FAILED),
    ("park_outbox_row", PARK_OUTBOX_ROW),
    ("count_outbox_unsent", COUNT_OUTBOX_UNSENT),
    ("delete_sent_outbox", DELETE_SENT_OUTBOX),
    ("list_outbox", LIST_OUTBOX),
    ("retry_parked_outbox", RETRY_PARKED_OUTBOX),
    ("parked_orders", PARKED_ORDERS),
    ("skip_parked_outbox", SKIP_PARKED_OUTBOX),
    ("discard_parked_outbox", DISCARD_PARKED_OUTBOX),
    ("sweep_stranded_outbox", SWEEP_STRANDED_OUTBOX),
    ("sweep_slot_outbox", SWEEP_SLOT_OUTBOX),
];

/// How many slots the outbox's rows are spread over (`migrations/0009`): a row's slot
/// is Kafka's murmur2 of its order id, made positive, modulo this. Each slot is
/// published by one relay at a time, so this is also the most relays that share work.
pub const SLOTS: i16 = 64;

/// An event to append to the outbox.
#[derive(Debug, Clone)]
pub struct NewOutboxRow<'a> {
    /// Record key: the order id.
    pub order_id: &'a str,
    /// The event's id (unique).
    pub event_id: Uuid,
    /// `OrderCreated`, `OrderPaid`, ...: the `event-type` header.
    pub event_type: &'a str,
    /// W3C `traceparent` header value.
    pub traceparent: &'a str,
    /// W3C `tracestate` header value, when the trace carries one.
    pub tracestate: Option<&'a str>,
    /// The record value: Confluent-framed Avro.
    pub payload: &'a [u8],
}

/// An unsent outbox row claimed by the relay.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    /// Position in the outbox; publishing follows it.
    pub id: i64,
    /// Record key.
    pub order_id: String,
    /// The event's id.
    pub event_id: Uuid,
    /// The `event-type` header.
    pub event_type: String,
    /// The `traceparent` header: the trace context of the request that wrote the row.
    pub traceparent: String,
    /// The `tracestate` header that goes with it, if any.
    pub tracestate: Option<String>,
    /// The record value.
    pub payload: Vec<u8>,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// When the row was written (its transaction's start, PostgreSQL's clock).
    pub created_at: DateTime<Utc>,
}

/// Appends `row` inside `tx`, the transaction that changes the order.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    row: &NewOutboxRow<'_>,
) -> sqlx::Result<()> {
    sqlx::query(INSERT_OUTBOX)
        .bind(row.order_id)
        .bind(row.event_id)
        .bind(row.event_type)
        .bind(row.traceparent)
        .bind(row.payload)
        .bind(row.tracestate)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The next rows of `slot` to publish, up to `limit`, in id order: its unsent rows
/// except `unrecorded` (published, their record still to be written) and the rows
/// parked or waiting behind a parked row of their order. Only the slot's owner may
/// publish what this returns.
pub async fn claim_slot(
    pool: &PgPool,
    slot: i16,
    unrecorded: &[i64],
    limit: u32,
) -> sqlx::Result<Vec<OutboxRow>> {
    sqlx::query_as(CLAIM_SLOT_BATCH)
        .bind(slot)
        .bind(unrecorded)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
}

/// Marks the rows `ids` sent: the Kafka transaction that published them committed.
/// A row already marked keeps its first `sent_at`.
pub async fn mark_sent(pool: &PgPool, ids: &[i64]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(MARK_OUTBOX_SENT)
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records a failed attempt on a row that stays pending; it is tried again after `retry_in`.
pub async fn mark_failed(
    pool: &PgPool,
    id: i64,
    error: &str,
    retry_in: Duration,
) -> sqlx::Result<()> {
    sqlx::query(MARK_OUTBOX_FAILED)
        .bind(id)
        .bind(error)
        .bind(retry_in.as_secs_f64())
        .execute(pool)
        .await?;
    Ok(())
}

/// Parks a row whose last attempt failed permanently: it is not tried again, and its
/// order's later rows stay unsent behind it.
pub async fn park(pool: &PgPool, id: i64, reason: &str) -> sqlx::Result<()> {
    sqlx::query(PARK_OUTBOX_ROW)
        .bind(id)
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(())
}

/// Rows not sent: how many wait to be published, and how many are parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsent {
    /// To be published: pending, or waiting behind an earlier row of their order.
    pub pending: i64,
    /// Parked after permanent failures.
    pub parked: i64,
    /// When the oldest unsent row (of either kind) was written; `None` when none is.
    pub oldest_written_at: Option<DateTime<Utc>>,
}

/// Counts the unsent rows.
pub async fn count_unsent(pool: &PgPool) -> sqlx::Result<Unsent> {
    let (pending, parked, oldest_written_at) =
        sqlx::query_as(COUNT_OUTBOX_UNSENT).fetch_one(pool).await?;
    Ok(Unsent {
        pending,
        parked,
        oldest_written_at,
    })
}

/// Deletes up to `limit` rows sent more than `retention` ago; returns how many.
pub async fn delete_sent(pool: &PgPool, retention: Duration, limit: i64) -> sqlx::Result<u64> {
    let deleted = sqlx::query(DELETE_SENT_OUTBOX)
        .bind(retention.as_secs_f64())
        .bind(limit)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected())
}

/// An unsent outbox row as `orderflow outbox list` shows it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OutboxEntry {
    /// Position in the outbox.
    pub id: i64,
    /// Record key.
    pub order_id: String,
    /// The event's id.
    pub event_id: Uuid,
    /// `OrderCreated`, `OrderPaid`, ...
    pub event_type: String,
    /// `pending` (the relay's candidate), `waiting` (behind an earlier unsent row of its
    /// order) or `parked`.
    pub state: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the order change wrote it.
    pub created_at: DateTime<Utc>,
    /// Not tried again before this.
    pub next_attempt_at: DateTime<Utc>,
    /// When it was parked.
    pub parked_at: Option<DateTime<Utc>>,
    /// A relay is publishing it until then.
    pub claimed_until: Option<DateTime<Utc>>,
}

/// Up to `limit` unsent rows, oldest first; only those in `state` when given.
pub async fn list_unsent(
    pool: &PgPool,
    state: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<OutboxEntry>> {
    sqlx::query_as(LIST_OUTBOX)
        .bind(state)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// Makes parked rows pending again with a fresh count of attempts: those in `ids`, or
/// every parked row when `ids` is `None`. Returns the ids retried, in order.
pub async fn retry_parked(pool: &PgPool, ids: Option<&[i64]>) -> sqlx::Result<Vec<i64>> {
    let mut retried: Vec<i64> = sqlx::query_scalar(RETRY_PARKED_OUTBOX)
        .bind(ids)
        .fetch_all(pool)
        .await?;
    retried.sort_unstable();
    Ok(retried)
}

/// What to do with a parked row that will never be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Keep it, marked `skipped`, until the retention deletes it like a sent row.
    Skip,
    /// Delete it now.
    Discard,
}

/// Takes the parked rows among `ids` out of the queue unpublished, and makes each of
/// their orders' next row pending, in one transaction that holds the orders' locks (as
/// the API does while it adds rows). Returns the ids removed, in order; ids that are not
/// parked are left alone.
pub async fn remove_parked(pool: &PgPool, ids: &[i64], removal: Removal) -> sqlx::Result<Vec<i64>> {
    let mut tx = pool.begin().await?;
    let order_ids: Vec<String> = sqlx::query_scalar(PARKED_ORDERS)
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query(LOCK_ORDERS)
        .bind(&order_ids)
        .execute(&mut *tx)
        .await?;
    let statement = match removal {
        Removal::Skip => SKIP_PARKED_OUTBOX,
        Removal::Discard => DISCARD_PARKED_OUTBOX,
    };
    let mut removed: Vec<i64> = sqlx::query_scalar(statement)
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query(PROMOTE_WAITING_OUTBOX)
        .bind(&order_ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    removed.sort_unstable();
    Ok(removed)
}

/// Makes pending every order's oldest unsent row that waits behind nothing (see
/// `sql/sweep_stranded_outbox.sql`); returns the ids promoted, in order.
pub async fn sweep_stranded(pool: &PgPool) -> sqlx::Result<Vec<i64>> {
    let mut promoted: Vec<i64> = sqlx::query_scalar(SWEEP_STRANDED_OUTBOX)
        .fetch_all(pool)
        .await?;
    promoted.sort_unstable();
    Ok(promoted)
}

/// Like [`sweep_stranded`], for the orders of `slots` only: each relay sweeps the slots
/// it owns. Returns the ids promoted, in order.
pub async fn sweep_slots(pool: &PgPool, slots: &[i16]) -> sqlx::Result<Vec<i64>> {
    let mut promoted: Vec<i64> = sqlx::query_scalar(SWEEP_SLOT_OUTBOX)
        .bind(slots)
        .fetch_all(pool)
        .await?;
    promoted.sort_unstable();
    Ok(promoted)
}
