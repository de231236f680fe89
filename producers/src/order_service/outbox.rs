//! The `outbox` table: rows written in the same transaction as the order change, read
//! and marked by the relay. The SQL lives in `producers/sql/`.

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

const INSERT_OUTBOX: &str = include_str!("../../sql/insert_outbox.sql");
const CLAIM_OUTBOX_BATCH: &str = include_str!("../../sql/claim_outbox_batch.sql");
const MARK_OUTBOX_SENT: &str = include_str!("../../sql/mark_outbox_sent.sql");
const MARK_OUTBOX_FAILED: &str = include_str!("../../sql/mark_outbox_failed.sql");
const COUNT_OUTBOX_PENDING: &str = include_str!("../../sql/count_outbox_pending.sql");

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
    /// The `traceparent` header.
    pub traceparent: String,
    /// The record value.
    pub payload: Vec<u8>,
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
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Locks up to `limit` publishable rows (the oldest unsent row of each order, in id
/// order) for the transaction on `conn`; rows other relays hold are skipped.
pub async fn claim_batch(conn: &mut PgConnection, limit: u32) -> sqlx::Result<Vec<OutboxRow>> {
    sqlx::query_as(CLAIM_OUTBOX_BATCH)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
}

/// Marks rows sent (the broker acknowledged them).
pub async fn mark_sent(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(MARK_OUTBOX_SENT)
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a failed delivery attempt on rows that stay unsent.
pub async fn mark_failed(conn: &mut PgConnection, ids: &[i64], error: &str) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(MARK_OUTBOX_FAILED)
        .bind(ids)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

/// How many rows are not sent yet.
pub async fn count_pending(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar(COUNT_OUTBOX_PENDING)
        .fetch_one(pool)
        .await
}
