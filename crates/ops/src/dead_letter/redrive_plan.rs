//! What replaying one DLQ record means: where it goes, which headers it carries, and
//! whether it has been replayed too often already.

use std::collections::BTreeSet;

use orderflow_contracts::dead_letter::{DLQ_SUFFIX, headers};

use super::error::{DeadLetterError, Result};
use super::record::{DlqRecord, RecordHeader};

/// How many times a record has been replayed from a DLQ; named with the consumer's
/// other dead-letter headers ([`orderflow_contracts::dead_letter::headers::REDRIVE_COUNT`]).
pub const REDRIVE_COUNT_HEADER: &str = orderflow_contracts::dead_letter::headers::REDRIVE_COUNT;

/// The bookkeeping headers the consumer adds when it dead-letters a record.
const CONSUMER_BOOKKEEPING: [&str; 11] = [
    headers::SOURCE_TOPIC,
    headers::SOURCE_PARTITION,
    headers::SOURCE_OFFSET,
    headers::SOURCE_TIMESTAMP,
    headers::CONSUMER_GROUP,
    headers::ERROR_CATEGORY,
    headers::ERROR_MESSAGE,
    headers::ATTEMPTS,
    headers::FIRST_FAILURE_AT,
    headers::LAST_FAILURE_AT,
    headers::SERVICE_VERSION,
];

/// Prefix shared by every DLQ header; a header the consumer adds later is stripped too.
const DLQ_HEADER_PREFIX: &str = headers::PREFIX;

/// Whether `name` is DLQ bookkeeping (dropped when replaying) rather than an original header.
pub fn is_bookkeeping(name: &str) -> bool {
    CONSUMER_BOOKKEEPING.contains(&name) || name.starts_with(DLQ_HEADER_PREFIX)
}

/// The topics a redrive may write to: the DLQ's own source topic (its name without
/// the `.dlq` suffix) and the topics an operator lists with `--allow-topic`. Anyone who
/// can write to the DLQ can set `dlq-source-topic`; the header alone never decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTopics {
    topics: BTreeSet<String>,
}

impl AllowedTopics {
    /// The allow-list of a redrive from `dlq_topic`, widened by `extra`. A DLQ whose
    /// name does not end in `.dlq` has no implied source: `extra` must name one.
    pub fn for_dlq(dlq_topic: &str, extra: &[String]) -> Result<Self> {
        let mut topics: BTreeSet<String> = extra
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        if let Some(source) = dlq_topic.strip_suffix(DLQ_SUFFIX).filter(|s| !s.is_empty()) {
            topics.insert(source.to_owned());
        }
        if topics.is_empty() {
            return Err(DeadLetterError::InvalidArguments(format!(
                "{dlq_topic} does not end in {DLQ_SUFFIX}, so its source topic is unknown: \
                 name the topics a redrive may write to with --allow-topic"
            )));
        }
        Ok(Self { topics })
    }

    /// Whether a replay may go to `topic`.
    pub fn allows(&self, topic: &str) -> bool {
        self.topics.contains(topic)
    }

    /// The allowed topics, comma-separated, for messages.
    pub fn describe(&self) -> String {
        self.topics.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// A record ready to be produced to its source topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// The source topic, from `dlq-source-topic`.
    pub topic: String,
    /// The source partition, from `dlq-source-partition`, when the header is valid.
    pub partition: Option<i32>,
    /// The original key.
    pub key: Option<Vec<u8>>,
    /// The original value bytes.
    pub value: Option<Vec<u8>>,
    /// The original headers in order, then `dlq-redrive-count`.
    pub headers: Vec<RecordHeader>,
    /// The redrive count this replay carries (previous count + 1).
    pub redrive_count: u32,
}

/// Why a selected record is not replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The record was already replayed `count` times, at or above `--max-redrives`.
    MaxRedrives {
        /// Replays so far.
        count: u32,
        /// The limit.
        max: u32,
    },
    /// No `dlq-source-topic` header: there is nowhere to send it.
    NoSourceTopic,
    /// The `dlq-redrive-count` header is not a number; replaying could loop forever.
    InvalidRedriveCount {
        /// The header as found.
        raw: String,
    },
    /// `dlq-source-topic` names a topic outside the allow-list (a forged or foreign
    /// record): replaying it would write where the operator did not choose.
    TopicNotAllowed {
        /// The topic the header names.
        topic: String,
        /// The allowed topics, comma-separated.
        allowed: String,
    },
    /// An earlier run already handled this record (below the redrive cursor); `--again`
    /// replays it anyway.
    AlreadyRedriven,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::MaxRedrives { count, max } => {
                write!(f, "already redriven {count} times (--max-redrives {max})")
            }
            SkipReason::NoSourceTopic => write!(f, "no {} header", headers::SOURCE_TOPIC),
            SkipReason::InvalidRedriveCount { raw } => {
                write!(f, "{REDRIVE_COUNT_HEADER} is not a number: {raw:?}")
            }
            SkipReason::TopicNotAllowed { topic, allowed } => write!(
                f,
                "refused: {} names {topic:?}, not an allowed topic ({allowed}; widen with --allow-topic)",
                headers::SOURCE_TOPIC
            ),
            SkipReason::AlreadyRedriven => {
                write!(
                    f,
                    "already handled by an earlier redrive (--again replays it)"
                )
            }
        }
    }
}

/// The outcome of planning one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveDecision {
    /// Produce this.
    Replay(Redrive),
    /// Leave it in the DLQ, for this reason.
    Skip(SkipReason),
}

/// The record's redrive count: 0 without the header, an error text when it is not a number.
pub fn redrive_count(record: &DlqRecord) -> Result<u32, String> {
    match record.header(REDRIVE_COUNT_HEADER) {
        None => Ok(0),
        Some(raw) => raw.trim().parse().map_err(|_| raw),
    }
}

/// The headers a replay carries: the originals in order, without DLQ bookkeeping, plus
/// `dlq-redrive-count: next_count`.
pub fn replay_headers(record: &DlqRecord, next_count: u32) -> Vec<RecordHeader> {
    let mut out: Vec<RecordHeader> = record
        .headers
        .iter()
        .filter(|header| !is_bookkeeping(&header.key))
        .cloned()
        .collect();
    out.push(RecordHeader::text(
        REDRIVE_COUNT_HEADER,
        next_count.to_string(),
    ));
    out
}

/// Decides whether and how `record` is replayed, given `--max-redrives` and the topics
/// a replay may go to.
pub fn plan_redrive(
    record: &DlqRecord,
    max_redrives: u32,
    allowed: &AllowedTopics,
) -> RedriveDecision {
    let Some(topic) = record.source_topic() else {
        return RedriveDecision::Skip(SkipReason::NoSourceTopic);
    };
    if !allowed.allows(&topic) {
        return RedriveDecision::Skip(SkipReason::TopicNotAllowed {
            topic,
            allowed: allowed.describe(),
        });
    }
    let count = match redrive_count(record) {
        Ok(count) => count,
        Err(raw) => return RedriveDecision::Skip(SkipReason::InvalidRedriveCount { raw }),
    };
    if count >= max_redrives {
        return RedriveDecision::Skip(SkipReason::MaxRedrives {
            count,
            max: max_redrives,
        });
    }
    let next = count + 1;
    RedriveDecision::Replay(Redrive {
        topic,
        partition: record.source_partition().filter(|p| *p >= 0),
        key: record.key.clone(),
        value: record.value.clone(),
        headers: replay_headers(record, next),
        redrive_count: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_lettered(extra: &[(&str, &str)]) -> DlqRecord {
        let mut headers = vec![
            RecordHeader::text("traceparent", "00-abc-def-01"),
            RecordHeader {
                key: "event-type".into(),
                value: None,
            },
        ];
        headers.extend(extra.iter().map(|(k, v)| RecordHeader::text(*k, v)));
        for name in CONSUMER_BOOKKEEPING {
            let value = match name {
                n if n == headers::SOURCE_TOPIC => "orders",
                n if n == headers::SOURCE_PARTITION => "4",
                _ => "x",
            };
            headers.push(RecordHeader::text(name, value));
        }
        DlqRecord {
            partition: 4,
            offset: 8,
            key: Some(b"order-1".to_vec()),
            value: Some(vec![0, 0, 0, 0, 7, 42]),
            headers,
        }
    }

    #[test]
    fn a_first_redrive_keeps_originals_strips_bookkeeping_and_counts_one() {
        let record = dead_lettered(&[]);
        let RedriveDecision::Replay(redrive) = plan_redrive(&record, 3, &orders()) else {
            panic!("expected a replay");
        };
        assert_eq!(redrive.topic, "orders");
        assert_eq!(redrive.partition, Some(4));
        assert_eq!(redrive.key, record.key);
        assert_eq!(redrive.value, record.value);
        assert_eq!(redrive.redrive_count, 1);
        assert_eq!(
            redrive.headers,
            vec![
                RecordHeader::text("traceparent", "00-abc-def-01"),
                RecordHeader {
                    key: "event-type".into(),
                    value: None
                },
                RecordHeader::text(REDRIVE_COUNT_HEADER, "1"),
            ]
        );
    }

    #[test]
    fn the_count_grows_from_the_existing_header_and_stops_at_the_max() {
        let once = dead_lettered(&[(REDRIVE_COUNT_HEADER, "2")]);
        let RedriveDecision::Replay(redrive) = plan_redrive(&once, 3, &orders()) else {
            panic!("expected a replay");
        };
        assert_eq!(redrive.redrive_count, 3);
        let counts: Vec<_> = redrive
            .headers
            .iter()
            .filter(|h| h.key == REDRIVE_COUNT_HEADER)
            .collect();
        assert_eq!(counts, vec![&RecordHeader::text(REDRIVE_COUNT_HEADER, "3")]);

        let at_max = dead_lettered(&[(REDRIVE_COUNT_HEADER, "3")]);
        assert_eq!(
            plan_redrive(&at_max, 3, &orders()),
            RedriveDecision::Skip(SkipReason::MaxRedrives { count: 3, max: 3 })
        );
        assert!(matches!(
            plan_redrive(&dead_lettered(&[]), 0, &orders()),
            RedriveDecision::Skip(SkipReason::MaxRedrives { count: 0, max: 0 })
        ));
    }

    #[test]
    fn records_without_a_source_or_with_a_garbled_count_are_skipped() {
        let mut orphan = dead_lettered(&[]);
        orphan.headers.retain(|h| h.key != headers::SOURCE_TOPIC);
        assert_eq!(
            plan_redrive(&orphan, 3, &orders()),
            RedriveDecision::Skip(SkipReason::NoSourceTopic)
        );
        let garbled = dead_lettered(&[(REDRIVE_COUNT_HEADER, "many")]);
        let decision = plan_redrive(&garbled, 3, &orders());
        assert_eq!(
            decision,
            RedriveDecision::Skip(SkipReason::InvalidRedriveCount { raw: "many".into() })
        );
    }

    fn orders() -> AllowedTopics {
        AllowedTopics::for_dlq("orders.dlq", &[]).unwrap()
    }

    #[test]
    fn a_source_topic_outside_the_allow_list_is_refused() {
        let mut forged = dead_lettered(&[]);
        forged
            .headers
            .push(RecordHeader::text(headers::SOURCE_TOPIC, "payments"));
        assert_eq!(
            plan_redrive(&forged, 3, &orders()),
            RedriveDecision::Skip(SkipReason::TopicNotAllowed {
                topic: "payments".into(),
                allowed: "orders".into()
            })
        );
        let widened = AllowedTopics::for_dlq("orders.dlq", &["payments".into()]).unwrap();
        assert!(matches!(
            plan_redrive(&forged, 3, &widened),
            RedriveDecision::Replay(Redrive { ref topic, .. }) if topic == "payments"
        ));
        assert!(AllowedTopics::for_dlq("dead-letters", &[]).is_err());
        assert!(AllowedTopics::for_dlq(".dlq", &[]).is_err());
        let explicit = AllowedTopics::for_dlq("dead-letters", &["orders".into()]).unwrap();
        assert!(explicit.allows("orders") && !explicit.allows("dead-letters"));
    }

    #[test]
    fn every_consumer_header_counts_as_bookkeeping() {
        for name in CONSUMER_BOOKKEEPING {
            assert!(is_bookkeeping(name), "{name}");
        }
        assert!(is_bookkeeping(REDRIVE_COUNT_HEADER));
        assert!(!is_bookkeeping("traceparent"));
        // Redrive keeps the trace context: the replayed record continues the original trace.
        assert!(!is_bookkeeping("tracestate"));
    }
}
