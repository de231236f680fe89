//! Errors of reading and redriving dead-letter records, each saying whether retrying helps.

use std::time::Duration;

use rdkafka::error::KafkaError;

/// Result alias of the dead-letter module.
pub type Result<T, E = DeadLetterError> = std::result::Result<T, E>;

/// Everything that stops `orderflow dlq list` or `redrive` as a whole (a single record
/// that cannot be replayed is counted in the summary instead).
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// No broker answered within the start-up deadline (the message names the address),
    /// or the Kafka client settings are invalid.
    #[error(transparent)]
    Broker(#[from] orderflow_runtime::Error),

    /// A Kafka client call failed; `context` says which.
    #[error("{context}: {source}")]
    Kafka {
        /// What was being done (`fetch metadata of orders.dlq`, ...).
        context: String,
        /// librdkafka's error.
        source: KafkaError,
    },

    /// The topic does not exist on the cluster.
    #[error("topic {topic} does not exist on {brokers}")]
    TopicNotFound {
        /// The topic asked for.
        topic: String,
        /// The bootstrap address asked.
        brokers: String,
    },

    /// `--partition` names a partition the topic does not have.
    #[error("topic {topic} has no partition {partition} (it has {partitions})")]
    PartitionNotFound {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        partitions: usize,
    },

    /// A partition stopped delivering records before reaching the bound taken at start.
    #[error(
        "reading {topic}[{partition}] stalled at offset {position} (bound {end}) for {waited:?}"
    )]
    ReadStalled {
        /// The topic being read.
        topic: String,
        /// The partition that stalled.
        partition: i32,
        /// The next offset the reader expected.
        position: i64,
        /// The end bound (exclusive) fixed at start.
        end: i64,
        /// How long nothing arrived.
        waited: Duration,
    },

    /// `--category` is not one of the categories the consumer writes.
    #[error("unknown category {given:?}: expected one of {known}")]
    UnknownCategory {
        /// What the user typed.
        given: String,
        /// The known categories, comma-separated.
        known: String,
    },

    /// Flags that contradict each other (`--from-offset` after `--to-offset`, ...).
    #[error("{0}")]
    InvalidArguments(String),
}

impl DeadLetterError {
    /// Whether running the same command again later can succeed without a change by
    /// the operator (a broker that was down, a stalled fetch).
    pub fn is_retryable(&self) -> bool {
        match self {
            DeadLetterError::Broker(_) | DeadLetterError::ReadStalled { .. } => true,
            // Bad client settings stay bad; everything else on the wire may pass later.
            DeadLetterError::Kafka { source, .. } => !matches!(
                source,
                KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)
            ),
            DeadLetterError::TopicNotFound { .. }
            | DeadLetterError::PartitionNotFound { .. }
            | DeadLetterError::UnknownCategory { .. }
            | DeadLetterError::InvalidArguments(_) => false,
        }
    }

    pub(crate) fn kafka(context: impl Into<String>) -> impl FnOnce(KafkaError) -> Self {
        let context = context.into();
        move |source| DeadLetterError::Kafka { context, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_mistakes_are_not_retryable_but_stalls_are() {
        let missing = DeadLetterError::TopicNotFound {
            topic: "orders.dlq".into(),
            brokers: "127.0.0.1:9092".into(),
        };
        assert!(!missing.is_retryable());
        assert_eq!(
            missing.to_string(),
            "topic orders.dlq does not exist on 127.0.0.1:9092"
        );
        let stalled = DeadLetterError::ReadStalled {
            topic: "orders.dlq".into(),
            partition: 1,
            position: 5,
            end: 9,
            waited: Duration::from_secs(30),
        };
        assert!(stalled.is_retryable());
    }
}
