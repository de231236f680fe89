//! Errors of the lag engine, each saying whether retrying can help.

use rdkafka::error::KafkaError;

/// Everything that can go wrong while reading offsets or serving the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum LagError {
    /// A Kafka request failed (network, coordinator moving, timeout).
    #[error("kafka {what} failed: {source}")]
    Kafka {
        /// The request that failed, e.g. "metadata" or "committed offsets of group g1".
        what: String,
        /// The client error.
        #[source]
        source: KafkaError,
    },
    /// A request sent over the engine's own Kafka connection failed (connection
    /// refused or closed, timeout, an answer that does not decode, a coordinator error).
    #[error("kafka {what} failed: {reason}")]
    Protocol {
        /// The request that failed, e.g. "OffsetFetch at 127.0.0.1:9092".
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// The broker does not support a request the engine needs.
    #[error("kafka broker at {broker} does not support {what}")]
    Unsupported {
        /// The broker's address.
        broker: String,
        /// The request and version needed.
        what: String,
    },
    /// The Kafka client could not be built from the given configuration.
    #[error("invalid kafka client configuration: {0}")]
    ClientConfig(#[source] KafkaError),
    /// The engine configuration is inconsistent (checked at start-up).
    #[error("invalid lag configuration: {0}")]
    Config(String),
    /// The HTTP server could not start (address in use, bad address).
    #[error("lag HTTP server: {0}")]
    Server(#[source] orderflow_runtime::Error),
    /// A blocking Kafka task panicked or was cancelled.
    #[error("background kafka task ended abnormally: {0}")]
    Task(String),
}

impl LagError {
    /// Whether trying the same thing again later can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            LagError::Kafka { .. } | LagError::Protocol { .. } | LagError::Task(_) => true,
            LagError::ClientConfig(_)
            | LagError::Config(_)
            | LagError::Server(_)
            | LagError::Unsupported { .. } => false,
        }
    }

    /// Wraps a Kafka client error with the request that failed.
    pub(crate) fn kafka(what: impl Into<String>, source: KafkaError) -> Self {
        LagError::Kafka {
            what: what.into(),
            source,
        }
    }
}

/// Builds a [`LagError::Protocol`].
pub(crate) fn protocol(what: impl Into<String>, reason: impl std::fmt::Display) -> LagError {
    LagError::Protocol {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// Result alias of the lag engine.
pub type Result<T, E = LagError> = std::result::Result<T, E>;
