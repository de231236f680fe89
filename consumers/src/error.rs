//! Errors of the consumer crate, classified by whether retrying can help.

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

/// Classifies a database error. Connection loss, pool exhaustion, serialization
/// failures, deadlocks, lock timeouts, shutdowns, resource limits, and the
/// failures of the database as a whole rather than of a record (read-only
/// transaction on a demoted primary, missing privilege or table, system and
/// internal errors) are transient; anything else is unknown.
pub fn classify_db_error(error: &sqlx::Error) -> FailureKind {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => FailureKind::Transient,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(code) if is_transient_sqlstate(code) => FailureKind::Transient,
            _ => FailureKind::Unknown,
        },
        _ => FailureKind::Unknown,
    }
}

/// The SQLSTATE of a database error, if the server sent one.
pub fn sqlstate(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    }
}

fn is_transient_sqlstate(code: &str) -> bool {
    matches!(
        code,
        "40001"
            | "40P01"
            | "55P03"
            | "57P01"
            | "57P02"
            | "57P03"
            | "57P05"
            | "57014"
            | "25P03"
            | "25P04"
            // read-only transaction: a demoted primary during a failover
            | "25006"
            // the role lost its privileges, or the schema is not there (yet)
            | "42501"
            | "42P01"
            | "XX000"
    ) || code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("58")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_loss_is_transient() {
        let error = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify_db_error(&error), FailureKind::Transient);
        assert_eq!(
            classify_db_error(&sqlx::Error::PoolTimedOut),
            FailureKind::Transient
        );
        assert!(is_transient_sqlstate("40001"));
        assert!(is_transient_sqlstate("08006"));
        assert!(!is_transient_sqlstate("23505"));
    }

    #[test]
    fn failures_of_the_whole_database_are_transient() {
        for code in [
            "25006", "57P05", "58000", "58030", "XX000", "42501", "42P01",
        ] {
            assert!(is_transient_sqlstate(code), "{code}");
        }
        assert!(!is_transient_sqlstate("P0001"));
    }
}
