//! The worker side: a batch of records (runs of consecutive records of a key, in
//! offset order) goes round by round through decoding, one transaction in the
//! [`EffectStore`], and settling each record; what failed is judged by the
//! [`RetryPolicy`] and poison is handed to the DLQ ([`hand_off::hand_off`], once
//! per record through the ledger), until every record is done or fenced.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use rdkafka::Message;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::decode::{DecodeFailure, RecordDecoder};
use super::effect_batch::{BatchEntry, BatchFailure, EffectStore, EntryOutcome};
use super::hand_off::{self, HandOff};
use super::retry::{RetryPolicy, SplitVerdict, Verdict};
use crate::dead_letter::{DeadLetterSink, DlqCategory, FailureReport};
use crate::scheduling::{DispatchedJob, Done, Shared};
use crate::store::dead_letter_ledger::DeadLetterLedger;
use crate::store::projection::ProjectionEvent;
use tracing::Instrument;

mod runs;
mod trace_spans;

/// Everything a worker needs; shared by all batches.
#[derive(Debug)]
pub(crate) struct Processor {
    /// Engine state.
    pub(crate) shared: Arc<Shared>,
    /// Where effects are applied.
    pub(crate) effects: Box<dyn EffectStore>,
    /// Record decoder.
    pub(crate) decoder: Box<dyn RecordDecoder>,
    /// Where dead letters go.
    pub(crate) dlq: Box<dyn DeadLetterSink>,
    /// Which records the group dead-lettered already.
    pub(crate) ledger: Box<dyn DeadLetterLedger>,
    /// When to try again, and whose failure it was.
    pub(crate) retry: RetryPolicy,
    /// Bench only: simulated I/O per event (the events of a batch wait concurrently).
    pub(crate) effect_delay: Duration,
    /// Cancelled when workers must stop (end of the drain).
    pub(crate) token: CancellationToken,
    /// Records done waiting out of their batch (on the registry, or on backoff after
    /// their own failure), applied outside the batches: one at a time, so a registry
    /// that comes back after thousands waited does not send thousands of transactions
    /// at the pool (its connections are --db-concurrency + 2).
    pub(crate) resumed: Semaphore,
}

struct Work {
    job: DispatchedJob,
    event: Option<ProjectionEvent>,
    failures: u32,
    /// Failures that were the record's own (not the database's), against `--max-attempts`.
    record_attempts: u32,
    first_failure_at: Option<DateTime<Utc>>,
    last_failure_at: Option<DateTime<Utc>>,
    dead_letter: Option<FailureReport>,
    finished: bool,
    /// The last decode has to wait on the schema registry.
    waiting_on_registry: bool,
    /// The record's own failure, or its dead-letter write, is to be retried after
    /// backoff: not the database's, so it waits out of its batch.
    retries_on_its_own: bool,
}

impl Work {
    fn new(job: DispatchedJob) -> Self {
        Self {
            job,
            event: None,
            failures: 0,
            record_attempts: 0,
            first_failure_at: None,
            last_failure_at: None,
            dead_letter: None,
            finished: false,
            waiting_on_registry: false,
            retries_on_its_own: false,
        }
    }

    fn record_failure(&mut self) {
        let now = Utc::now();
        self.failures += 1;
        self.first_failure_at.get_or_insert(now);
        self.last_failure_at = Some(now);
    }

    fn send_to_dlq(&mut self, category: DlqCategory, message: String) {
        self.record_failure();
        let now = Utc::now();
        self.dead_letter = Some(FailureReport {
            category,
            message,
            attempts: self.failures,
            first_failure_at: self.first_failure_at.unwrap_or(now),
            last_failure_at: self.last_failure_at.unwrap_or(now),
        });
    }
}

impl Processor {
    /// Processes a batch until every record is done, fenced, or the workers are
    /// cancelled. Runs as its own task.
    pub(crate) async fn run_batch(self: Arc<Self>, jobs: Vec<DispatchedJob>) {
        let work = jobs.into_iter().map(Work::new).collect();
        self.run_work(work).await;
    }

    /// A record split out of a failed batch, retried on its own task. Boxed so
    /// the recursive spawn has a nameable `Send` type.
    fn run_solo(self: Arc<Self>, work: Work) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move { self.run_work(vec![work]).await })
    }

    async fn run_work(self: &Arc<Self>, mut pending: Vec<Work>) {
        let mut round = 0u32;
        loop {
            pending.retain(|work| {
                let current = self.shared.is_current(&work.job);
                if !current {
                    self.shared.give_up(&work.job);
                }
                current
            });
            if pending.is_empty() {
                return;
            }
            let root = trace_spans::process_span(
                &self.shared.topic,
                &self.shared.group,
                pending.iter().map(|work| &work.job.job.record),
            );
            // Whether a record retries on its own is this round's to say.
            for work in &mut pending {
                work.retries_on_its_own = false;
            }
            let split = root
                .in_trace(async {
                    self.decode(&mut pending).await;
                    let split = self.apply(&mut pending).await.unwrap_or_default();
                    self.dead_letter(&mut pending).await;
                    split
                })
                .await;
            pending.retain(|work| !work.finished);
            // A record waiting on the registry, or on backoff after its own failure,
            // leaves the batch, so it holds none of the --db-concurrency slots that
            // other keys' records need (unless an earlier record of its key still has
            // to apply here). Records waiting on the database stay: every record needs it.
            let leaving = runs::take_leaving(&mut pending);
            // The later records of a leaving record's key must not overtake it: back
            // to the scheduler, to start after it.
            runs::put_back_followers(&self.shared, &mut pending, &leaving);
            runs::put_back_followers(&self.shared, &mut pending, &split);
            for work in leaving {
                tokio::spawn(Arc::clone(self).wait_apart(work));
            }
            // A record of the batch failed in a way we cannot attribute: retry each
            // on its own so one bad record cannot hold the others.
            for work in split {
                tokio::spawn(Arc::clone(self).run_solo(work));
            }
            if pending.is_empty() {
                return;
            }
            self.shared
                .stats
                .retried
                .fetch_add(pending.len() as u64, AtomicOrdering::Relaxed);
            self.shared.metrics.retries.inc_by(pending.len() as u64);
            if !self.retry.wait_before_round(round, &self.token).await {
                return;
            }
            round = round.saturating_add(1);
        }
    }

    /// A record waiting out of its batch (no database slot) with backoff: on the
    /// registry for its writer schema, or to retry its own failure or its dead-letter
    /// write. Once decoded (or poison), or its backoff is over, it is processed on its
    /// own like a record split out of a batch. Boxed so the spawn from
    /// [`Self::run_work`] has a nameable `Send` type.
    fn wait_apart(self: Arc<Self>, mut work: Work) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let waiting = work
                .waiting_on_registry
                .then(|| self.shared.metrics.registry_waiting.clone());
            if let Some(waiting) = &waiting {
                waiting.inc();
            }
            // The backoff keeps growing with the record's failures, in or out of a batch.
            let mut round = work.failures.saturating_sub(1);
            let ready = loop {
                if !self.retry.wait_before_round(round, &self.token).await {
                    break false;
                }
                round = round.saturating_add(1);
                if !self.shared.is_current(&work.job) {
                    self.shared.give_up(&work.job);
                    break false;
                }
                self.shared
                    .stats
                    .retried
                    .fetch_add(1, AtomicOrdering::Relaxed);
                self.shared.metrics.retries.inc();
                if !work.waiting_on_registry {
                    break true;
                }
                self.decode(std::slice::from_mut(&mut work)).await;
                if !work.waiting_on_registry {
                    break true;
                }
            };
            if let Some(waiting) = waiting {
                waiting.dec();
            }
            work.retries_on_its_own = false;
            if ready {
                let _turn = self.resumed.acquire().await.expect("never closed");
                self.run_work(vec![work]).await;
            }
        })
    }

    async fn decode(&self, pending: &mut [Work]) {
        let needs_decode: Vec<&mut Work> = pending
            .iter_mut()
            .filter(|w| w.event.is_none() && w.dead_letter.is_none())
            .collect();
        if needs_decode.is_empty() {
            return;
        }
        let results = join_all(needs_decode.iter().map(|work| {
            let record = &work.job.job.record;
            self.decoder.decode(record.key(), record.payload())
        }))
        .instrument(trace_spans::decode_span(needs_decode.len()))
        .await;
        for (work, result) in needs_decode.into_iter().zip(results) {
            work.waiting_on_registry = matches!(result, Err(DecodeFailure::Transient(_)));
            match result {
                Ok(event) => work.event = Some(event),
                Err(DecodeFailure::Poison(category, message)) => {
                    work.send_to_dlq(category, message)
                }
                Err(DecodeFailure::Transient(message)) => {
                    work.record_failure();
                    let record = &work.job.job.record;
                    // The decoder logs once per schema id; a line per record would
                    // flood the log while the registry is away.
                    tracing::debug!(
                        topic = record.topic(), partition = record.partition(),
                        offset = record.offset(), attempts = work.failures,
                        error = %message, "waiting on the schema registry; will retry"
                    );
                }
            }
        }
    }

    /// Applies the decoded records. Returns the records to retry one by one when
    /// the batch failed with an error of unknown kind.
    async fn apply(&self, pending: &mut Vec<Work>) -> Option<Vec<Work>> {
        let applicable = runs::applicable(pending);
        let mut ready: Vec<usize> = (0..pending.len())
            .filter(|&i| {
                applicable[i] && pending[i].event.is_some() && pending[i].dead_letter.is_none()
            })
            .collect();
        // Offset order within each partition, so a key's records apply in order.
        ready.sort_by_key(|&i| {
            let record = &pending[i].job.job.record;
            (record.partition(), record.offset())
        });
        if ready.is_empty() {
            return None;
        }
        if !self.effect_delay.is_zero() {
            tokio::time::sleep(self.effect_delay).await;
        }
        if !self.retry.wait_for_database(&self.token).await {
            return None;
        }
        let entries: Vec<BatchEntry<'_>> = ready
            .iter()
            .map(|&i| {
                let record = &pending[i].job.job.record;
                BatchEntry {
                    event: pending[i].event.as_ref().expect("decoded"),
                    topic: record.topic(),
                    partition: record.partition(),
                    offset: record.offset(),
                }
            })
            .collect();
        self.shared.metrics.batch_size.observe(entries.len() as f64);
        let result = self.apply_traced(&entries).await;
        drop(entries);
        let failure = match result {
            Ok(outcomes) => {
                self.retry.database_answered();
                for (&i, outcome) in ready.iter().zip(outcomes) {
                    self.settle(&mut pending[i], outcome);
                }
                return None;
            }
            Err(failure) => failure,
        };
        match self.retry.judge_batch(&failure, ready.len()) {
            Verdict::Database => {
                self.database_failed(pending, &ready, &failure);
                None
            }
            Verdict::Split => self.apply_one_by_one(pending, &ready).await,
            Verdict::RetryRecord | Verdict::Record => {
                // One record proves nothing about the database: ask it.
                if !self.database_takes_writes(&failure).await {
                    self.database_failed(pending, &ready, &failure);
                    return None;
                }
                // The database answered, so the breaker sees a success.
                self.retry.database_answered();
                self.record_failed(&mut pending[ready[0]], &failure);
                None
            }
        }
    }

    /// Applies each record of a batch that failed with an error of unknown kind
    /// in its own transaction, to tell a record's failure from the database's
    /// ([`RetryPolicy::judge_split`]); the records whose own failure counts an
    /// attempt are returned to be retried one by one.
    async fn apply_one_by_one(
        &self,
        pending: &mut Vec<Work>,
        ready: &[usize],
    ) -> Option<Vec<Work>> {
        // One after the other: this batch's database slot, not the whole pool. After
        // a record of a key failed, the key's later records wait (they stay pending
        // and go back to the scheduler if the failed one leaves the batch).
        let mut results = Vec::with_capacity(ready.len());
        let mut tried = Vec::with_capacity(ready.len());
        let mut failed_keys = std::collections::HashSet::new();
        for &i in ready {
            if failed_keys.contains(&pending[i].job.key) {
                continue;
            }
            let record = &pending[i].job.job.record;
            let entry = BatchEntry {
                event: pending[i].event.as_ref().expect("decoded"),
                topic: record.topic(),
                partition: record.partition(),
                offset: record.offset(),
            };
            let result = self.apply_traced(&[entry]).await;
            if result.is_err() {
                failed_keys.insert(pending[i].job.key.clone());
            }
            tried.push(i);
            results.push(result);
        }
        let failed: Vec<(usize, BatchFailure)> = tried
            .iter()
            .zip(results)
            .filter_map(|(&i, result)| match result {
                Ok(mut outcomes) => {
                    self.settle(&mut pending[i], outcomes.remove(0));
                    None
                }
                Err(failure) => Some((i, failure)),
            })
            .collect();
        let failures: Vec<&BatchFailure> = failed.iter().map(|(_, f)| f).collect();
        let verdicts = match self.retry.judge_split(tried.len(), &failures) {
            SplitVerdict::PerRecord(verdicts) => verdicts,
            SplitVerdict::Database => {
                let (_, failure) = &failed[0];
                tracing::warn!(records = tried.len(), sqlstate = failure.sqlstate.as_deref(),
                    error = %failure.message,
                    "every record of the batch failed alike; treating it as a database failure");
                let indices: Vec<usize> = failed.iter().map(|(i, _)| *i).collect();
                self.database_failed(pending, &indices, failure);
                return None;
            }
        };
        if verdicts.contains(&Verdict::Record) && !self.database_takes_writes(&failed[0].1).await {
            let indices: Vec<usize> = failed.iter().map(|(i, _)| *i).collect();
            self.database_failed(pending, &indices, &failed[0].1);
            return None;
        }
        self.retry.database_answered();
        let mut to_split = Vec::new();
        for ((i, failure), verdict) in failed.iter().zip(verdicts) {
            if verdict == Verdict::RetryRecord {
                pending[*i].record_failure();
                pending[*i].retries_on_its_own = true;
                continue;
            }
            self.record_failed(&mut pending[*i], failure);
            to_split.push(*i);
        }
        // Highest index first, so each removal leaves the lower indices in place.
        to_split.sort_unstable_by(|a, b| b.cmp(a));
        let split: Vec<Work> = to_split
            .into_iter()
            .map(|i| pending.swap_remove(i))
            .collect();
        (!split.is_empty()).then_some(split)
    }

    /// Whether the database takes a write no record can have made fail (the
    /// [`EffectStore::probe`]), after `failure` was judged a record's own: a
    /// persistent error that fails every write (a raising trigger, a column a
    /// rolling migration renamed) is the database's, however few records it hit.
    async fn database_takes_writes(&self, failure: &BatchFailure) -> bool {
        match self.effects.probe(&self.shared.group).await {
            Ok(()) => true,
            Err(probe) => {
                tracing::warn!(sqlstate = failure.sqlstate.as_deref(), error = %failure.message,
                    probe_sqlstate = probe.sqlstate.as_deref(), probe_error = %probe.message,
                    "a probe write failed too; treating the failure as the database's");
                false
            }
        }
    }

    /// One transaction in the effect store, inside its span.
    async fn apply_traced(
        &self,
        entries: &[BatchEntry<'_>],
    ) -> Result<Vec<EntryOutcome>, BatchFailure> {
        let span = trace_spans::transaction_span(entries.len());
        let result = self
            .effects
            .apply(&self.shared.group, entries)
            .instrument(span.clone())
            .await;
        if let Err(failure) = &result {
            trace_spans::transaction_failed(&span, &failure.message);
        }
        result
    }

    /// The database failed as a whole: the breaker hears of it and the records
    /// wait for it without using up their attempts.
    fn database_failed(&self, pending: &mut [Work], indices: &[usize], failure: &BatchFailure) {
        self.retry.database_failed();
        tracing::warn!(records = indices.len(), sqlstate = failure.sqlstate.as_deref(),
            error = %failure.message, "database failed transiently; batch will be retried");
        for &i in indices {
            pending[i].record_failure();
        }
    }

    /// A failure specific to one record: counts an attempt and dead-letters the
    /// record once `--max-attempts` are used up.
    fn record_failed(&self, work: &mut Work, failure: &BatchFailure) {
        work.record_failure();
        work.record_attempts += 1;
        let record = &work.job.job.record;
        if self.retry.attempts_exhausted(work.record_attempts) {
            tracing::warn!(topic = record.topic(), partition = record.partition(),
                offset = record.offset(), attempts = work.failures, error = %failure.message,
                "retries exhausted; dead-lettering");
            work.failures -= 1; // send_to_dlq counts the final failure itself
            work.send_to_dlq(DlqCategory::RetriesExhausted, failure.message.clone());
        } else {
            tracing::debug!(topic = record.topic(), partition = record.partition(),
                offset = record.offset(), attempts = work.failures, error = %failure.message,
                "handler failed; will retry");
            work.retries_on_its_own = true;
        }
    }

    fn settle(&self, work: &mut Work, outcome: EntryOutcome) {
        match outcome {
            EntryOutcome::Applied => {
                if let Some(event) = &work.event {
                    let age = (Utc::now() - event.occurred_at).num_milliseconds();
                    self.shared
                        .metrics
                        .event_age_seconds
                        .observe(age.max(0) as f64 / 1000.0);
                }
                self.finish(work, Done::Processed);
            }
            EntryOutcome::Duplicate => self.finish(work, Done::Duplicate),
            EntryOutcome::Invalid(reason) => work.send_to_dlq(DlqCategory::Validation, reason),
        }
    }

    async fn dead_letter(&self, pending: &mut [Work]) {
        let mut to_write: Vec<&mut Work> = pending
            .iter_mut()
            .filter(|w| !w.finished && w.dead_letter.is_some())
            .collect();
        if to_write.is_empty() {
            return;
        }
        let records: Vec<(&DispatchedJob, &FailureReport)> = to_write
            .iter()
            .map(|work| (&work.job, work.dead_letter.as_ref().expect("report")))
            .collect();
        let hand_off_span = trace_spans::dead_letter_span(records.len());
        let settle_spans: Vec<tracing::Span> = hand_off_span.in_scope(|| {
            records
                .iter()
                .map(|(job, report)| {
                    trace_spans::settle_span(&job.job.record, &self.shared.group, report)
                })
                .collect()
        });
        let outcomes = hand_off::hand_off(
            &self.shared,
            &self.retry,
            &self.token,
            self.ledger.as_ref(),
            self.dlq.as_ref(),
            &records,
        )
        .instrument(hand_off_span)
        .await;
        for ((work, outcome), span) in to_write.iter_mut().zip(outcomes).zip(settle_spans) {
            span.record("dead_letter.outcome", format!("{outcome:?}").as_str());
            work.finished = !matches!(outcome, HandOff::Failed | HandOff::WaitsOnDatabase);
            // A DLQ write to retry waits out of the batch; the ledger's database, in it.
            work.retries_on_its_own = outcome == HandOff::Failed;
        }
    }

    fn finish(&self, work: &mut Work, done: Done) {
        work.finished = true;
        self.shared.complete(&work.job, done);
    }
}

#[cfg(test)]
mod tests;
