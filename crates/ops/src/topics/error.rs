//! Errors of topics as code, each saying what went wrong, where, and whether retrying can help.

use std::path::PathBuf;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::refusal::Refusal;

/// Result alias of the topics module.
pub type Result<T, E = TopicsError> = std::result::Result<T, E>;

/// Everything that can stop `orderflow topics diff` or `apply`.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The topics file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The topics file is not valid YAML or does not match the schema.
    /// `message` names the field at fault and carries the line and column.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file being parsed.
        path: PathBuf,
        /// Line of the offending value (1-based), when known.
        line: Option<usize>,
        /// The YAML parser's message: field path, problem and location.
        message: String,
    },

    /// The topics file parses but asks for something impossible or inconsistent.
    #[error("{}: {field}: {reason}", path.display())]
    Invalid {
        /// The file being checked.
        path: PathBuf,
        /// Dotted path of the field at fault (`topics.orders.configs.min.insync.replicas`).
        field: String,
        /// What is wrong and what would be right.
        reason: String,
    },

    /// `--env` names an environment the file does not declare.
    #[error("{}: unknown environment `{env}` (the file declares: {known})", path.display())]
    UnknownEnvironment {
        /// The file being resolved.
        path: PathBuf,
        /// The environment asked for.
        env: String,
        /// The environments the file declares, comma-separated.
        known: String,
    },

    /// No broker answered within the start-up deadline (the message names the address),
    /// or the Kafka client settings are invalid.
    #[error(transparent)]
    Startup(#[from] orderflow_runtime::Error),

    /// A config set on the topic comes back without a value (a sensitive one), so the
    /// complete set AlterConfigs needs cannot be built without erasing it.
    #[error(
        "{topic}: config {key} is set on the topic but the broker does not reveal its value; \
         AlterConfigs would erase it, so no config of this topic was changed"
    )]
    UnreadableConfig {
        /// Topic name.
        topic: String,
        /// The config whose value is hidden.
        key: String,
    },

    /// The broker answered a request for one topic with an error.
    #[error("broker rejected {api}: {code}")]
    Rejected {
        /// Kafka API name, e.g. `CreateTopics`.
        api: &'static str,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },

    /// The broker answered a request with an error, named and explained in `reason`
    /// (the wire-protocol requests, which carry the broker's message).
    #[error("broker rejected {api}: {reason}")]
    RejectedWith {
        /// Kafka API name, e.g. `IncrementalAlterConfigs`.
        api: &'static str,
        /// The error name and the broker's message.
        reason: String,
    },

    /// A Kafka request failed as a whole.
    #[error("{operation} failed: {source}")]
    Kafka {
        /// What was being done (`fetching metadata`, `CreateTopics`, ...).
        operation: String,
        /// The client error.
        source: KafkaError,
    },

    /// The broker rejected some of the requested changes; the others were applied.
    #[error("{} change(s) failed:\n{}", failures.len(), failures.join("\n"))]
    ChangesFailed {
        /// One line per failed change: topic, change and the broker's error.
        failures: Vec<String>,
    },

    /// The plan contains changes Kafka cannot make; nothing was applied.
    #[error(
        "refusing to apply, nothing was changed:\n{}",
        render_refusals(refusals)
    )]
    Refused {
        /// Every change that cannot be made, with what to do instead.
        refusals: Vec<Refusal>,
    },
}

impl TopicsError {
    /// Whether running the same command again, unchanged, may succeed.
    /// Only broker reachability and transient broker errors qualify: a bad file or
    /// a refused plan stays that way until someone acts.
    pub fn is_retryable(&self) -> bool {
        match self {
            TopicsError::Startup(err) => err.is_transient(),
            TopicsError::Rejected { code, .. } => is_transient_code(*code),
            TopicsError::Kafka { source, .. } => error_code(source).is_some_and(is_transient_code),
            _ => false,
        }
    }
}

/// The error code inside `err`; rdkafka's own accessor leaves out admin-request errors.
pub(crate) fn error_code(err: &KafkaError) -> Option<RDKafkaErrorCode> {
    match err {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

/// Error codes that come from a broker being busy, moving or briefly away.
pub(crate) fn is_transient_code(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::BrokerTransportFailure
            | RDKafkaErrorCode::AllBrokersDown
            | RDKafkaErrorCode::OperationTimedOut
            | RDKafkaErrorCode::RequestTimedOut
            | RDKafkaErrorCode::NetworkException
            | RDKafkaErrorCode::NotController
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::CoordinatorNotAvailable
    )
}

fn render_refusals(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|refusal| format!("  {refusal}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reachability_and_transient_broker_errors_are_retryable() {
        let unreachable = TopicsError::Startup(orderflow_runtime::Error::Unreachable {
            what: "Kafka broker".into(),
            address: "127.0.0.1:1".into(),
            waited: std::time::Duration::from_secs(1),
            last_error: "connection refused".into(),
        });
        assert!(unreachable.is_retryable());
        let bad_file = TopicsError::Invalid {
            path: "topics.yaml".into(),
            field: "topics.orders".into(),
            reason: "bad".into(),
        };
        assert!(!bad_file.is_retryable());

        let timed_out = TopicsError::Kafka {
            operation: "CreateTopics".into(),
            source: KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut),
        };
        assert!(timed_out.is_retryable());

        let rejected = TopicsError::Rejected {
            api: "CreatePartitions",
            code: RDKafkaErrorCode::InvalidPartitions,
        };
        assert!(!rejected.is_retryable());
    }
}
