//! The dedup table `processed_events`: which events a consumer group already
//! applied, written in the effect's transaction; migrations and retention.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio_util::sync::CancellationToken;

/// Embedded migrations for the consumer's database (processed_events, orders).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Where a processed event came from, stored beside its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedEvent {
    /// Event id (dedup key within the group).
    pub event_id: String,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// The event ids among `event_ids` this group already processed.
pub async fn already_processed(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    event_ids: &[String],
) -> Result<HashSet<String>, sqlx::Error> {
    let rows = sqlx::query(include_str!("../sql/select_processed.sql"))
        .bind(group)
        .bind(event_ids)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(|row| row.try_get("event_id")).collect()
}

/// Inserts dedup rows; returns how many were new (a concurrent writer of the
/// same event makes this smaller than `events.len()`).
pub async fn insert_processed(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    events: &[ProcessedEvent],
) -> Result<usize, sqlx::Error> {
    if events.is_empty() {
        return Ok(0);
    }
    let rows = sqlx::query(include_str!("../sql/insert_processed.sql"))
        .bind(group)
        .bind(
            events
                .iter()
                .map(|e| e.event_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.topic.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.partition).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.offset).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.len())
}

/// Deletes dedup rows older than `retention` in small slices, so it never holds
/// locks long enough to slow processing. Returns how many rows it removed.
pub async fn delete_expired(
    pool: &PgPool,
    group: &str,
    retention: Duration,
) -> Result<u64, sqlx::Error> {
    const SLICE: i64 = 5_000;
    let mut total = 0;
    loop {
        let deleted = sqlx::query(include_str!("../sql/delete_expired_processed.sql"))
            .bind(group)
            .bind(retention.as_secs_f64())
            .bind(SLICE)
            .execute(pool)
            .await?
            .rows_affected();
        total += deleted;
        if deleted < SLICE as u64 {
            return Ok(total);
        }
    }
}

/// Runs [`delete_expired`] every `every` until cancelled; failures are logged
/// and retried on the next round (retention is not urgent).
pub async fn run_retention(
    pool: PgPool,
    group: String,
    retention: Duration,
    every: Duration,
    token: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match delete_expired(&pool, &group, retention).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, group, "dedup retention removed old rows"),
            Err(error) => tracing::warn!(%error, group, "dedup retention failed; will retry"),
        }
    }
}
