//! One dead-letter record as read from the DLQ topic, with typed access to the
//! `dlq-*` headers the consumer wrote.

use orderflow_contracts::dead_letter::DeadLetterHeaders;
use rdkafka::Message;
use rdkafka::message::Headers;

/// One header of a record; Kafka allows repeated names and null values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header name.
    pub key: String,
    /// Header value; `None` is a null value (different from empty).
    pub value: Option<Vec<u8>>,
}

impl RecordHeader {
    /// A header with a UTF-8 value.
    pub fn text(key: impl Into<String>, value: impl AsRef<str>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.as_ref().as_bytes().to_vec()),
        }
    }
}

/// A record read from a DLQ topic: where it sits, its bytes and all its headers in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlqRecord {
    /// Partition in the DLQ topic.
    pub partition: i32,
    /// Offset in the DLQ partition.
    pub offset: i64,
    /// Record key (the order ID), untouched.
    pub key: Option<Vec<u8>>,
    /// Record value, the original bytes, untouched.
    pub value: Option<Vec<u8>>,
    /// Every header, original ones first, in the order they were written.
    pub headers: Vec<RecordHeader>,
}

impl DlqRecord {
    /// Copies a consumed message.
    pub fn from_message(message: &impl Message) -> Self {
        let headers = message
            .headers()
            .map(|found| {
                found
                    .iter()
                    .map(|header| RecordHeader {
                        key: header.key.to_owned(),
                        value: header.value.map(<[u8]>::to_vec),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        }
    }

    /// The value of the last header named `name`, as UTF-8 (lossy), if present and not null.
    /// The last one wins: it is the most recent write of that header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .rev()
            .find(|header| header.key == name)
            .and_then(|header| header.value.as_deref())
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }

    /// The `dlq-*` headers, typed (the last of a repeated name wins).
    pub fn dead_letter_headers(&self) -> DeadLetterHeaders {
        DeadLetterHeaders::read(
            self.headers
                .iter()
                .map(|header| (header.key.as_str(), header.value.as_deref())),
        )
    }

    /// `dlq-source-topic`, if present and non-empty.
    pub fn source_topic(&self) -> Option<String> {
        self.dead_letter_headers()
            .source_topic
            .filter(|topic| !topic.trim().is_empty())
    }

    /// `dlq-source-partition`, if present and a number.
    pub fn source_partition(&self) -> Option<i32> {
        self.dead_letter_headers().source_partition
    }

    /// `dlq-source-offset`, if present and a number.
    pub fn source_offset(&self) -> Option<i64> {
        self.dead_letter_headers().source_offset
    }

    /// `dlq-error-category`, if present.
    pub fn category(&self) -> Option<String> {
        self.dead_letter_headers().category
    }

    /// `dlq-error-message`, if present.
    pub fn error_message(&self) -> Option<String> {
        self.dead_letter_headers().message
    }

    /// `dlq-attempts`, if present and a number.
    pub fn attempts(&self) -> Option<u32> {
        self.dead_letter_headers().attempts
    }

    /// The key as text (order IDs are UTF-8), lossy.
    pub fn key_text(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use orderflow_contracts::dead_letter::headers;
    use rdkafka::Timestamp;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};

    use super::*;

    #[test]
    fn copies_a_message_and_reads_the_last_header_of_a_name() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some("00-a-b-01"),
            })
            .insert(Header {
                key: "nullable",
                value: None::<&[u8]>,
            })
            .insert(Header {
                key: headers::SOURCE_TOPIC,
                value: Some("orders"),
            })
            .insert(Header {
                key: headers::SOURCE_PARTITION,
                value: Some("2"),
            })
            .insert(Header {
                key: headers::ATTEMPTS,
                value: Some("1"),
            })
            .insert(Header {
                key: headers::ATTEMPTS,
                value: Some("4"),
            });
        let message = OwnedMessage::new(
            Some(vec![0, 1, 2]),
            Some(b"order-7".to_vec()),
            "orders.dlq".into(),
            Timestamp::NotAvailable,
            2,
            17,
            Some(headers),
        );
        let record = DlqRecord::from_message(&message);
        assert_eq!((record.partition, record.offset), (2, 17));
        assert_eq!(record.value.as_deref(), Some(&[0u8, 1, 2][..]));
        assert_eq!(record.key_text().as_deref(), Some("order-7"));
        assert_eq!(record.headers.len(), 6);
        assert_eq!(record.headers[1].value, None);
        assert_eq!(record.source_topic().as_deref(), Some("orders"));
        assert_eq!(record.source_partition(), Some(2));
        assert_eq!(record.attempts(), Some(4));
        assert_eq!(record.source_offset(), None);
        assert_eq!(record.category(), None);
    }
}
