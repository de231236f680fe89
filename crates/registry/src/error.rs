//! The registry crate's error type, with the Confluent error code each one maps to.

use axum::http::StatusCode;

/// Errors of the registry: API errors a client can fix, and infrastructure errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The subject has no live versions.
    #[error("Subject '{0}' not found.")]
    SubjectNotFound(String),
    /// The subject exists but not this version.
    #[error("Version {version} not found for subject '{subject}'.")]
    VersionNotFound {
        /// The subject.
        subject: String,
        /// The version asked for.
        version: String,
    },
    /// No schema with this id, or the schema is not registered under the subject.
    #[error("{0}")]
    SchemaNotFound(String),
    /// The subject was already soft-deleted.
    #[error("Subject '{0}' was soft deleted. Set permanent=true to delete permanently")]
    SubjectSoftDeleted(String),
    /// A permanent delete of a subject that was not soft-deleted first.
    #[error("Subject '{0}' was not deleted first before being permanently deleted")]
    SubjectNotSoftDeleted(String),
    /// The subject has no subject-level compatibility configured.
    #[error("Subject '{0}' does not have subject-level compatibility configured")]
    SubjectConfigNotFound(String),
    /// The schema is not valid Avro (or not Avro at all).
    #[error("Invalid schema: {0}")]
    InvalidSchema(String),
    /// A version path segment that is neither a positive number nor `latest`.
    #[error(
        "The specified version '{0}' is not a valid version id. Allowed values are between \
         [1, 2^31-1] and the string \"latest\""
    )]
    InvalidVersion(String),
    /// A compatibility level that does not exist.
    #[error(transparent)]
    InvalidCompatibilityLevel(#[from] crate::compatibility::UnknownCompatibilityLevel),
    /// The request body is not what the endpoint takes; the message names the field.
    #[error("{message}")]
    BadRequest {
        /// HTTP status (400 for malformed JSON, 415 for a content type, 422 otherwise).
        status: StatusCode,
        /// What is wrong.
        message: String,
    },
    /// The schema breaks the subject's compatibility level.
    #[error("Schema being registered is incompatible with an earlier schema for subject '{subject}': {}", .messages.join("; "))]
    Incompatible {
        /// The subject.
        subject: String,
        /// One message per failed check.
        messages: Vec<String>,
    },
    // The wrapped errors below are part of the message and deliberately not exposed as
    // `source`, so a printed error chain does not repeat them.
    /// A query failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The schema tables could not be created or upgraded at start-up.
    #[error("applying the registry migrations failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The metrics could not be registered (a name registered twice).
    #[error("registering the registry metrics failed: {0}")]
    Metrics(prometheus::Error),
    /// The HTTP listener could not be started.
    #[error(transparent)]
    Runtime(#[from] orderflow_runtime::Error),
}

impl RegistryError {
    /// HTTP status returned for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SubjectNotFound(_)
            | Self::VersionNotFound { .. }
            | Self::SchemaNotFound(_)
            | Self::SubjectSoftDeleted(_)
            | Self::SubjectNotSoftDeleted(_)
            | Self::SubjectConfigNotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidSchema(_)
            | Self::InvalidVersion(_)
            | Self::InvalidCompatibilityLevel(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest { status, .. } => *status,
            Self::Incompatible { .. } => StatusCode::CONFLICT,
            Self::Database(_) | Self::Migrate(_) | Self::Metrics(_) | Self::Runtime(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// Confluent's `error_code` for this error (the JSON body's first field).
    pub fn error_code(&self) -> u32 {
        match self {
            Self::SubjectNotFound(_) => 40401,
            Self::VersionNotFound { .. } => 40402,
            Self::SchemaNotFound(_) => 40403,
            Self::SubjectSoftDeleted(_) => 40404,
            Self::SubjectNotSoftDeleted(_) => 40405,
            Self::SubjectConfigNotFound(_) => 40408,
            Self::InvalidSchema(_) => 42201,
            Self::InvalidVersion(_) => 42202,
            Self::InvalidCompatibilityLevel(_) => 42203,
            Self::BadRequest { status, .. } => u32::from(status.as_u16()),
            Self::Incompatible { .. } => 409,
            Self::Database(_) | Self::Migrate(_) | Self::Metrics(_) | Self::Runtime(_) => 50001,
        }
    }

    /// Whether the same request may succeed later (the database was unreachable or a
    /// transaction lost a race), as opposed to a request that is wrong.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Database(err) => is_transient_database_error(err),
            Self::Runtime(err) => err.is_transient(),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(err: sqlx::Error) -> Self {
        Self::Database(err)
    }
}

impl From<sqlx::migrate::MigrateError> for RegistryError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(err)
    }
}

impl From<prometheus::Error> for RegistryError {
    fn from(err: prometheus::Error) -> Self {
        Self::Metrics(err)
    }
}

/// Connection trouble and lost races (serialization failure, deadlock, unique violation
/// between concurrent inserts) may pass; everything else is a bug or bad data.
pub(crate) fn is_transient_database_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("40001" | "40P01" | "23505" | "57P01" | "57P03" | "08000" | "08003" | "08006")
        ),
        _ => false,
    }
}

/// The error and its causes on one line ("a: b: c"), so the parser's detail is not lost.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Result alias of the registry crate.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
