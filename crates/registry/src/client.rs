//! A small client that registers a schema file under a subject, for scripts
//! (`orderflow registry register`). Works against this registry and Confluent's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orderflow_runtime::backoff::Backoff;
use serde::Deserialize;

use crate::api::CONTENT_TYPE_V1;
use crate::avro_schema::ParsedSchema;
use crate::error::error_chain;

/// Errors of [`RegistryClient`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The schema file could not be read.
    #[error("cannot read schema file {path}: {error}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error (part of the message, so not exposed as `source` too).
        error: std::io::Error,
    },
    /// The schema file is not valid Avro.
    #[error("schema file {path} is not a valid Avro schema: {message}")]
    InvalidSchemaFile {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The registry URL is not usable.
    #[error("schema registry URL {url:?} is invalid: {message}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The registry could not be reached.
    #[error("schema registry at {url} is unreachable: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error with its causes ("connection refused").
        reason: String,
    },
    /// The subject's compatibility level rejected the schema (HTTP 409).
    #[error("schema registry rejected the schema for subject {subject} as incompatible: {message}")]
    Incompatible {
        /// The subject.
        subject: String,
        /// The registry's explanation.
        message: String,
    },
    /// Any other error answer.
    #[error("schema registry at {url} answered HTTP {status} (error_code {error_code}): {message}")]
    Rejected {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// Confluent error code, 0 if the body had none.
        error_code: u32,
        /// The registry's message or body.
        message: String,
    },
}

impl ClientError {
    /// Whether trying again may succeed: the registry is unreachable or failing (5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Rejected { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Reads `path` and checks that it parses as Avro, without any network call.
pub fn read_schema_file(path: &Path) -> Result<String, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|error| ClientError::ReadFile {
        path: path.to_path_buf(),
        error,
    })?;
    ParsedSchema::parse(&text).map_err(|message| ClientError::InvalidSchemaFile {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(text)
}

#[derive(Deserialize)]
struct RegisteredId {
    id: u32,
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: u32,
    message: String,
}

/// Client of a Confluent-compatible registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base_url: String,
    http: reqwest::Client,
}

impl RegistryClient {
    /// A client of the registry at `base_url` (`http://127.0.0.1:8081`).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let parsed = reqwest::Url::parse(base_url).map_err(|err| ClientError::InvalidUrl {
            url: base_url.to_string(),
            message: err.to_string(),
        })?;
        if parsed.scheme() != "http" {
            return Err(ClientError::InvalidUrl {
                url: base_url.to_string(),
                message: "only http:// is supported".to_string(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| ClientError::InvalidUrl {
                url: base_url.to_string(),
                message: err.to_string(),
            })?;
        Ok(Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// Registers `schema` (Avro JSON) under `subject`; returns the schema id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, ClientError> {
        let url = format!(
            "{}/subjects/{}/versions",
            self.base_url,
            subject.replace('/', "%2F")
        );
        let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" });
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE_V1)
            .header(reqwest::header::ACCEPT, CONTENT_TYPE_V1)
            .body(body.to_string())
            .send()
            .await
            .map_err(|error| ClientError::Unreachable {
                url: url.clone(),
                reason: error_chain(&error),
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| ClientError::Unreachable {
                url: url.clone(),
                reason: error_chain(&error),
            })?;
        if status.is_success() {
            let registered: RegisteredId =
                serde_json::from_slice(&bytes).map_err(|err| ClientError::Rejected {
                    url: url.clone(),
                    status: status.as_u16(),
                    error_code: 0,
                    message: format!("answer is not {{\"id\": N}}: {err}"),
                })?;
            return Ok(registered.id);
        }
        let (error_code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => (body.error_code, body.message),
            Err(_) => (0, String::from_utf8_lossy(&bytes).trim().to_string()),
        };
        if status.as_u16() == 409 {
            return Err(ClientError::Incompatible {
                subject: subject.to_string(),
                message,
            });
        }
        Err(ClientError::Rejected {
            url,
            status: status.as_u16(),
            error_code,
            message,
        })
    }

    /// [`register`](Self::register), retried with backoff while the registry is
    /// unreachable or failing, for up to `deadline` (a script may call this while the
    /// registry is still starting).
    pub async fn register_within(
        &self,
        subject: &str,
        schema: &str,
        deadline: Duration,
    ) -> Result<u32, ClientError> {
        let started = Instant::now();
        let backoff = Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            multiplier: 2.0,
        };
        let mut attempt = 0;
        loop {
            match self.register(subject, schema).await {
                Err(err) if err.is_retryable() && started.elapsed() < deadline => {
                    tracing::warn!(error = %err, attempt, "schema registry not ready; retrying");
                    let pause = backoff
                        .delay(attempt)
                        .max(Duration::from_millis(50))
                        .min(deadline.saturating_sub(started.elapsed()));
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }
}
