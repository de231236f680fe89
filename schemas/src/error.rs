//! Error types of this crate. Each says whether retrying can help ([`DecodeError::is_transient`],
//! [`RegistryError::is_transient`]): that decides retry versus dead-letter.

use thiserror::Error;

pub use crate::error_category::ErrorCategory;
use crate::validation::ValidationError;

/// Why a record value could not be turned into an [`crate::OrderEvent`].
#[derive(Debug, Error)]
pub enum DecodeError {
    /// Too short, or the first byte is not the magic byte 0: not Confluent wire format. Poison.
    #[error("value is not in the Confluent wire format: {reason}")]
    NotWireFormat {
        /// What is wrong with the frame.
        reason: String,
    },
    /// The registry does not know the schema id in the frame. Poison.
    #[error("schema id {0} is unknown to the schema registry")]
    UnknownSchemaId(u32),
    /// The writer schema cannot be resolved to the reader schema (the current schema), or the
    /// registry holds a schema under that id that is not valid Avro. Poison.
    #[error("schema id {schema_id} cannot be read with the current OrderEvent schema: {reason}")]
    SchemaMismatch {
        /// Schema id from the frame.
        schema_id: u32,
        /// What did not resolve.
        reason: String,
    },
    /// The body is not a valid Avro datum of the writer schema, or its shape is not an
    /// `OrderEvent`. Poison.
    #[error("schema id {schema_id}: invalid Avro body: {reason}")]
    InvalidBody {
        /// Schema id from the frame.
        schema_id: u32,
        /// What is wrong with the body.
        reason: String,
    },
    /// The writer schema could not be fetched for a reason other than "not found" (registry
    /// down, timeout, 5xx, refused request). Transient: retry, never dead-letter on this
    /// alone, since a misbehaving registry would otherwise send a whole topic to the DLQ.
    #[error("schema registry unavailable while looking up schema id {schema_id}: {source}")]
    RegistryUnavailable {
        /// Schema id from the frame.
        schema_id: u32,
        /// The registry failure.
        source: RegistryError,
    },
}

/// How retrying a failed decode can help: what decides retry, retry within a budget, or
/// dead-letter now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAdvice {
    /// Retrying cannot help: dead-letter the record now.
    Never,
    /// The registry is down, overloaded or has not seen the id yet (a 404 within the
    /// deserializer's grace period): retry with backoff; it comes back on its own.
    UntilItAnswers,
    /// The registry answered something retrying may not fix (401/403, a TLS failure, an
    /// answer that does not parse, another 4xx): retry within a budget, then dead-letter
    /// the record as a registry failure.
    WithinBudget,
}

impl DecodeError {
    /// How retrying can help; [`DecodeError::is_transient`] is true for both retry advices.
    pub fn retry_advice(&self) -> RetryAdvice {
        match self {
            DecodeError::RegistryUnavailable { source, .. } => match source {
                RegistryError::Unreachable { .. } | RegistryError::NotFound { .. } => {
                    RetryAdvice::UntilItAnswers
                }
                _ => RetryAdvice::WithinBudget,
            },
            _ => RetryAdvice::Never,
        }
    }

    /// True when retrying later can succeed (only [`DecodeError::RegistryUnavailable`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::RegistryUnavailable { .. })
    }

    /// The dead-letter category. Meaningful for the poison variants; a transient
    /// [`DecodeError::RegistryUnavailable`] reports [`ErrorCategory::Schema`] should it ever
    /// have to be dead-lettered.
    pub fn category(&self) -> ErrorCategory {
        match self {
            DecodeError::NotWireFormat { .. } | DecodeError::InvalidBody { .. } => {
                ErrorCategory::Deserialization
            }
            DecodeError::UnknownSchemaId(_)
            | DecodeError::SchemaMismatch { .. }
            | DecodeError::RegistryUnavailable { .. } => ErrorCategory::Schema,
        }
    }
}

/// A failed schema registry call. Every variant names the registry URL.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The configured URL cannot be used.
    #[error("invalid schema registry URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given, a password in it replaced by `***`.
        url: String,
        /// Why it is refused.
        reason: String,
    },
    /// A registry setting (CA file, credentials) cannot be used.
    #[error("schema registry setting {setting}: {reason}")]
    InvalidSetting {
        /// The Confluent name of the setting, e.g. `schema.registry.ssl.ca.location`.
        setting: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The TLS handshake failed: the registry's certificate is not signed by a trusted CA
    /// or does not name the host. Retrying will not help.
    #[error("schema registry at {url}: TLS handshake failed during {what}: {reason}")]
    Tls {
        /// Registry base URL.
        url: String,
        /// The call that failed.
        what: String,
        /// The TLS library's reason, and what to check.
        reason: String,
    },
    /// HTTP 401 or 403: the registry refused the credentials. Retrying will not help.
    #[error(
        "schema registry at {url} refused the credentials (HTTP {status}) during {what}{} \
         (check basic.auth.user.info, the userinfo of the URL, or bearer.auth.token)",
        after_colon(.message)
    )]
    Unauthorized {
        /// Registry base URL.
        url: String,
        /// The call that was refused.
        what: String,
        /// 401 or 403.
        status: u16,
        /// Message from the body; empty when there was none.
        message: String,
    },
    /// HTTP 404: no such schema id, subject or version. Permanent.
    #[error("schema registry at {url}: {what} not found")]
    NotFound {
        /// Registry base URL.
        url: String,
        /// What was looked up, e.g. `schema id 7`.
        what: String,
    },
    /// Connection refused, timeout, or an HTTP 5xx/408/429 answer. Transient.
    #[error("schema registry at {url} unreachable during {what}: {reason}")]
    Unreachable {
        /// Registry base URL.
        url: String,
        /// The call that failed.
        what: String,
        /// Transport error or HTTP status.
        reason: String,
        /// The HTTP status when the registry answered (5xx, 408, 429); `None` when no
        /// answer came (refused, timed out). A 5xx for one id while the registry answers
        /// other calls is that id's trouble, not an outage.
        status: Option<u16>,
    },
    /// Any other HTTP 4xx, e.g. 409 incompatible schema, 422 invalid schema, 401. Retrying the
    /// same request will not help.
    #[error("schema registry at {url} refused {what}: HTTP {status}, error code {code}: {message}")]
    Rejected {
        /// Registry base URL.
        url: String,
        /// The call that was refused.
        what: String,
        /// HTTP status.
        status: u16,
        /// Confluent error code from the body (0 when the body had none).
        code: u32,
        /// Message from the body.
        message: String,
    },
    /// A 2xx answer this client cannot use (not the Confluent JSON shape).
    #[error("schema registry at {url} sent an unusable answer to {what}: {reason}")]
    InvalidResponse {
        /// Registry base URL.
        url: String,
        /// The call concerned.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// A schema (sent or received) that is not valid Avro.
    #[error("schema for {what} (registry {url}) is not valid Avro: {reason}")]
    InvalidSchema {
        /// Registry base URL.
        url: String,
        /// Which schema, e.g. `schema id 7` or `subject orders-value`.
        what: String,
        /// Parser message.
        reason: String,
    },
}

/// `": message"`, or nothing for an empty message.
fn after_colon(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl RegistryError {
    /// True when retrying later can succeed (only [`RegistryError::Unreachable`]).
    pub fn is_transient(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }
}

/// Any error of this crate.
#[derive(Debug, Error)]
pub enum Error {
    /// A schema registry call failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A record value could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An event breaks a business rule.
    #[error(transparent)]
    Validation(#[from] ValidationError),
}

impl Error {
    /// True when retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Registry(e) => e.is_transient(),
            Error::Decode(e) => e.is_transient(),
            Error::Validation(_) => false,
        }
    }
}

/// Result with this crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_registry_unavailability_is_transient() {
        let unreachable = RegistryError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            what: "schema id 3".into(),
            reason: "connection refused".into(),
            status: None,
        };
        assert!(unreachable.is_transient());
        let transient = DecodeError::RegistryUnavailable {
            schema_id: 3,
            source: unreachable,
        };
        assert!(transient.is_transient());
        assert!(transient.to_string().contains("http://127.0.0.1:1"));

        let poison = [
            (
                DecodeError::NotWireFormat {
                    reason: "empty".into(),
                },
                "deserialization",
            ),
            (DecodeError::UnknownSchemaId(9), "schema"),
            (
                DecodeError::SchemaMismatch {
                    schema_id: 9,
                    reason: "x".into(),
                },
                "schema",
            ),
            (
                DecodeError::InvalidBody {
                    schema_id: 9,
                    reason: "x".into(),
                },
                "deserialization",
            ),
        ];
        for (error, category) in poison {
            assert!(!error.is_transient(), "{error}");
            assert_eq!(error.category().as_str(), category, "{error}");
        }
    }

    #[test]
    fn registry_refusals_are_permanent() {
        let rejected = RegistryError::Rejected {
            url: "http://r".into(),
            what: "register".into(),
            status: 409,
            code: 409,
            message: "incompatible".into(),
        };
        assert!(!rejected.is_transient());
        assert!(!Error::from(rejected).is_transient());
    }
}
