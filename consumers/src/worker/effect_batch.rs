//! One database transaction for many events: order locks, dedup check,
//! lifecycle rules, dedup insert and order writes, committed together.

use std::collections::{HashMap, HashSet};

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::error::FailureKind;
use crate::store::db_error::{classify_db_error, sqlstate};
use crate::store::dedup_store::{self, ProcessedEvent};
use crate::store::projection::{self, OrderRow, ProjectionEvent};

/// One event of a batch with its source position.
#[derive(Debug, Clone)]
pub struct BatchEntry<'a> {
    /// The decoded event.
    pub event: &'a ProjectionEvent,
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// What happened to one entry when the batch committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// New event: dedup row and effect written.
    Applied,
    /// Already processed by this group: skipped.
    Duplicate,
    /// Makes no sense for the order's state: nothing written, dead-letter it.
    Invalid(String),
}

/// The whole batch failed and nothing was written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BatchFailure {
    /// Whether retrying can help.
    pub kind: FailureKind,
    /// Human-readable cause.
    pub message: String,
    /// The database's SQLSTATE, when it answered with one.
    pub sqlstate: Option<String>,
}

impl From<sqlx::Error> for BatchFailure {
    fn from(error: sqlx::Error) -> Self {
        BatchFailure {
            kind: classify_db_error(&error),
            message: error.to_string(),
            sqlstate: sqlstate(&error),
        }
    }
}

/// Where effects are applied: one call, one transaction.
pub(crate) trait EffectStore: Send + Sync + std::fmt::Debug {
    /// Applies `entries` for `group` as [`apply_batch`] does: in order, all or nothing.
    fn apply<'a>(
        &'a self,
        group: &'a str,
        entries: &'a [BatchEntry<'a>],
    ) -> BoxFuture<'a, Result<Vec<EntryOutcome>, BatchFailure>>;
}

/// The projection database.
#[derive(Debug, Clone)]
pub(crate) struct PgEffectStore {
    pool: PgPool,
}

impl PgEffectStore {
    /// Effects applied through `pool` (migrated).
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl EffectStore for PgEffectStore {
    fn apply<'a>(
        &'a self,
        group: &'a str,
        entries: &'a [BatchEntry<'a>],
    ) -> BoxFuture<'a, Result<Vec<EntryOutcome>, BatchFailure>> {
        apply_batch(&self.pool, group, entries).boxed()
    }
}

/// Applies the entries in order in one transaction. Entries of the same order
/// are applied one after the other, so callers may batch several events of an
/// order as long as they keep offset order. Either every `Applied` and
/// `Duplicate` outcome is committed, or the call fails and nothing is.
pub async fn apply_batch(
    pool: &PgPool,
    group: &str,
    entries: &[BatchEntry<'_>],
) -> Result<Vec<EntryOutcome>, BatchFailure> {
    // Any failure to get a connection means the database is unavailable to us
    // (down, refusing connections, pool exhausted): transient whatever its code.
    let mut tx = pool.begin().await.map_err(|error| BatchFailure {
        kind: FailureKind::Transient,
        message: format!("cannot start a transaction: {error}"),
        sqlstate: None,
    })?;
    let mut order_ids: Vec<String> = entries.iter().map(|e| e.event.order_id.clone()).collect();
    order_ids.sort_unstable();
    order_ids.dedup();
    let mut orders: HashMap<String, OrderRow> =
        projection::lock_orders(&mut tx, &order_ids).await?;
    // Only now, holding the orders' locks: under READ COMMITTED, a dedup read
    // taken before waiting for a lock would miss an event another owner applied
    // meanwhile, and the order's new state would make it look like a violation.
    let event_ids: Vec<String> = entries.iter().map(|e| e.event.event_id.clone()).collect();
    let mut seen = dedup_store::already_processed(&mut tx, group, &event_ids).await?;
    let read_applied: HashMap<String, i32> = orders
        .iter()
        .map(|(id, row)| (id.clone(), row.events_applied))
        .collect();

    let mut outcomes = Vec::with_capacity(entries.len());
    let mut new_events = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    let mut changed_set: HashSet<String> = HashSet::new();
    for entry in entries {
        let event = entry.event;
        if seen.contains(&event.event_id) {
            outcomes.push(EntryOutcome::Duplicate);
            continue;
        }
        match projection::apply(orders.get(&event.order_id), event) {
            Ok(row) => {
                if changed_set.insert(event.order_id.clone()) {
                    changed.push(event.order_id.clone());
                }
                orders.insert(event.order_id.clone(), row);
                seen.insert(event.event_id.clone());
                new_events.push(ProcessedEvent {
                    event_id: event.event_id.clone(),
                    topic: entry.topic.to_owned(),
                    partition: entry.partition,
                    offset: entry.offset,
                });
                outcomes.push(EntryOutcome::Applied);
            }
            Err(reason) => outcomes.push(EntryOutcome::Invalid(reason)),
        }
    }

    let inserted = dedup_store::insert_processed(&mut tx, group, &new_events).await?;
    if inserted != new_events.len() {
        // Another worker (a fenced former owner of the partition) committed one
        // of these events between our check and our insert: start over.
        return Err(BatchFailure {
            kind: FailureKind::Transient,
            message: "an event of the batch was processed concurrently".into(),
            sqlstate: None,
        });
    }
    let rows: Vec<&OrderRow> = changed.iter().filter_map(|id| orders.get(id)).collect();
    let stored =
        projection::store_orders(&mut tx, &rows, |id| read_applied.get(id).copied()).await?;
    if !stored {
        // A new order was created concurrently (a keyless record, or a former
        // owner of the partition): never merge the two, start over and see it.
        return Err(BatchFailure {
            kind: FailureKind::Transient,
            message: "an order of the batch was written concurrently".into(),
            sqlstate: None,
        });
    }
    tx.commit().await?;
    Ok(outcomes)
}
