//! Which Kafka produce errors retrying can help, decided once for the outbox relay and
//! the consumer's dead-letter writer. The line follows Kafka's own: an error the Java
//! client calls retriable (`CORRUPT_MESSAGE`, `NOT_ENOUGH_REPLICAS`, timeouts, leader
//! moves) is transient here too.
//!
//! The callers act on the class differently, which is why it is a class and not a bool:
//! the relay parks a [`Record`](ProduceFailure::Record) row after its last attempt but
//! keeps retrying a [`Destination`](ProduceFailure::Destination) failure (the row is not
//! at fault; an operator fixes the topic or the ACL), while the dead-letter writer stops
//! the consumer on either, since it has nowhere else to put the record.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// The class of a failed produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceFailure {
    /// The broker or the network may get better: retry the same record.
    Transient,
    /// The record itself can never be written as it is (too large, invalid): retrying
    /// the same bytes cannot help.
    Record,
    /// The destination refuses every record (no such topic or partition, not
    /// authorized): only an operator's change can help.
    Destination,
    /// The producer is unusable (librdkafka's fatal error, e.g. fenced by a newer
    /// instance): replace it.
    Fatal,
}

impl ProduceFailure {
    /// Classifies a produce or delivery error.
    pub fn of(error: &KafkaError) -> Self {
        match error.rdkafka_error_code() {
            Some(code) => Self::of_code(code),
            None => ProduceFailure::Transient,
        }
    }

    /// Classifies an error code.
    pub fn of_code(code: RDKafkaErrorCode) -> Self {
        match code {
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidArgument => ProduceFailure::Record,
            RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed => ProduceFailure::Destination,
            RDKafkaErrorCode::Fatal => ProduceFailure::Fatal,
            _ => ProduceFailure::Transient,
        }
    }

    /// Whether sending the same record again may succeed without anyone's help.
    pub fn retry_can_help(self) -> bool {
        self == ProduceFailure::Transient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_has_one_class() {
        let class = |code| ProduceFailure::of(&KafkaError::MessageProduction(code));
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::MessageBatchTooLarge,
            RDKafkaErrorCode::InvalidMessageSize,
            RDKafkaErrorCode::InvalidRecord,
        ] {
            assert_eq!(class(code), ProduceFailure::Record, "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::UnknownPartition,
            RDKafkaErrorCode::UnknownTopic,
            RDKafkaErrorCode::TopicAuthorizationFailed,
        ] {
            assert_eq!(class(code), ProduceFailure::Destination, "{code:?}");
        }
        assert_eq!(class(RDKafkaErrorCode::Fatal), ProduceFailure::Fatal);
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::QueueFull,
            // CORRUPT_MESSAGE: a CRC failure on the wire; Kafka retries it.
            RDKafkaErrorCode::InvalidMessage,
        ] {
            assert_eq!(class(code), ProduceFailure::Transient, "{code:?}");
            assert!(class(code).retry_can_help());
        }
        assert!(!ProduceFailure::Record.retry_can_help());
    }
}
