//! The dead-letter topic: what cannot be processed is written there with its
//! original key, value and headers plus headers saying where it came from and why,
//! only while this worker still owns the record's partition, and once per source
//! record and group (the [`dead_letter_ledger`](crate::dead_letter_ledger)).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, join_all};
use orderflow_contracts::dead_letter::DeadLetterHeaders;
use orderflow_runtime::kafka::KafkaArgs;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::dead_letter_ledger::{DeadLetterLedger, LedgerError, SourcePosition};
use crate::engine_state::{DispatchedJob, Done, Shared};
use crate::error::{Error, FailureKind, Result};
use crate::retry::{self, RetryPolicy};

pub use orderflow_contracts::dead_letter::{DlqCategory, headers};

/// The failure history of a record on its way to the DLQ.
#[derive(Debug, Clone)]
pub struct FailureReport {
    /// Category header.
    pub category: DlqCategory,
    /// Message header.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// First failure.
    pub first_failure_at: DateTime<Utc>,
    /// Last failure.
    pub last_failure_at: DateTime<Utc>,
}

/// Where dead-letter records go.
pub trait DeadLetterSink: Send + Sync + std::fmt::Debug {
    /// The DLQ topic, for logs.
    fn topic(&self) -> &str;

    /// Writes `record` with `report` to the same partition number of the DLQ and
    /// waits for the ack.
    fn write<'a>(
        &'a self,
        record: &'a OwnedMessage,
        report: &'a FailureReport,
    ) -> BoxFuture<'a, Result<(), DlqWriteError>>;
}

/// Writes dead-letter records with an idempotent producer and waits for the ack.
#[derive(Clone)]
pub struct DeadLetterWriter {
    producer: FutureProducer,
    topic: String,
    group: String,
}

impl std::fmt::Debug for DeadLetterWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterWriter")
            .field("topic", &self.topic)
            .finish()
    }
}

/// A dead-letter write that was not acked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("dead-letter write to {topic} failed: {reason}")]
pub struct DlqWriteError {
    /// DLQ topic.
    pub topic: String,
    /// librdkafka's reason.
    pub reason: String,
    /// Retrying cannot help (record too large for the topic, no such partition,
    /// a fatal producer error): the record can never be dead-lettered.
    pub permanent: bool,
}

impl DeadLetterWriter {
    /// A writer to `topic` for `group`. `base` carries the bootstrap servers and
    /// user overrides; idempotence and acks=all are forced on.
    pub fn new(
        base: &ClientConfig,
        topic: impl Into<String>,
        group: impl Into<String>,
        delivery_timeout: Duration,
    ) -> rdkafka::error::KafkaResult<Self> {
        let mut config = base.clone();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            );
        Ok(Self {
            producer: config.create()?,
            topic: topic.into(),
            group: group.into(),
        })
    }

    /// The DLQ topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `record` to the same partition number of the DLQ and waits for the ack.
    pub async fn write(
        &self,
        record: &OwnedMessage,
        report: &FailureReport,
    ) -> Result<(), DlqWriteError> {
        let headers = dlq_headers(record, report, &self.group);
        let mut future = FutureRecord::<[u8], [u8]>::to(&self.topic)
            .partition(record.partition())
            .headers(headers);
        if let Some(key) = record.key() {
            future = future.key(key);
        }
        if let Some(payload) = record.payload() {
            future = future.payload(payload);
        }
        self.producer
            .send(future, Duration::from_secs(5))
            .await
            .map(|_| ())
            .map_err(|(error, _)| DlqWriteError {
                topic: self.topic.clone(),
                reason: error.to_string(),
                permanent: retry::dead_letter_write_is_permanent(&error),
            })
    }
}

impl DeadLetterSink for DeadLetterWriter {
    fn topic(&self) -> &str {
        DeadLetterWriter::topic(self)
    }

    fn write<'a>(
        &'a self,
        record: &'a OwnedMessage,
        report: &'a FailureReport,
    ) -> BoxFuture<'a, Result<(), DlqWriteError>> {
        DeadLetterWriter::write(self, record, report).boxed()
    }
}

/// Fails start-up when the DLQ topic is missing or has fewer partitions than the
/// source (a dead-letter record keeps its partition number).
pub async fn check_topic(kafka: &KafkaArgs, topic: &str, dlq_topic: &str) -> Result<()> {
    let config = kafka.client_config();
    let (source_name, dlq_name) = (topic.to_owned(), dlq_topic.to_owned());
    let counts = tokio::task::spawn_blocking(move || -> Result<(usize, usize)> {
        let client: BaseConsumer = config.create()?;
        let count = |name: &str| -> Result<usize> {
            let metadata = client.fetch_metadata(Some(name), Duration::from_secs(10))?;
            Ok(metadata
                .topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none())
                .map_or(0, |t| t.partitions().len()))
        };
        Ok((count(&source_name)?, count(&dlq_name)?))
    })
    .await
    .map_err(|e| Error::Startup(format!("metadata task failed: {e}")))??;
    let (source, dead_letter) = counts;
    if dead_letter < source {
        return Err(Error::Startup(format!(
            "dead-letter topic {dlq_topic} has {dead_letter} partitions but {topic} has {source}: create it with at least as many (topics.yaml, `orderflow topics apply`)"
        )));
    }
    Ok(())
}

/// What became of a record handed to the dead-letter topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandOff {
    /// Written and acked; the record is done.
    Written,
    /// The group dead-lettered it before (the ledger has it): not written again,
    /// the record is done.
    AlreadyWritten,
    /// Its partition moved on since it was judged: not written, left to the new owner.
    Fenced,
    /// The write can never succeed: the engine stops, the record stays not done.
    Unrecoverable,
    /// The write or the ledger failed and may succeed later: hand it off again.
    Failed,
}

/// Dead-letters `records` (each with the report saying why) through `sink`,
/// each only while its partition is still owned under the epoch it was received
/// in and only if the group's [`DeadLetterLedger`] does not hold it already, and
/// finishes each record with the engine except the ones to hand off again. The
/// ledger's claim commits after the writes were acked; the ledger is in the
/// database, so the claim waits while `retry`'s breaker is open (or until `token`
/// is cancelled), and a ledger failure is the database's: nothing is written.
pub async fn hand_off(
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

/// The records not settled yet are to be handed off again.
fn failed_unless_settled(outcomes: Vec<Option<HandOff>>) -> Vec<HandOff> {
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(HandOff::Failed))
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

/// The original headers, untouched and in order, followed by the dlq-* headers.
pub fn dlq_headers(record: &OwnedMessage, report: &FailureReport, group: &str) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(original) = record.headers() {
        for header in original.iter() {
            out = out.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    let added = DeadLetterHeaders {
        source_topic: Some(record.topic().to_owned()),
        source_partition: Some(record.partition()),
        source_offset: Some(record.offset()),
        source_timestamp_ms: match record.timestamp() {
            Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => Some(ms),
            Timestamp::NotAvailable => None,
        },
        consumer_group: Some(group.to_owned()),
        category: Some(report.category.as_str().to_owned()),
        message: Some(report.message.clone()),
        attempts: Some(report.attempts),
        first_failure_at: Some(report.first_failure_at),
        last_failure_at: Some(report.last_failure_at),
        service_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        redrive_count: None,
    };
    added.write_to(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_originals_first_and_add_every_dlq_header() {
        let original = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some("00-abc-def-01"),
            })
            .insert(Header {
                key: "event-type",
                value: Some("OrderPaid"),
            });
        let record = OwnedMessage::new(
            Some(b"payload".to_vec()),
            Some(b"order-1".to_vec()),
            "orders".into(),
            Timestamp::CreateTime(1_700_000_000_000),
            3,
            42,
            Some(original),
        );
        let now = Utc::now();
        let report = FailureReport {
            category: DlqCategory::RetriesExhausted,
            message: "boom".into(),
            attempts: 5,
            first_failure_at: now,
            last_failure_at: now,
        };
        let headers = dlq_headers(&record, &report, "g");
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect();
        assert_eq!(pairs[0], ("traceparent".into(), "00-abc-def-01".into()));
        assert_eq!(pairs[1], ("event-type".into(), "OrderPaid".into()));
        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).unwrap().1.clone();
        assert_eq!(get(headers::SOURCE_PARTITION), "3");
        assert_eq!(get(headers::SOURCE_OFFSET), "42");
        assert_eq!(get(headers::SOURCE_TIMESTAMP), "1700000000000");
        assert_eq!(get(headers::ERROR_CATEGORY), "retries-exhausted");
        assert_eq!(get(headers::ATTEMPTS), "5");
        assert_eq!(pairs.len(), 13);
    }
}
