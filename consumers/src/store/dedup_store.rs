//! The dedup table `processed_events`: which events a consumer group already
//! applied, written in the effect's transaction; and the deletion of expired rows
//! of the dedup tables, `processed_events` and the dead-letter ledger (when to
//! delete: `dedup_retention`). The migrations are the store's ([`super::MIGRATOR`]).

use std::collections::HashSet;
use std::time::Duration;

use sqlx::{PgPool, Postgres, Row, Transaction};

/// Where a processed event came from, stored beside its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessedEvent {
    /// The event's order (the key's distribution column).
    pub order_id: String,
    /// Event id (dedup key within the group and order).
    pub event_id: String,
    /// Source topic.
    pub topic: String,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// Whether the dedup rows of an order carry rows written before the key held the
/// order id (see migration 0003): while any remain, a claim checks them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyRows {
    /// Every row of the group has its order id: claims are one key lookup each.
    Absent,
    /// Some rows have none (`''`); a claim also looks an event up among them.
    Present,
}

impl LegacyRows {
    /// Reads whether `group` has rows without an order id.
    pub async fn of(pool: &PgPool, group: &str) -> Result<Self, sqlx::Error> {
        let present: bool =
            sqlx::query_scalar(include_str!("../../sql/select_legacy_processed.sql"))
                .bind(group)
                .fetch_one(pool)
                .await?;
        Ok(if present {
            LegacyRows::Present
        } else {
            LegacyRows::Absent
        })
    }
}

/// The events among `keys` (order id, event id) this group already processed;
/// returns their event ids.
pub async fn already_processed(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    keys: &[(String, String)],
) -> Result<HashSet<String>, sqlx::Error> {
    let (order_ids, event_ids): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
    let rows = sqlx::query(include_str!("../../sql/select_processed.sql"))
        .bind(group)
        .bind(order_ids)
        .bind(event_ids)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(|row| row.try_get("event_id")).collect()
}

/// Inserts dedup rows; returns how many were new (events the group processed
/// before, or a concurrent writer of the same event, make this smaller than
/// `events.len()`).
pub async fn insert_processed(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    events: &[ProcessedEvent],
) -> Result<usize, sqlx::Error> {
    Ok(claim_processed(tx, group, LegacyRows::Absent, events)
        .await?
        .len())
}

/// Inserts dedup rows for `events` (distinct ids) and returns the ids that were
/// new: this transaction applies those; the others the group processed before.
pub async fn claim_processed(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    legacy: LegacyRows,
    events: &[ProcessedEvent],
) -> Result<HashSet<String>, sqlx::Error> {
    if events.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = sqlx::query(include_str!("../../sql/insert_processed.sql"))
        .bind(group)
        .bind(
            events
                .iter()
                .map(|e| e.order_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| e.event_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.topic.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.partition).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.offset).collect::<Vec<_>>())
        .bind(legacy == LegacyRows::Present)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(|row| row.try_get("event_id")).collect()
}

/// Deletes this group's dedup rows of `keys` (order id, event id), claimed in this
/// transaction by [`claim_processed`] for events that were then not applied.
pub async fn unclaim_processed(
    tx: &mut Transaction<'_, Postgres>,
    group: &str,
    keys: &[(String, String)],
) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let (order_ids, event_ids): (Vec<String>, Vec<String>) = keys.iter().cloned().unzip();
    sqlx::query(include_str!("../../sql/delete_processed.sql"))
        .bind(group)
        .bind(order_ids)
        .bind(event_ids)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A table of rows keyed by a record's source position that keep a redelivered
/// record from being handled twice; retention deletes their rows by one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupTable {
    /// `processed_events`: events applied.
    ProcessedEvents,
    /// `dead_lettered`: records written to the DLQ ([`crate::store::dead_letter_ledger`]).
    DeadLettered,
}

impl DedupTable {
    /// Every dedup table.
    pub const ALL: [DedupTable; 2] = [DedupTable::ProcessedEvents, DedupTable::DeadLettered];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            DedupTable::ProcessedEvents => "processed_events",
            DedupTable::DeadLettered => "dead_lettered",
        }
    }

    fn delete_expired_sql(self) -> &'static str {
        match self {
            DedupTable::ProcessedEvents => include_str!("../../sql/delete_expired_processed.sql"),
            DedupTable::DeadLettered => include_str!("../../sql/delete_expired_dead_lettered.sql"),
        }
    }
}

/// Deletes the rows of `table` of `group` on `topic` that are older than `retention`
/// and below the group's committed offset of their partition (`committed`: the
/// first offset not yet done, per partition) -- no redelivery can bring those back
/// short of a rewind. Works in small slices, so it never holds locks long enough
/// to slow processing. Returns how many rows it removed.
pub async fn delete_expired(
    pool: &PgPool,
    table: DedupTable,
    group: &str,
    topic: &str,
    retention: Duration,
    committed: &[(i32, i64)],
) -> Result<u64, sqlx::Error> {
    const SLICE: i64 = 5_000;
    if committed.is_empty() {
        return Ok(0);
    }
    let partitions: Vec<i32> = committed.iter().map(|(p, _)| *p).collect();
    let offsets: Vec<i64> = committed.iter().map(|(_, o)| *o).collect();
    let mut total = 0;
    loop {
        let deleted = sqlx::query(table.delete_expired_sql())
            .bind(group)
            .bind(topic)
            .bind(&partitions)
            .bind(&offsets)
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

/// Refuses to start `group` on a database another group already wrote to. The
/// dedup table is per group but the order projection is not: a second group
/// would replay the topic against rows the first one advanced and dead-letter
/// every valid event. (To move to a new group name, delete the old group's rows
/// or use a fresh database; see the README's consumer section.)
pub(crate) async fn check_single_group(pool: &PgPool, group: &str) -> crate::error::Result<()> {
    let other: Option<String> =
        sqlx::query_scalar(include_str!("../../sql/select_other_group.sql"))
            .bind(group)
            .fetch_optional(pool)
            .await
            .map_err(|error| crate::error::Error::Database(error.to_string()))?;
    match other {
        None => Ok(()),
        Some(other) => Err(crate::error::Error::Startup(format!(
            "consumer group {other} already keeps its projection in this database; group {group} would replay the topic against it and dead-letter valid events: run {group} on its own database, or delete {other}'s rows from processed_events and dead_lettered first"
        ))),
    }
}
