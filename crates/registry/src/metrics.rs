//! The registry's Prometheus metrics, named once here.

use prometheus::{IntCounterVec, Opts, Registry};

/// Outcome label of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationOutcome {
    /// A new version was added to the subject.
    Created,
    /// The schema was already registered under the subject; its id was returned.
    Existing,
    /// Rejected by the subject's compatibility level (409).
    Incompatible,
    /// Rejected as invalid Avro (422).
    Invalid,
}

impl RegistrationOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Existing => "existing",
            Self::Incompatible => "incompatible",
            Self::Invalid => "invalid",
        }
    }
}

/// Counters of the registry.
#[derive(Debug, Clone)]
pub struct RegistryMetrics {
    registrations: IntCounterVec,
}

impl RegistryMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let registrations = IntCounterVec::new(
            Opts::new(
                "orderflow_registry_registrations_total",
                "Schema registrations by outcome (created, existing, incompatible, invalid).",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(registrations.clone()))?;
        Ok(Self { registrations })
    }

    /// Counts one registration.
    pub fn registration(&self, outcome: RegistrationOutcome) {
        self.registrations
            .with_label_values(&[outcome.label()])
            .inc();
    }
}
