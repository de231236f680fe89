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
use orderflow_runtime::kafka::KafkaArgs;
use orderflow_schemas::ErrorCategory;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Timestamp};

use crate::error::{Error, Result};

/// Header names added to a dead-lettered record.
pub mod headers {
    /// Source topic.
    pub const SOURCE_TOPIC: &str = "dlq-source-topic";
    /// Source partition (decimal).
    pub const SOURCE_PARTITION: &str = "dlq-source-partition";
    /// Source offset (decimal).
    pub const SOURCE_OFFSET: &str = "dlq-source-offset";
    /// Source record timestamp, milliseconds since the epoch (empty when unknown).
    pub const SOURCE_TIMESTAMP: &str = "dlq-source-timestamp";
    /// Consumer group that gave up on the record.
    pub const CONSUMER_GROUP: &str = "dlq-consumer-group";
    /// One of deserialization, schema, validation, processing, retries-exhausted.
    pub const ERROR_CATEGORY: &str = "dlq-error-category";
    /// Human-readable reason.
    pub const ERROR_MESSAGE: &str = "dlq-error-message";
    /// Attempts made (decimal).
    pub const ATTEMPTS: &str = "dlq-attempts";
    /// First failure, RFC 3339.
    pub const FIRST_FAILURE_AT: &str = "dlq-first-failure-at";
    /// Last failure, RFC 3339.
    pub const LAST_FAILURE_AT: &str = "dlq-last-failure-at";
    /// Version of order-consumer that wrote it.
    pub const SERVICE_VERSION: &str = "dlq-service-version";
    /// Times `orderflow dlq redrive` replayed the record (decimal). Redrive sets it on
    /// the replayed record; the consumer keeps it, as every original header, when the
    /// record is dead-lettered again, which is what stops endless redrive loops.
    pub const REDRIVE_COUNT: &str = "dlq-redrive-count";
}

/// Why a record was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DlqCategory {
    /// Not decodable (not wire format, bad Avro body, no value).
    Deserialization,
    /// Unknown schema id or a writer schema that cannot be read.
    Schema,
    /// Decoded but breaks a business or lifecycle rule.
    Validation,
    /// A handler error known to be permanent.
    Processing,
    /// A handler error of unknown kind that stayed after `--max-attempts`.
    RetriesExhausted,
}

impl DlqCategory {
    /// The header value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DlqCategory::Deserialization => "deserialization",
            DlqCategory::Schema => "schema",
            DlqCategory::Validation => "validation",
            DlqCategory::Processing => "processing",
            DlqCategory::RetriesExhausted => "retries-exhausted",
        }
    }

    /// Maps the schema crate's category.
    pub fn from_schema_category(category: ErrorCategory) -> Self {
        match category {
            ErrorCategory::Deserialization => DlqCategory::Deserialization,
            ErrorCategory::Schema => DlqCategory::Schema,
            ErrorCategory::Validation => DlqCategory::Validation,
        }
    }
}

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
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Writes `record` to the same partition number of the DLQ and waits for the ack.
    pub(crate) async fn write(
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
                permanent: dead_letter_write_is_permanent(&error),
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
pub(crate) fn dlq_headers(
    record: &OwnedMessage,
    report: &FailureReport,
    group: &str,
) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(original) = record.headers() {
        for header in original.iter() {
            out = out.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    let timestamp = match record.timestamp() {
        Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => ms.to_string(),
        Timestamp::NotAvailable => String::new(),
    };
    let added = [
        (headers::SOURCE_TOPIC, record.topic().to_owned()),
        (headers::SOURCE_PARTITION, record.partition().to_string()),
        (headers::SOURCE_OFFSET, record.offset().to_string()),
        (headers::SOURCE_TIMESTAMP, timestamp),
        (headers::CONSUMER_GROUP, group.to_owned()),
        (headers::ERROR_CATEGORY, report.category.as_str().to_owned()),
        (headers::ERROR_MESSAGE, report.message.clone()),
        (headers::ATTEMPTS, report.attempts.to_string()),
        (
            headers::FIRST_FAILURE_AT,
            report.first_failure_at.to_rfc3339(),
        ),
        (
            headers::LAST_FAILURE_AT,
            report.last_failure_at.to_rfc3339(),
        ),
        (
            headers::SERVICE_VERSION,
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
    ];
    for (key, value) in added {
        out = out.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    out
}

/// Whether a dead-letter write failed in a way retrying cannot help: the
/// record can never be dead-lettered.
pub(crate) fn dead_letter_write_is_permanent(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InvalidArgument
                | RDKafkaErrorCode::Fatal
        )
    )
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
