//! Handing records to the dead-letter topic: each only while its partition is
//! still owned under the epoch it was received in, once per source record and
//! group (the [`DeadLetterLedger`] in the store), and finished with the engine
//! once the write was acked.

use futures::future::join_all;
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use super::retry::RetryPolicy;
use crate::dead_letter::{DeadLetterSink, DlqWriteError, FailureReport};
use crate::error::FailureKind;
use crate::scheduling::{DispatchedJob, Done, Shared};
use crate::store::dead_letter_ledger::{DeadLetterLedger, LedgerError, SourcePosition};

/// What became of a record handed to the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandOff {
    /// Written and acked; the record is done.
    Written,
    /// The group dead-lettered it before (the ledger has it): not written again,
    /// the record is done.
    AlreadyWritten,
    /// Its partition moved on since it was judged: not written, left to the new owner.
    Fenced,
    /// The write can never succeed: the engine stops, the record stays not done.
    Unrecoverable,
    /// The write failed and may succeed later: hand it off again.
    Failed,
    /// The ledger (the database) failed or its breaker is open: hand it off again
    /// once the database answers.
    WaitsOnDatabase,
}

/// Dead-letters `records` (each with the report saying why) through `sink`,
/// each only while its partition is still owned under the epoch it was received
/// in and only if the group's [`DeadLetterLedger`] does not hold it already, and
/// finishes each record with the engine except the ones to hand off again. The
/// ledger's claim commits after the writes were acked; the ledger is in the
/// database, so the claim waits while `retry`'s breaker is open (or until `token`
/// is cancelled), and a ledger failure is the database's: nothing is written.
pub(crate) async fn hand_off(
    shared: &Shared,
    retry: &RetryPolicy,
    token: &CancellationToken,
    ledger: &dyn DeadLetterLedger,
    sink: &dyn DeadLetterSink,
    records: &[(&DispatchedJob, &FailureReport)],
) -> Vec<HandOff> {
    let mut outcomes: Vec<Option<HandOff>> = vec![None; records.len()];
    // A record whose partition moved on since it was judged is the new owner's
    // to judge: writing it here would dead-letter it twice or wrongly.
    fence(shared, records, &mut outcomes);
    let sources: Vec<SourcePosition> = records
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|((job, _), _)| SourcePosition::of(&job.job.record))
        .collect();
    if sources.is_empty() {
        return finished(outcomes);
    }
    // Every permit the breaker grants is answered below (success or failure), so
    // a half-open breaker's probe is never left hanging.
    if !retry.wait_for_database(token).await {
        return failed_unless_settled(outcomes);
    }
    let claim = match ledger.claim(&shared.group, sources).await {
        Ok(claim) => {
            retry.database_answered();
            claim
        }
        Err(error) => {
            ledger_failed(retry, &error);
            tracing::warn!(%error, records = records.len(),
                "cannot claim records in the dead-letter ledger; nothing written, will retry");
            return failed_unless_settled(outcomes);
        }
    };
    for ((job, _), outcome) in records.iter().zip(outcomes.iter_mut()) {
        if outcome.is_none() && !claim.is_new(&SourcePosition::of(&job.job.record)) {
            skip_written(shared, sink.topic(), job);
            *outcome = Some(HandOff::AlreadyWritten);
        }
    }
    // The claim may have waited for another owner's: look at ownership again.
    fence(shared, records, &mut outcomes);
    let to_write: Vec<usize> = (0..records.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();
    let results = join_all(
        to_write
            .iter()
            .map(|&i| sink.write(&records[i].0.job.record, records[i].1)),
    )
    .await;
    let written: Vec<SourcePosition> = to_write
        .iter()
        .zip(&results)
        .filter(|(_, result)| result.is_ok())
        .map(|(&i, _)| SourcePosition::of(&records[i].0.job.record))
        .collect();
    if let Err(error) = claim.settle(&written).await {
        // The records are in the DLQ; only their ledger rows are lost, so a
        // redelivery before the commit passes them would write them again.
        ledger_failed(retry, &error);
        tracing::warn!(%error, records = written.len(),
            "dead-letter ledger did not commit after the DLQ writes; a redelivery would write them again");
    }
    for (i, result) in to_write.into_iter().zip(results) {
        let (job, report) = records[i];
        outcomes[i] = Some(settle_write(shared, sink.topic(), job, report, result));
    }
    finished(outcomes)
}

/// Gives up the records not settled yet whose partition moved on.
fn fence(
    shared: &Shared,
    records: &[(&DispatchedJob, &FailureReport)],
    outcomes: &mut [Option<HandOff>],
) {
    for ((job, _), outcome) in records.iter().zip(outcomes.iter_mut()) {
        if outcome.is_none() && !shared.is_current(job) {
            shared.give_up(job);
            *outcome = Some(HandOff::Fenced);
        }
    }
}

/// The records not settled yet are to be handed off again, once the database answers.
fn failed_unless_settled(outcomes: Vec<Option<HandOff>>) -> Vec<HandOff> {
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(HandOff::WaitsOnDatabase))
        .collect()
}

fn finished(outcomes: Vec<Option<HandOff>>) -> Vec<HandOff> {
    outcomes
        .into_iter()
        .map(|outcome| outcome.expect("every record settled"))
        .collect()
}

/// The breaker hears of a ledger failure as of any other database call.
fn ledger_failed(retry: &RetryPolicy, error: &LedgerError) {
    if error.kind == FailureKind::Transient {
        retry.database_failed();
    } else {
        retry.database_answered();
    }
}

/// A record the group dead-lettered before (a redelivery after a rebalance or a
/// stop that committed below it) is done without a second write.
fn skip_written(shared: &Shared, dlq_topic: &str, job: &DispatchedJob) {
    let record = &job.job.record;
    tracing::info!(
        topic = record.topic(), partition = record.partition(), offset = record.offset(),
        order_id = %String::from_utf8_lossy(record.key().unwrap_or_default()),
        dlq_topic, "record already dead-lettered by this group; not written again"
    );
    shared.complete(job, Done::AlreadyDeadLettered);
}

fn settle_write(
    shared: &Shared,
    dlq_topic: &str,
    job: &DispatchedJob,
    report: &FailureReport,
    result: Result<(), DlqWriteError>,
) -> HandOff {
    let record = &job.job.record;
    match result {
        Ok(()) => {
            tracing::info!(
                topic = record.topic(), partition = record.partition(),
                offset = record.offset(),
                order_id = %String::from_utf8_lossy(record.key().unwrap_or_default()),
                category = report.category.as_str(), attempts = report.attempts,
                error = %report.message, dlq_topic, "record dead-lettered"
            );
            shared.complete(job, Done::DeadLettered);
            HandOff::Written
        }
        Err(error) if error.permanent => {
            // Retrying would hold the partition's commit forever: stop the
            // process, leaving the offset before this record.
            shared.metrics.dlq_write_unrecoverable.inc();
            tracing::error!(topic = record.topic(), partition = record.partition(),
                offset = record.offset(), category = report.category.as_str(),
                %error, "dead-letter write can never succeed; stopping");
            shared.fail(format!(
                "record {}/{}@{} cannot be dead-lettered: {error}",
                record.topic(),
                record.partition(),
                record.offset()
            ));
            shared.give_up(job);
            HandOff::Unrecoverable
        }
        Err(error) => {
            shared.metrics.dlq_write_failures.inc();
            tracing::warn!(topic = record.topic(), partition = record.partition(),
                offset = record.offset(), %error, "dead-letter write failed; will retry");
            HandOff::Failed
        }
    }
}
