//! The PostgreSQL error rules: which database errors say the database as a whole
//! is unavailable (retrying helps once it is back) and which may be a record's own.

use crate::error::FailureKind;

/// Classifies a database error. Connection loss, pool exhaustion, serialization
/// failures, deadlocks, lock timeouts, shutdowns, resource limits, and the
/// failures of the database as a whole rather than of a record (read-only
/// transaction on a demoted primary, missing privilege or table, system and
/// internal errors) are transient; anything else is unknown.
pub(crate) fn classify_db_error(error: &sqlx::Error) -> FailureKind {
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
pub(crate) fn sqlstate(error: &sqlx::Error) -> Option<String> {
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
