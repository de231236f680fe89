//! Every metric of the consumer, named once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use orderflow_schemas::{DecodeError, RegistryError};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Outcome label values of `orderflow_consumer_records_total`.
pub(crate) mod outcome {
    /// Effect applied.
    pub(crate) const PROCESSED: &str = "processed";
    /// Already processed: skipped.
    pub(crate) const DUPLICATE: &str = "duplicate";
    /// Written to the dead-letter topic.
    pub(crate) const DEAD_LETTERED: &str = "dead_lettered";
}

/// Registry trouble per schema id, counted by the decoder. The `schema_id` label takes
/// the first [`MAX_LABELLED_SCHEMA_IDS`] ids seen, then `other`: a topic full of
/// garbage ids must not grow the series without bound.
#[derive(Debug, Clone)]
pub(crate) struct RegistryMetrics {
    waits: IntCounterVec,
    lookup_failures: IntCounterVec,
    labelled: Arc<Mutex<HashSet<u32>>>,
}

/// Most schema ids with their own series in [`RegistryMetrics`].
pub(crate) const MAX_LABELLED_SCHEMA_IDS: usize = 100;

impl RegistryMetrics {
    /// Creates and registers the registry metrics.
    pub(crate) fn new(registry: &Registry) -> Self {
        Self {
            waits: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "orderflow_consumer_registry_waits_total",
                        "Records sent back to wait (with backoff) on the schema registry, by writer schema id.",
                    ),
                    &["schema_id"],
                )
                .expect("valid"),
            ),
            lookup_failures: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "orderflow_consumer_registry_lookup_failures_total",
                        "Failed writer schema lookups, by schema id and reason (not_found, unreachable, \
                         server_error, unauthorized, tls, invalid_answer, refused).",
                    ),
                    &["schema_id", "reason"],
                )
                .expect("valid"),
            ),
            labelled: Arc::default(),
        }
    }

    /// A record of `schema_id` waits on the registry.
    pub(crate) fn waited(&self, schema_id: u32) {
        self.waits
            .with_label_values(&[&self.label(schema_id)])
            .inc();
    }

    /// A lookup of `schema_id` failed with `error`.
    pub(crate) fn lookup_failed(&self, schema_id: u32, error: &DecodeError) {
        let reason = match error {
            DecodeError::UnknownSchemaId(_) => "not_found",
            DecodeError::RegistryUnavailable { source, .. } => match source {
                RegistryError::NotFound { .. } => "not_found",
                RegistryError::Unreachable { status: None, .. } => "unreachable",
                RegistryError::Unreachable { .. } => "server_error",
                RegistryError::Unauthorized { .. } => "unauthorized",
                RegistryError::Tls { .. } => "tls",
                RegistryError::InvalidResponse { .. } => "invalid_answer",
                _ => "refused",
            },
            _ => return,
        };
        self.lookup_failures
            .with_label_values(&[&self.label(schema_id), reason])
            .inc();
    }

    fn label(&self, schema_id: u32) -> String {
        let mut labelled = self.labelled.lock().unwrap_or_else(PoisonError::into_inner);
        if labelled.contains(&schema_id) || labelled.len() < MAX_LABELLED_SCHEMA_IDS {
            labelled.insert(schema_id);
            schema_id.to_string()
        } else {
            "other".to_owned()
        }
    }
}

/// The consumer's metrics, with the group and topic labels bound.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerMetrics {
    /// Records that were processed.
    pub(crate) processed: IntCounter,
    /// Records skipped as duplicates.
    pub(crate) duplicates: IntCounter,
    /// Records dead-lettered.
    pub(crate) dead_lettered: IntCounter,
    /// Redelivered records not dead-lettered again (the ledger had them).
    pub(crate) dead_letter_skipped: IntCounter,
    /// Retries (each new attempt of a record after a failure).
    pub(crate) retries: IntCounter,
    /// Dead-letter writes that failed (and are retried).
    pub(crate) dlq_write_failures: IntCounter,
    /// Dead-letter writes that can never succeed (the process stops).
    pub(crate) dlq_write_unrecoverable: IntCounter,
    /// Time from dispatch to done, per record.
    pub(crate) processing_seconds: Histogram,
    /// now - occurred_at when the effect commits.
    pub(crate) event_age_seconds: Histogram,
    /// Records per database transaction.
    pub(crate) batch_size: Histogram,
    /// Records in flight.
    pub(crate) in_flight: IntGauge,
    /// Records received and not done (queued + in flight).
    pub(crate) buffered: IntGauge,
    /// Partitions paused by back-pressure or the circuit breaker.
    pub(crate) paused_partitions: IntGauge,
    /// Records waiting on the schema registry, out of the database slots.
    pub(crate) registry_waiting: IntGauge,
    /// 0 closed, 1 open, 2 half-open.
    pub(crate) breaker_state: IntGauge,
    /// Rebalance events by kind (assign, revoke).
    pub(crate) rebalances: IntCounterVec,
    /// Last committed offset per partition.
    pub(crate) committed_offset: IntGaugeVec,
    /// Lag per partition as librdkafka's statistics report it.
    pub(crate) lag: IntGaugeVec,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: T) -> T {
    // Registering the same name twice is a programming error caught by tests.
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registered once");
    metric
}

impl ConsumerMetrics {
    /// Creates and registers the metrics for `group` reading `topic`.
    pub(crate) fn new(registry: &Registry, group: &str, topic: &str) -> Self {
        let records = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "orderflow_consumer_records_total",
                    "Records finished, by outcome (processed, duplicate, dead_lettered).",
                ),
                &["group", "topic", "outcome"],
            )
            .expect("valid metric"),
        );
        let counter = |name: &str, help: &str| {
            register(
                registry,
                IntCounterVec::new(Opts::new(name, help), &["group", "topic"]).expect("valid"),
            )
            .with_label_values(&[group, topic])
        };
        let gauge = |name: &str, help: &str| {
            register(
                registry,
                IntGaugeVec::new(Opts::new(name, help), &["group", "topic"]).expect("valid"),
            )
            .with_label_values(&[group, topic])
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets),
                    &["group", "topic"],
                )
                .expect("valid"),
            )
            .with_label_values(&[group, topic])
        };
        let seconds = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ];
        let per_partition = |name: &str, help: &str| {
            register(
                registry,
                IntGaugeVec::new(Opts::new(name, help), &["group", "topic", "partition"])
                    .expect("valid"),
            )
        };
        Self {
            processed: records.with_label_values(&[group, topic, outcome::PROCESSED]),
            duplicates: records.with_label_values(&[group, topic, outcome::DUPLICATE]),
            dead_lettered: records.with_label_values(&[group, topic, outcome::DEAD_LETTERED]),
            dead_letter_skipped: counter(
                "orderflow_consumer_dead_letter_skipped_total",
                "Redelivered records the group had dead-lettered before, not written to the DLQ again.",
            ),
            retries: counter(
                "orderflow_consumer_retries_total",
                "New attempts of a record after a failure.",
            ),
            dlq_write_failures: counter(
                "orderflow_consumer_dlq_write_failures_total",
                "Dead-letter writes that were not acked (retried).",
            ),
            dlq_write_unrecoverable: counter(
                "orderflow_consumer_dlq_write_unrecoverable_total",
                "Dead-letter writes that can never succeed; the consumer stops on the first.",
            ),
            processing_seconds: histogram(
                "orderflow_consumer_processing_seconds",
                "Time from dispatch to done, per record.",
                seconds.clone(),
            ),
            event_age_seconds: histogram(
                "orderflow_consumer_event_age_seconds",
                "Age of an event (now - occurred_at) when its effect commits.",
                vec![
                    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
                ],
            ),
            batch_size: histogram(
                "orderflow_consumer_batch_records",
                "Records per database transaction.",
                vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0],
            ),
            in_flight: gauge("orderflow_consumer_in_flight", "Records in flight."),
            buffered: gauge(
                "orderflow_consumer_buffered_records",
                "Records received and not done (queued and in flight).",
            ),
            paused_partitions: gauge(
                "orderflow_consumer_paused_partitions",
                "Partitions paused by back-pressure or the circuit breaker.",
            ),
            registry_waiting: gauge(
                "orderflow_consumer_registry_waiting_records",
                "Records waiting on the schema registry (they hold no database slot).",
            ),
            breaker_state: gauge(
                "orderflow_consumer_circuit_breaker_state",
                "Database circuit breaker: 0 closed, 1 open, 2 half-open.",
            ),
            rebalances: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "orderflow_consumer_rebalances_total",
                        "Rebalance events, by kind (assign, revoke, error: a failed rebalance).",
                    ),
                    &["group", "topic", "kind"],
                )
                .expect("valid"),
            ),
            committed_offset: per_partition(
                "orderflow_consumer_committed_offset",
                "Last offset committed by this worker, per partition.",
            ),
            lag: per_partition(
                "orderflow_consumer_lag_records",
                "Consumer lag in records per partition, from librdkafka statistics.",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_register_and_export_names() {
        let registry = Registry::new();
        let metrics = ConsumerMetrics::new(&registry, "g", "orders");
        metrics.processed.inc();
        metrics
            .committed_offset
            .with_label_values(&["g", "orders", "0"])
            .set(5);
        let names: Vec<String> = registry
            .gather()
            .iter()
            .map(|family| family.name().to_owned())
            .collect();
        assert!(names.contains(&"orderflow_consumer_records_total".to_owned()));
        assert!(names.contains(&"orderflow_consumer_committed_offset".to_owned()));
    }
}
