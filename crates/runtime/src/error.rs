//! The runtime crate's error type.

use std::time::Duration;

/// Errors raised while setting up shared infrastructure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dependency did not answer within the start-up deadline.
    #[error("{what} at {address} did not answer within {:.1}s: {last_error}", waited.as_secs_f64())]
    Unreachable {
        /// What we tried to reach ("Kafka broker", "PostgreSQL", ...).
        what: String,
        /// The address tried, with any password removed.
        address: String,
        /// How long we kept trying.
        waited: Duration,
        /// The last error seen.
        last_error: String,
    },
    /// The broker answered but refused us: wrong credentials or an untrusted certificate.
    /// Retrying cannot help.
    #[error("Kafka broker at {address} {what}: {reason}")]
    Refused {
        /// The bootstrap address.
        address: String,
        /// What was refused and which settings to check.
        what: String,
        /// librdkafka's explanation (it never holds a password).
        reason: String,
    },
    /// A flag or setting is invalid; the message says what to fix.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Binding or serving the HTTP listener failed.
    #[error("HTTP server on {address}: {source}")]
    Http {
        /// The listen address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether trying again later may succeed (a dependency that may come back) as opposed
    /// to a mistake in configuration that only an operator can fix.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }
}

/// Result alias of the runtime crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
