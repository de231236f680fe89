//! Errors of the consumer crate, and the kinds of failure that decide retrying
//! (which database error is of which kind: [`crate::store::db_error`]).

/// Result alias for the consumer crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop the consumer or fail a record.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or a combination of flags is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The database could not be reached or migrated at start-up.
    #[error("database: {0}")]
    Database(String),
    /// The broker or a Kafka client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Something else at start-up (registry, metrics server).
    #[error("{0}")]
    Startup(String),
    /// A record can never be dead-lettered; its partition cannot move on.
    #[error("stopped: {0}")]
    Unrecoverable(String),
}

/// How a failure of one record (or batch) should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Retrying cannot help: dead-letter at once.
    Poison,
    /// Retrying will help once the dependency is back: retry without limit.
    Transient,
    /// Unknown: retry up to `--max-attempts`, then dead-letter.
    Unknown,
}
