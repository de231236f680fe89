//! The dead-letter topic: what cannot be processed is written there with its
//! original key, value and headers plus headers saying where it came from and why.
//! When a record is handed over (only while this worker still owns its partition,
//! once per source record and group) is the worker's
//! ([`hand_off`](crate::worker::hand_off)), with the
//! [`dead_letter_ledger`](crate::store::dead_letter_ledger) in the store.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use orderflow_contracts::dead_letter::DeadLetterHeaders;
use orderflow_contracts::produce_error::ProduceFailure;
use orderflow_runtime::kafka::KafkaArgs;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Timestamp};

use self::possibly_written::PossiblyWritten;
use crate::error::{Error, Result};

pub use orderflow_contracts::dead_letter::{DlqCategory, headers};

/// The failure history of a record on its way to the DLQ.
#[derive(Debug, Clone)]
pub(crate) struct FailureReport {
    /// Category header.
    pub(crate) category: DlqCategory,
    /// Message header.
    pub(crate) message: String,
    /// Attempts made.
    pub(crate) attempts: u32,
    /// First failure.
    pub(crate) first_failure_at: DateTime<Utc>,
    /// Last failure.
    pub(crate) last_failure_at: DateTime<Utc>,
}

/// Where dead-letter records go.
pub(crate) trait DeadLetterSink: Send + Sync + std::fmt::Debug {
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
pub(crate) struct DeadLetterWriter {
    producer: FutureProducer,
    topic: String,
    group: String,
    possibly_written: std::sync::Arc<PossiblyWritten>,
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
pub(crate) struct DlqWriteError {
    /// DLQ topic.
    pub(crate) topic: String,
    /// librdkafka's reason.
    pub(crate) reason: String,
    /// Retrying cannot help (record too large for the topic, no such partition,
    /// a fatal producer error): the record can never be dead-lettered.
    pub(crate) permanent: bool,
}

impl DeadLetterWriter {
    /// A writer to `topic` for `group`. `base` carries the bootstrap servers and
    /// user overrides; idempotence and acks=all are forced on.
    pub(crate) fn new(
        base: &ClientConfig,
        topic: impl Into<String>,
        group: impl Into<String>,
        delivery_timeout: Duration,
    ) -> rdkafka::error::KafkaResult<Self> {
        let mut config = base.clone();
        // librdkafka refuses records over 1000000 bytes itself, below Kafka's own
        // topic limit (1048588): a source record near 1 MB would fail here once the
        // dlq-* headers are added although the DLQ topic takes it. The topic's
        // limit is the broker's to apply; what it refuses is cut to fit (`Fit`).
        if config.get("message.max.bytes").is_none() {
            config.set("message.max.bytes", DLQ_PRODUCER_MAX_BYTES.to_string());
        }
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            );
        let group = group.into();
        Ok(Self {
            producer: config.create()?,
            possibly_written: std::sync::Arc::new(PossiblyWritten::new(base, &group)?),
            topic: topic.into(),
            group,
        })
    }

    /// The DLQ topic.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `record` to the same partition number of the DLQ and waits for the ack.
    /// A record too large for the DLQ with every header is written again with less
    /// ([`Fit`]): a poison record must not stop the group.
    pub(crate) async fn write(
        &self,
        record: &OwnedMessage,
        report: &FailureReport,
    ) -> Result<(), DlqWriteError> {
        if let Some(since) = self.possibly_written.since(record) {
            match self
                .possibly_written
                .find(&self.topic, &self.group, record, since)
                .await
            {
                Ok(true) => {
                    tracing::info!(topic = record.topic(), partition = record.partition(),
                        offset = record.offset(), dlq_topic = %self.topic,
                        "dead-letter write that timed out was persisted; not written again");
                    self.possibly_written.forget(record);
                    return Ok(());
                }
                Ok(false) => {}
                Err(error) => {
                    return Err(DlqWriteError {
                        topic: self.topic.clone(),
                        reason: format!(
                            "cannot tell whether an earlier attempt was persisted: {error}"
                        ),
                        permanent: false,
                    });
                }
            }
        }
        let started = Utc::now().timestamp_millis();
        let result = self.write_fitting(record, report).await;
        match &result {
            Ok(()) => self.possibly_written.forget(record),
            Err(error) if !error.permanent => self.possibly_written.remember(record, started),
            Err(_) => {}
        }
        result
    }

    /// Writes `record`, with less of it when the DLQ refuses it for its size.
    async fn write_fitting(
        &self,
        record: &OwnedMessage,
        report: &FailureReport,
    ) -> Result<(), DlqWriteError> {
        let mut fit = Fit::Whole;
        loop {
            let error = match self.send(record, report, fit).await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            match fit.smaller() {
                Some(smaller) if is_too_large(&error) => {
                    tracing::warn!(topic = record.topic(), partition = record.partition(),
                        offset = record.offset(), dlq_topic = %self.topic, %error, fit = ?smaller,
                        "dead-letter record too large; writing it with less");
                    fit = smaller;
                }
                _ => {
                    return Err(DlqWriteError {
                        topic: self.topic.clone(),
                        reason: error.to_string(),
                        permanent: dead_letter_write_is_permanent(&error),
                    });
                }
            }
        }
    }

    async fn send(
        &self,
        record: &OwnedMessage,
        report: &FailureReport,
        fit: Fit,
    ) -> Result<(), KafkaError> {
        let headers = dlq_headers(record, report, &self.group, fit);
        let mut future = FutureRecord::<[u8], [u8]>::to(&self.topic)
            .partition(record.partition())
            .headers(headers);
        if let Some(key) = record.key() {
            future = future.key(key);
        }
        if let Some(payload) = record.payload()
            && fit != Fit::ValueDropped
        {
            future = future.payload(payload);
        }
        self.producer
            .send(future, Duration::from_secs(5))
            .await
            .map(|_| ())
            .map_err(|(error, _)| error)
    }
}

/// How much of a record a dead-letter write carries. A record near the size limit
/// fits its own topic but not the DLQ once the dlq-* headers are added; it is then
/// written with less rather than never (never would stop the group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// The original headers, the value and every dlq-* header.
    Whole,
    /// The original headers cut (but the redrive count, which stops redrive
    /// loops), the message shortened, the category [`DlqCategory::Oversized`];
    /// the value untouched.
    HeadersCut,
    /// The value dropped too: it stays in the source topic at the position the
    /// headers name, until the topic's retention removes it.
    ValueDropped,
}

impl Fit {
    fn smaller(self) -> Option<Fit> {
        match self {
            Fit::Whole => Some(Fit::HeadersCut),
            Fit::HeadersCut => Some(Fit::ValueDropped),
            Fit::ValueDropped => None,
        }
    }
}

/// Whether the producer or the broker refused a record for its size.
fn is_too_large(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge)
    )
}

/// The dead-letter producer's own size limit: far above any topic's, so the
/// topic's `max.message.bytes` decides.
const DLQ_PRODUCER_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Characters of the error message kept when a record's headers are cut.
const CUT_MESSAGE_CHARS: usize = 512;

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
pub(crate) async fn check_topic(kafka: &KafkaArgs, topic: &str, dlq_topic: &str) -> Result<()> {
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

/// The original headers, untouched and in order, followed by the dlq-* headers.
/// With a [`Fit`] smaller than whole, the original headers but the redrive count
/// are left out and the category is [`DlqCategory::Oversized`].
pub(crate) fn dlq_headers(
    record: &OwnedMessage,
    report: &FailureReport,
    group: &str,
    fit: Fit,
) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(original) = record.headers() {
        for header in original.iter() {
            if fit != Fit::Whole && header.key != headers::REDRIVE_COUNT {
                continue;
            }
            out = out.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    let (category, message) = match fit {
        Fit::Whole => (report.category, report.message.clone()),
        Fit::HeadersCut | Fit::ValueDropped => {
            let cut = if fit == Fit::HeadersCut {
                "its original headers".to_owned()
            } else {
                let bytes = record.payload().map_or(0, <[u8]>::len);
                format!(
                    "its original headers and its value ({bytes} bytes; read it at the source position)"
                )
            };
            let message: String = report.message.chars().take(CUT_MESSAGE_CHARS).collect();
            (
                DlqCategory::Oversized,
                format!(
                    "{}: {message} (too large for the dead-letter topic: {cut} cut)",
                    report.category.as_str()
                ),
            )
        }
    };
    let added = DeadLetterHeaders {
        source_topic: Some(record.topic().to_owned()),
        source_partition: Some(record.partition()),
        source_offset: Some(record.offset()),
        source_timestamp_ms: match record.timestamp() {
            Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => Some(ms),
            Timestamp::NotAvailable => None,
        },
        consumer_group: Some(group.to_owned()),
        category: Some(category.as_str().to_owned()),
        message: Some(message),
        attempts: Some(report.attempts),
        first_failure_at: Some(report.first_failure_at),
        last_failure_at: Some(report.last_failure_at),
        service_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        redrive_count: None,
    };
    added.write_to(out)
}

/// Whether a dead-letter write failed in a way retrying cannot help: the
/// record can never be dead-lettered.
pub(crate) fn dead_letter_write_is_permanent(error: &KafkaError) -> bool {
    !ProduceFailure::of(error).retry_can_help()
}

mod possibly_written;
#[cfg(test)]
mod possibly_written_tests;

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
        let headers = dlq_headers(&record, &report, "g", Fit::Whole);
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

    #[test]
    fn cut_headers_keep_the_redrive_count_and_say_why() {
        let original = OwnedHeaders::new()
            .insert(Header {
                key: "big",
                value: Some(&[b'h'; 4096][..]),
            })
            .insert(Header {
                key: headers::REDRIVE_COUNT,
                value: Some("2"),
            });
        let record = OwnedMessage::new(
            Some(b"payload".to_vec()),
            Some(b"order-1".to_vec()),
            "orders".into(),
            Timestamp::NotAvailable,
            0,
            7,
            Some(original),
        );
        let now = Utc::now();
        let report = FailureReport {
            category: DlqCategory::Validation,
            message: "m".repeat(10_000),
            attempts: 1,
            first_failure_at: now,
            last_failure_at: now,
        };
        for fit in [Fit::HeadersCut, Fit::ValueDropped] {
            let headers = dlq_headers(&record, &report, "g", fit);
            let get = |k: &str| {
                headers
                    .iter()
                    .find(|h| h.key == k)
                    .map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
            };
            assert_eq!(get("big"), None);
            assert_eq!(get(headers::REDRIVE_COUNT).as_deref(), Some("2"));
            assert_eq!(get(headers::ERROR_CATEGORY).as_deref(), Some("oversized"));
            let message = get(headers::ERROR_MESSAGE).unwrap();
            assert!(message.starts_with("validation: "), "{message}");
            assert!(message.len() < 1_000, "{}", message.len());
        }
    }

    #[test]
    fn writes_that_can_never_succeed_are_permanent() {
        let produce = |code| KafkaError::MessageProduction(code);
        assert!(dead_letter_write_is_permanent(&produce(
            RDKafkaErrorCode::MessageSizeTooLarge
        )));
        assert!(dead_letter_write_is_permanent(&produce(
            RDKafkaErrorCode::UnknownPartition
        )));
        assert!(dead_letter_write_is_permanent(&produce(
            RDKafkaErrorCode::Fatal
        )));
        assert!(!dead_letter_write_is_permanent(&produce(
            RDKafkaErrorCode::MessageTimedOut
        )));
        assert!(!dead_letter_write_is_permanent(&produce(
            RDKafkaErrorCode::NotEnoughReplicas
        )));
        assert!(!dead_letter_write_is_permanent(&produce(
            RDKafkaErrorCode::AllBrokersDown
        )));
    }
}
