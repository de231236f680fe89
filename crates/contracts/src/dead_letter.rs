//! The dead-letter contract: where a topic's dead letters go and the `dlq-*` headers that
//! say where each came from and why. The consumer writes them; `orderflow dlq`, the
//! verifier and the dashboard's DLQ panel read them, all through [`DeadLetterHeaders`].

use chrono::{DateTime, Utc};
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// Suffix of a dead-letter topic's name.
pub const DLQ_SUFFIX: &str = ".dlq";

/// The dead-letter topic of `topic` unless configured otherwise: `<topic>.dlq`.
pub fn dlq_topic(topic: &str) -> String {
    format!("{topic}{DLQ_SUFFIX}")
}

/// Header names added to a dead-lettered record.
pub mod headers {
    /// Prefix of every dead-letter header: a header of a newer writer is recognised too.
    pub const PREFIX: &str = "dlq-";
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
    /// One of the [`DlqCategory`](super::DlqCategory) names.
    pub const ERROR_CATEGORY: &str = "dlq-error-category";
    /// Human-readable reason.
    pub const ERROR_MESSAGE: &str = "dlq-error-message";
    /// Attempts made (decimal).
    pub const ATTEMPTS: &str = "dlq-attempts";
    /// First failure, RFC 3339.
    pub const FIRST_FAILURE_AT: &str = "dlq-first-failure-at";
    /// Last failure, RFC 3339.
    pub const LAST_FAILURE_AT: &str = "dlq-last-failure-at";
    /// Version of the service that wrote it.
    pub const SERVICE_VERSION: &str = "dlq-service-version";
    /// Times `orderflow dlq redrive` replayed the record (decimal). Redrive sets it on
    /// the replayed record; the consumer keeps it, as every original header, when the
    /// record is dead-lettered again, which is what stops endless redrive loops.
    pub const REDRIVE_COUNT: &str = "dlq-redrive-count";
}

/// Why a record was dead-lettered (the `dlq-error-category` value and metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Poison too large for the dead-letter topic with every header: written with
    /// its original headers (and, if still too large, its value) cut; the message
    /// header starts with the category it had.
    Oversized,
    /// The schema registry kept refusing the lookup of the record's writer schema
    /// (401/403, an answer that does not parse, another 4xx) for longer than the
    /// consumer's `--registry-failure-budget`: the record may be fine, so redrive it
    /// once the registry is mended.
    Registry,
}

impl DlqCategory {
    /// Every category, in the order the docs list them.
    pub const ALL: [DlqCategory; 7] = [
        DlqCategory::Deserialization,
        DlqCategory::Schema,
        DlqCategory::Validation,
        DlqCategory::Processing,
        DlqCategory::RetriesExhausted,
        DlqCategory::Oversized,
        DlqCategory::Registry,
    ];

    /// The header value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DlqCategory::Deserialization => "deserialization",
            DlqCategory::Schema => "schema",
            DlqCategory::Validation => "validation",
            DlqCategory::Processing => "processing",
            DlqCategory::RetriesExhausted => "retries-exhausted",
            DlqCategory::Oversized => "oversized",
            DlqCategory::Registry => "registry",
        }
    }

    /// The category named `name` (as [`as_str`](Self::as_str) spells it).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// The `dlq-*` headers of a dead-letter record, typed. Reading is lenient (a header that
/// is missing or does not parse is `None`: records of older versions and of other
/// writers are read too); writing writes every header but the redrive count, which only
/// redrive sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterHeaders {
    /// `dlq-source-topic`.
    pub source_topic: Option<String>,
    /// `dlq-source-partition`.
    pub source_partition: Option<i32>,
    /// `dlq-source-offset`.
    pub source_offset: Option<i64>,
    /// `dlq-source-timestamp`, ms since the epoch.
    pub source_timestamp_ms: Option<i64>,
    /// `dlq-consumer-group`.
    pub consumer_group: Option<String>,
    /// `dlq-error-category`, as written (a newer writer may use a category this build
    /// does not know; [`DlqCategory::parse`] types it).
    pub category: Option<String>,
    /// `dlq-error-message`.
    pub message: Option<String>,
    /// `dlq-attempts`.
    pub attempts: Option<u32>,
    /// `dlq-first-failure-at`.
    pub first_failure_at: Option<DateTime<Utc>>,
    /// `dlq-last-failure-at`.
    pub last_failure_at: Option<DateTime<Utc>>,
    /// `dlq-service-version`.
    pub service_version: Option<String>,
    /// `dlq-redrive-count`.
    pub redrive_count: Option<u32>,
}

impl DeadLetterHeaders {
    /// Reads the `dlq-*` headers among `pairs` (name, value); of repeated names the last
    /// wins, as it is the most recent write of that header.
    pub fn read<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Self {
        let mut read = Self::default();
        for (name, value) in pairs {
            let text = value.map(|v| String::from_utf8_lossy(v).into_owned());
            let time = |text: &Option<String>| {
                text.as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
                    .map(|t| t.with_timezone(&Utc))
            };
            match name {
                headers::SOURCE_TOPIC => read.source_topic = text,
                headers::SOURCE_PARTITION => read.source_partition = number(text.as_deref()),
                headers::SOURCE_OFFSET => read.source_offset = number(text.as_deref()),
                headers::SOURCE_TIMESTAMP => read.source_timestamp_ms = number(text.as_deref()),
                headers::CONSUMER_GROUP => read.consumer_group = text,
                headers::ERROR_CATEGORY => read.category = text,
                headers::ERROR_MESSAGE => read.message = text,
                headers::ATTEMPTS => read.attempts = number(text.as_deref()),
                headers::FIRST_FAILURE_AT => read.first_failure_at = time(&text),
                headers::LAST_FAILURE_AT => read.last_failure_at = time(&text),
                headers::SERVICE_VERSION => read.service_version = text,
                headers::REDRIVE_COUNT => read.redrive_count = number(text.as_deref()),
                _ => {}
            }
        }
        read
    }

    /// Reads the `dlq-*` headers of a Kafka record.
    pub fn from_kafka(headers: &impl Headers) -> Self {
        Self::read(headers.iter().map(|h| (h.key, h.value)))
    }

    /// The source record's position (partition, offset), when both headers are there.
    pub fn source_position(&self) -> Option<(i32, i64)> {
        self.source_partition.zip(self.source_offset)
    }

    /// The headers to write, in order, as (name, value); a timestamp that is unknown is
    /// written empty, the redrive count only when set.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let number = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
        let time = |value: Option<DateTime<Utc>>| value.map(|t| t.to_rfc3339()).unwrap_or_default();
        let mut pairs = vec![
            (headers::SOURCE_TOPIC, text(&self.source_topic)),
            (
                headers::SOURCE_PARTITION,
                number(self.source_partition.map(i64::from)),
            ),
            (headers::SOURCE_OFFSET, number(self.source_offset)),
            (headers::SOURCE_TIMESTAMP, number(self.source_timestamp_ms)),
            (headers::CONSUMER_GROUP, text(&self.consumer_group)),
            (headers::ERROR_CATEGORY, text(&self.category)),
            (headers::ERROR_MESSAGE, text(&self.message)),
            (headers::ATTEMPTS, number(self.attempts.map(i64::from))),
            (headers::FIRST_FAILURE_AT, time(self.first_failure_at)),
            (headers::LAST_FAILURE_AT, time(self.last_failure_at)),
            (headers::SERVICE_VERSION, text(&self.service_version)),
        ];
        if let Some(count) = self.redrive_count {
            pairs.push((headers::REDRIVE_COUNT, count.to_string()));
        }
        pairs
    }

    /// Appends these headers to `out` (the record's original headers, kept first).
    pub fn write_to(&self, mut out: OwnedHeaders) -> OwnedHeaders {
        for (key, value) in self.pairs() {
            out = out.insert(Header {
                key,
                value: Some(value.as_bytes()),
            });
        }
        out
    }
}

/// A decimal header value, `None` when it does not parse.
fn number<N: std::str::FromStr>(text: Option<&str>) -> Option<N> {
    text.and_then(|t| t.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dead_letter_topic_is_the_topic_with_a_suffix() {
        assert_eq!(dlq_topic("orders"), "orders.dlq");
        let written = DeadLetterHeaders::default().pairs();
        assert!(
            written
                .iter()
                .all(|(name, _)| name.starts_with(headers::PREFIX))
        );
    }

    #[test]
    fn what_is_written_reads_back() {
        let now = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678+00:00")
            .unwrap()
            .with_timezone(&Utc);
        let written = DeadLetterHeaders {
            source_topic: Some("orders".into()),
            source_partition: Some(3),
            source_offset: Some(42),
            source_timestamp_ms: None,
            consumer_group: Some("g".into()),
            category: Some(DlqCategory::Schema.as_str().into()),
            message: Some("unknown branch OrderRefunded".into()),
            attempts: Some(1),
            first_failure_at: Some(now),
            last_failure_at: Some(now),
            service_version: Some("0.1.0".into()),
            redrive_count: None,
        };
        let headers = written.write_to(OwnedHeaders::new());
        assert_eq!(headers.count(), 11);
        let read = DeadLetterHeaders::from_kafka(&headers);
        assert_eq!(read, written);
        assert_eq!(read.source_position(), Some((3, 42)));
        assert_eq!(
            read.category.as_deref().and_then(DlqCategory::parse),
            Some(DlqCategory::Schema)
        );
    }

    #[test]
    fn the_last_of_repeated_headers_wins_and_garbage_is_none() {
        let read = DeadLetterHeaders::read([
            (headers::ATTEMPTS, Some(&b"1"[..])),
            (headers::ATTEMPTS, Some(&b" 4 "[..])),
            (headers::SOURCE_OFFSET, Some(&b"x"[..])),
            (headers::SOURCE_TOPIC, None),
            ("traceparent", Some(&b"00-a-b-01"[..])),
        ]);
        assert_eq!(read.attempts, Some(4));
        assert_eq!(read.source_offset, None);
        assert_eq!(read.source_topic, None);
        assert_eq!(DlqCategory::parse("nope"), None);
        for category in DlqCategory::ALL {
            assert_eq!(DlqCategory::parse(category.as_str()), Some(category));
        }
    }
}
