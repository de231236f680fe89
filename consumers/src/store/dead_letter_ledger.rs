//! The dead-letter ledger `dead_lettered`: which source records (topic, partition,
//! offset) a consumer group already wrote to its DLQ, so a record redelivered after
//! a rebalance or a stop (its offset not committed yet) is not dead-lettered twice.
//!
//! A write is bracketed by one transaction: the record is claimed (a row inserted,
//! `ON CONFLICT DO NOTHING`), written to the DLQ and acked, then the claim commits.
//! A second owner claiming the same record meanwhile waits for that commit and then
//! finds the record taken. What is left: a stop between the DLQ ack and the commit
//! (a crash, the database lost at that moment) loses the row, so a redelivery writes
//! the record again.

use std::collections::HashSet;

use futures::FutureExt;
use futures::future::BoxFuture;
use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use sqlx::{PgPool, Postgres, Row, Transaction};

use super::db_error::classify_db_error;
use crate::error::FailureKind;

/// Where a record came from: its identity in the ledger (within a group).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SourcePosition {
    /// Source topic.
    pub(crate) topic: String,
    /// Source partition.
    pub(crate) partition: i32,
    /// Source offset.
    pub(crate) offset: i64,
}

impl SourcePosition {
    /// The position of `record`.
    pub(crate) fn of(record: &OwnedMessage) -> Self {
        Self {
            topic: record.topic().to_owned(),
            partition: record.partition(),
            offset: record.offset(),
        }
    }
}

/// The ledger could not be read or written; nothing was claimed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("dead-letter ledger: {message}")]
pub(crate) struct LedgerError {
    /// Whether the database as a whole failed (the breaker hears of it).
    pub(crate) kind: FailureKind,
    /// Human-readable cause.
    pub(crate) message: String,
}

impl From<sqlx::Error> for LedgerError {
    fn from(error: sqlx::Error) -> Self {
        Self {
            kind: classify_db_error(&error),
            message: error.to_string(),
        }
    }
}

/// Which records a group dead-lettered.
pub(crate) trait DeadLetterLedger: Send + Sync + std::fmt::Debug {
    /// Claims `sources` for `group` in a new transaction, waiting for claims
    /// other transactions hold on them; the claim says which were new.
    fn claim<'a>(
        &'a self,
        group: &'a str,
        sources: Vec<SourcePosition>,
    ) -> BoxFuture<'a, Result<Box<dyn LedgerClaim>, LedgerError>>;
}

/// Claimed records, held until [`LedgerClaim::settle`]; dropping it gives them back.
pub(crate) trait LedgerClaim: Send {
    /// Whether `source` was new to the ledger; false: the group dead-lettered it before.
    fn is_new(&self, source: &SourcePosition) -> bool;

    /// Keeps the claims of the `written` records, gives back the others, and commits.
    fn settle<'a>(
        self: Box<Self>,
        written: &'a [SourcePosition],
    ) -> BoxFuture<'a, Result<(), LedgerError>>;
}

/// The ledger table in the consumer's database.
#[derive(Debug, Clone)]
pub(crate) struct PgDeadLetterLedger {
    pool: PgPool,
}

impl PgDeadLetterLedger {
    /// The ledger in `pool`'s database (migrated).
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl DeadLetterLedger for PgDeadLetterLedger {
    fn claim<'a>(
        &'a self,
        group: &'a str,
        sources: Vec<SourcePosition>,
    ) -> BoxFuture<'a, Result<Box<dyn LedgerClaim>, LedgerError>> {
        async move {
            let claim = claim(&self.pool, group, sources).await?;
            Ok(Box::new(claim) as Box<dyn LedgerClaim>)
        }
        .boxed()
    }
}

/// A claim held in an open transaction.
#[derive(Debug)]
pub(crate) struct PgClaim {
    tx: Transaction<'static, Postgres>,
    group: String,
    new: HashSet<SourcePosition>,
}

/// Claims `sources` for `group` (see [`DeadLetterLedger::claim`]).
pub(crate) async fn claim(
    pool: &PgPool,
    group: &str,
    mut sources: Vec<SourcePosition>,
) -> Result<PgClaim, LedgerError> {
    // Any failure to get a connection means the database is unavailable to us.
    let mut tx = pool.begin().await.map_err(|error| LedgerError {
        kind: FailureKind::Transient,
        message: format!("cannot start a transaction: {error}"),
    })?;
    sources.sort_unstable();
    let (topics, partitions, offsets) = columns(&sources);
    let rows = sqlx::query(include_str!("../../sql/claim_dead_lettered.sql"))
        .bind(group)
        .bind(topics)
        .bind(partitions)
        .bind(offsets)
        .fetch_all(&mut *tx)
        .await?;
    let new = rows
        .iter()
        .map(|row| {
            Ok(SourcePosition {
                topic: row.try_get("topic")?,
                partition: row.try_get("partition")?,
                offset: row.try_get("offset")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(PgClaim {
        tx,
        group: group.to_owned(),
        new,
    })
}

impl LedgerClaim for PgClaim {
    fn is_new(&self, source: &SourcePosition) -> bool {
        self.new.contains(source)
    }

    fn settle<'a>(
        self: Box<Self>,
        written: &'a [SourcePosition],
    ) -> BoxFuture<'a, Result<(), LedgerError>> {
        async move {
            let PgClaim { mut tx, group, new } = *self;
            let written: HashSet<&SourcePosition> = written.iter().collect();
            let unwritten: Vec<SourcePosition> = new
                .iter()
                .filter(|source| !written.contains(source))
                .cloned()
                .collect();
            if written.is_empty() {
                tx.rollback().await?;
                return Ok(());
            }
            if !unwritten.is_empty() {
                let (topics, partitions, offsets) = columns(&unwritten);
                sqlx::query(include_str!("../../sql/release_dead_lettered.sql"))
                    .bind(&group)
                    .bind(topics)
                    .bind(partitions)
                    .bind(offsets)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .boxed()
    }
}

fn columns(sources: &[SourcePosition]) -> (Vec<String>, Vec<i32>, Vec<i64>) {
    (
        sources.iter().map(|s| s.topic.clone()).collect(),
        sources.iter().map(|s| s.partition).collect(),
        sources.iter().map(|s| s.offset).collect(),
    )
}
