//! The dead-letter category of a record that cannot be decoded or validated: in a file of
//! its own because both the errors and the business rules name it.

use std::fmt;

/// Dead-letter category of a record that cannot be processed (the `error category` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The bytes are not a Confluent-framed Avro datum of the writer schema.
    Deserialization,
    /// The schema id is unknown or its schema cannot be resolved to the reader schema.
    Schema,
    /// The event decoded but breaks a business rule ([`crate::OrderEvent::validate`]).
    Validation,
}

impl ErrorCategory {
    /// Lower-case name used in headers and metric labels: `deserialization`, `schema`, `validation`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Deserialization => "deserialization",
            ErrorCategory::Schema => "schema",
            ErrorCategory::Validation => "validation",
        }
    }
}

impl From<ErrorCategory> for orderflow_contracts::dead_letter::DlqCategory {
    fn from(category: ErrorCategory) -> Self {
        use orderflow_contracts::dead_letter::DlqCategory;
        match category {
            ErrorCategory::Deserialization => DlqCategory::Deserialization,
            ErrorCategory::Schema => DlqCategory::Schema,
            ErrorCategory::Validation => DlqCategory::Validation,
        }
    }
}

impl fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
