//! Errors of reading and redriving dead-letter records, each saying whether retrying helps.

use orderflow_runtime::bounded_read::BoundedReadError;
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

    /// Reading the DLQ failed: the topic or partition is missing, a Kafka call failed,
    /// or a partition stalled before its bound (the shared bounded reader's error).
    #[error(transparent)]
    Read(#[from] BoundedReadError),

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
            DeadLetterError::Broker(_) => true,
            DeadLetterError::Read(error) => error.is_retryable(),
            // Bad client settings stay bad; everything else on the wire may pass later.
            DeadLetterError::Kafka { source, .. } => !matches!(
                source,
                KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)
            ),
            DeadLetterError::UnknownCategory { .. } | DeadLetterError::InvalidArguments(_) => false,
        }
    }

    pub(crate) fn kafka(context: impl Into<String>) -> impl FnOnce(KafkaError) -> Self {
        let context = context.into();
        move |source| DeadLetterError::Kafka { context, source }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn operator_mistakes_are_not_retryable_but_stalls_are() {
        let missing = DeadLetterError::from(BoundedReadError::TopicNotFound {
            topic: "orders.dlq".into(),
            brokers: "127.0.0.1:9092".into(),
        });
        assert!(!missing.is_retryable());
        assert_eq!(
            missing.to_string(),
            "topic orders.dlq does not exist on 127.0.0.1:9092"
        );
        let stalled = DeadLetterError::from(BoundedReadError::Stalled {
            topic: "orders.dlq".into(),
            partition: 1,
            position: 5,
            end: 9,
            waited: Duration::from_secs(30),
        });
        assert!(stalled.is_retryable());
    }
}
