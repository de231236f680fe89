//! The producer crate's error type.

use rdkafka::error::KafkaError;
use thiserror::Error;

/// What can stop a generator run.
#[derive(Debug, Error)]
pub enum ProducerError {
    /// A flag or a combination of flags is invalid; the message says what to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Start-up of shared infrastructure failed: the broker did not answer in time, or
    /// the metrics endpoint could not bind.
    #[error(transparent)]
    Runtime(#[from] orderflow_runtime::Error),
    /// The schema registry refused or failed a request.
    #[error(transparent)]
    Registry(#[from] orderflow_schemas::RegistryError),
    /// The Kafka client could not be created or refused a record outright.
    #[error("Kafka client: {0}")]
    Kafka(#[from] KafkaError),
    /// SIGINT/SIGTERM arrived before the first record was sent.
    #[error("stopped by a signal during start-up; nothing was sent")]
    Interrupted,
    /// Some records were not acknowledged by the broker.
    #[error("{failed} of {sent} records were not delivered; first error: {first_error}")]
    DeliveryFailed {
        /// Records handed to the client.
        sent: u64,
        /// Records not acknowledged.
        failed: u64,
        /// The first delivery error reported.
        first_error: String,
    },
}

impl ProducerError {
    /// Whether running again later may succeed without changing the configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            ProducerError::Config(_) | ProducerError::Interrupted => false,
            ProducerError::Runtime(error) => error.is_transient(),
            ProducerError::Registry(error) => error.is_transient(),
            ProducerError::Kafka(error) => !matches!(
                error,
                KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_)
            ),
            ProducerError::DeliveryFailed { .. } => true,
        }
    }
}

/// Result alias of the producer crate.
pub type Result<T, E = ProducerError> = std::result::Result<T, E>;
