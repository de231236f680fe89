//! The run summary printed as one JSON object on stdout when the generator ends.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::generator::error::ProducerError;

/// Counts of one generator run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Topic written to.
    pub topic: String,
    /// Seed of the run; the same seed replays the same orders and events.
    pub seed: u64,
    /// Records handed to the Kafka client: lifecycle events + duplicates + poison.
    pub sent: u64,
    /// Records the broker acknowledged.
    pub acked: u64,
    /// Records that were not acknowledged (delivery error, or still in flight when the
    /// flush timeout passed).
    pub failed: u64,
    /// Extra records that repeat an event already sent (same bytes, same event_id).
    pub duplicates: u64,
    /// Poison records sent, all kinds.
    pub poison: u64,
    /// Poison records sent, by kind (`not_avro`, `unknown_schema_id`, `invalid_event`).
    pub poison_by_kind: BTreeMap<String, u64>,
    /// Lifecycle events generated, by event type (each event once: duplicates and poison
    /// are not in here, so the values add up to the events generated).
    pub by_event_type: BTreeMap<String, u64>,
    /// Distinct orders that got their `OrderCreated`.
    pub orders_created: u64,
    /// Whether the run stopped early on SIGINT/SIGTERM.
    pub interrupted: bool,
    /// Wall time from the first record to the end of the final flush.
    pub elapsed_seconds: f64,
    /// `sent / elapsed_seconds`.
    pub events_per_second: f64,
    /// The first delivery error, when some record failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Summary {
    /// Lifecycle events generated (the sum of `by_event_type`).
    pub fn events(&self) -> u64 {
        self.by_event_type.values().sum()
    }

    /// An error when any record was not acknowledged, so the caller can exit non-zero.
    pub fn check_delivered(&self) -> Result<(), ProducerError> {
        if self.failed == 0 {
            return Ok(());
        }
        Err(ProducerError::DeliveryFailed {
            sent: self.sent,
            failed: self.failed,
            first_error: self
                .first_error
                .clone()
                .unwrap_or_else(|| "no delivery report before the flush timeout".into()),
        })
    }

    /// One-line JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a summary always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_fields() {
        let mut summary = Summary {
            sent: 5,
            acked: 5,
            ..Summary::default()
        };
        summary.by_event_type.insert("OrderCreated".into(), 3);
        summary.by_event_type.insert("OrderPaid".into(), 1);
        assert_eq!(summary.events(), 4);
        let value: serde_json::Value = serde_json::from_str(&summary.to_json()).unwrap();
        for field in [
            "sent",
            "acked",
            "failed",
            "duplicates",
            "poison",
            "by_event_type",
            "elapsed_seconds",
            "events_per_second",
        ] {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        assert_eq!(value["by_event_type"]["OrderCreated"], 3);
        assert!(value.get("first_error").is_none());
        summary.check_delivered().unwrap();
    }

    #[test]
    fn failed_records_make_the_run_fail() {
        let summary = Summary {
            sent: 10,
            acked: 8,
            failed: 2,
            first_error: Some("Broker: Not enough in-sync replicas".into()),
            ..Summary::default()
        };
        let error = summary.check_delivered().unwrap_err().to_string();
        assert!(
            error.contains("2 of 10") && error.contains("in-sync"),
            "{error}"
        );
    }
}
