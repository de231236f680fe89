//! Housekeeping of the order service's tables: sent outbox rows older than the retention
//! and expired idempotency keys are deleted, in batches, on an interval.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::order_service::store::idempotency;
use orderflow_outbox::queries as outbox;

/// Most rows one delete statement removes.
const DELETE_BATCH: i64 = 10_000;

/// What one pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Sent outbox rows past the retention.
    pub sent_outbox_rows: u64,
    /// Idempotency keys past their 24 h.
    pub idempotency_keys: u64,
}

/// One pass: deletes sent outbox rows older than `outbox_retention` and expired keys.
pub async fn run_once(pool: &PgPool, outbox_retention: Duration) -> sqlx::Result<Deleted> {
    let mut deleted = Deleted::default();
    loop {
        let batch = outbox::delete_sent(pool, outbox_retention, DELETE_BATCH).await?;
        deleted.sent_outbox_rows += batch;
        if batch < DELETE_BATCH.unsigned_abs() {
            break;
        }
    }
    let mut conn = pool.acquire().await?;
    deleted.idempotency_keys = idempotency::purge_expired(&mut conn).await?;
    Ok(deleted)
}

/// Runs a pass at start and then every `interval` until `token` is cancelled. A failed
/// pass is logged and tried again at the next interval.
pub async fn run(
    pool: PgPool,
    outbox_retention: Duration,
    interval: Duration,
    token: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = token.cancelled() => return,
        }
        match run_once(&pool, outbox_retention).await {
            Ok(deleted) if deleted != Deleted::default() => tracing::info!(
                sent_outbox_rows = deleted.sent_outbox_rows,
                idempotency_keys = deleted.idempotency_keys,
                "housekeeping deleted old rows"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "housekeeping failed; trying again later"),
        }
    }
}
