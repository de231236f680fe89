//! One database transaction for many events: order locks, dedup rows claimed,
//! lifecycle rules, order writes, committed together (three statements).

use std::collections::{HashMap, HashSet};

use futures::FutureExt;
use futures::future::BoxFuture;
use sqlx::PgPool;

use crate::error::FailureKind;
use crate::store::db_error::{classify_db_error, sqlstate};
use crate::store::dedup_store::{self, LegacyRows, ProcessedEvent};
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

    /// Runs the statements of an apply on a new order of its own and rolls them
    /// back: whether the database takes a write that nothing in a record can have
    /// made fail ([`probe`]). Stores without a database of their own succeed.
    fn probe<'a>(&'a self, _group: &'a str) -> BoxFuture<'a, Result<(), BatchFailure>> {
        futures::future::ready(Ok(())).boxed()
    }
}

/// The projection database.
#[derive(Debug, Clone)]
pub(crate) struct PgEffectStore {
    pool: PgPool,
    legacy: LegacyRows,
}

impl PgEffectStore {
    /// Effects applied through `pool` (migrated); `legacy`: whether the group's
    /// dedup rows include some without an order id.
    pub(crate) fn new(pool: PgPool, legacy: LegacyRows) -> Self {
        Self { pool, legacy }
    }
}

impl EffectStore for PgEffectStore {
    fn apply<'a>(
        &'a self,
        group: &'a str,
        entries: &'a [BatchEntry<'a>],
    ) -> BoxFuture<'a, Result<Vec<EntryOutcome>, BatchFailure>> {
        apply_batch(&self.pool, group, self.legacy, entries).boxed()
    }

    fn probe<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Result<(), BatchFailure>> {
        probe(&self.pool, group, self.legacy).boxed()
    }
}

/// Runs the dedup insert and the order writes for a made-up order placed now, in a
/// transaction that is rolled back. A failure here is the database's, whatever its
/// SQLSTATE: a trigger that raises, a column a rolling migration renamed, a
/// missing privilege fail this write as they fail every record's.
pub(crate) async fn probe(
    pool: &PgPool,
    group: &str,
    legacy: LegacyRows,
) -> Result<(), BatchFailure> {
    let id = format!("orderflow-probe-{}", uuid::Uuid::new_v4());
    let event = ProjectionEvent {
        event_id: id.clone(),
        order_id: id,
        occurred_at: chrono::Utc::now(),
        effect: projection::Effect::Created {
            customer_id: "orderflow-probe".into(),
            currency: "EUR".into(),
            total_cents: 100,
            item_count: 1,
        },
    };
    let entry = BatchEntry {
        event: &event,
        topic: "orderflow-probe",
        partition: -1,
        offset: -1,
    };
    let mut tx = begin(pool).await?;
    let written = write_batch(&mut tx, group, legacy, std::slice::from_ref(&entry)).await;
    tx.rollback().await?;
    match written?.as_slice() {
        [EntryOutcome::Applied] => Ok(()),
        other => Err(BatchFailure {
            kind: FailureKind::Unknown,
            message: format!("the probe write was not applied: {other:?}"),
            sqlstate: None,
        }),
    }
}

/// A transaction; any failure to get a connection means the database is
/// unavailable to us (down, refusing connections, pool exhausted): transient
/// whatever its code.
async fn begin(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, BatchFailure> {
    pool.begin().await.map_err(|error| BatchFailure {
        kind: FailureKind::Transient,
        message: format!("cannot start a transaction: {error}"),
        sqlstate: None,
    })
}

/// Applies the entries in order in one transaction. Entries of the same order
/// are applied one after the other, so callers may batch several events of an
/// order as long as they keep offset order. Either every `Applied` and
/// `Duplicate` outcome is committed, or the call fails and nothing is. `legacy`:
/// whether the group has dedup rows without an order id ([`LegacyRows::of`]).
pub async fn apply_batch(
    pool: &PgPool,
    group: &str,
    legacy: LegacyRows,
    entries: &[BatchEntry<'_>],
) -> Result<Vec<EntryOutcome>, BatchFailure> {
    let mut tx = begin(pool).await?;
    let outcomes = write_batch(&mut tx, group, legacy, entries).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// The writes of [`apply_batch`] inside `tx`, which the caller commits or rolls back.
async fn write_batch(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    group: &str,
    legacy: LegacyRows,
    entries: &[BatchEntry<'_>],
) -> Result<Vec<EntryOutcome>, BatchFailure> {
    let mut order_ids: Vec<String> = entries.iter().map(|e| e.event.order_id.clone()).collect();
    order_ids.sort_unstable();
    order_ids.dedup();
    let mut orders: HashMap<String, OrderRow> = projection::lock_orders(tx, &order_ids).await?;
    // Only now, holding the orders' locks: under READ COMMITTED, a dedup read
    // taken before waiting for a lock would miss an event another owner applied
    // meanwhile, and the order's new state would make it look like a violation.
    // The dedup rows are claimed up front (one statement instead of a check and
    // an insert): an id that comes back was not processed before, and a claim of
    // an event another transaction is writing waits for that one's outcome.
    let mut claims: Vec<ProcessedEvent> = Vec::with_capacity(entries.len());
    let mut claimed_ids: HashSet<&str> = HashSet::with_capacity(entries.len());
    for entry in entries {
        if claimed_ids.insert(&entry.event.event_id) {
            claims.push(ProcessedEvent {
                order_id: entry.event.order_id.clone(),
                event_id: entry.event.event_id.clone(),
                topic: entry.topic.to_owned(),
                partition: entry.partition,
                offset: entry.offset,
            });
        }
    }
    let fresh = dedup_store::claim_processed(tx, group, legacy, &claims).await?;
    let read_applied: HashMap<String, i32> = orders
        .iter()
        .map(|(id, row)| (id.clone(), row.events_applied))
        .collect();

    // In offset order: a later event of an order sees the earlier ones' effect, and
    // the second record of an event (a producer's retry) in the batch is a duplicate.
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut applied: HashSet<&str> = HashSet::with_capacity(fresh.len());
    let mut changed: Vec<String> = Vec::new();
    let mut changed_set: HashSet<String> = HashSet::new();
    for entry in entries {
        let event = entry.event;
        if !fresh.contains(&event.event_id) || applied.contains(event.event_id.as_str()) {
            outcomes.push(EntryOutcome::Duplicate);
            continue;
        }
        match projection::apply(orders.get(&event.order_id), event) {
            Ok(row) => {
                if changed_set.insert(event.order_id.clone()) {
                    changed.push(event.order_id.clone());
                }
                orders.insert(event.order_id.clone(), row);
                applied.insert(&event.event_id);
                outcomes.push(EntryOutcome::Applied);
            }
            Err(reason) => outcomes.push(EntryOutcome::Invalid(reason)),
        }
    }
    // An event that broke the rules is dead-lettered, not processed: no dedup row.
    let not_applied: Vec<(String, String)> = claims
        .iter()
        .filter(|c| fresh.contains(&c.event_id) && !applied.contains(c.event_id.as_str()))
        .map(|c| (c.order_id.clone(), c.event_id.clone()))
        .collect();
    dedup_store::unclaim_processed(tx, group, &not_applied).await?;
    let rows: Vec<&OrderRow> = changed.iter().filter_map(|id| orders.get(id)).collect();
    let stored = projection::store_orders(tx, &rows, |id| read_applied.get(id).copied()).await?;
    if !stored {
        // A new order was created concurrently (a keyless record, or a former
        // owner of the partition): never merge the two, start over and see it.
        return Err(BatchFailure {
            kind: FailureKind::Transient,
            message: "an order of the batch was written concurrently".into(),
            sqlstate: None,
        });
    }
    Ok(outcomes)
}
