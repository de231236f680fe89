//! The order service's error type.

use thiserror::Error;

/// What can stop the order service from starting or running.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// A flag or a combination of flags is invalid; the message says what to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Shared infrastructure failed: broker or database unreachable at start-up, or an
    /// address that cannot be bound.
    #[error(transparent)]
    Runtime(#[from] orderflow_runtime::Error),
    /// The schema registry refused or failed a request.
    #[error(transparent)]
    Registry(#[from] orderflow_schemas::RegistryError),
    /// The Kafka client could not be created.
    #[error("Kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// A database statement failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema migrations could not be applied.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Migrating through the migration role, or granting the runtime role, failed.
    #[error(transparent)]
    Migration(#[from] orderflow_runtime::db_migration::MigrationError),
    /// The HTTP listener could not be bound or failed.
    #[error("order API on {address}: {source}")]
    Http {
        /// The listen address.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// SIGINT/SIGTERM arrived during start-up.
    #[error("stopped by a signal during start-up")]
    Interrupted,
}

impl ServiceError {
    /// Whether starting again later may succeed without changing the configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            ServiceError::Config(_) | ServiceError::Interrupted | ServiceError::Migrate(_) => false,
            ServiceError::Runtime(error) => error.is_transient(),
            ServiceError::Migration(error) => matches!(
                error,
                orderflow_runtime::db_migration::MigrationError::Connect(inner) if inner.is_transient()
            ),
            ServiceError::Registry(error) => error.is_transient(),
            ServiceError::Kafka(error) => !matches!(
                error,
                rdkafka::error::KafkaError::ClientConfig(..)
                    | rdkafka::error::KafkaError::ClientCreation(_)
            ),
            ServiceError::Database(error) => !matches!(
                error,
                sqlx::Error::Configuration(_) | sqlx::Error::ColumnNotFound(_)
            ),
            ServiceError::Http { .. } => true,
        }
    }
}

/// Result alias of the order service.
pub type ServiceResult<T, E = ServiceError> = std::result::Result<T, E>;
