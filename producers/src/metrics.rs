//! The producer's Prometheus metrics, named once here.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

/// Metric name: records whose delivery report came back, by topic, event type and result.
pub const RECORDS_TOTAL: &str = "orderflow_producer_records_total";
/// Metric name: time from handing a record to the client until its delivery report.
pub const DELIVERY_LATENCY_SECONDS: &str = "orderflow_producer_delivery_latency_seconds";

/// `result` label value of a record the broker acknowledged.
pub const RESULT_ACKED: &str = "acked";
/// `result` label value of a record that could not be delivered.
pub const RESULT_FAILED: &str = "failed";

/// Latency buckets in seconds: linger and batching put typical values in the
/// milliseconds, a struggling broker in the seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The producer's metric families, registered in one registry.
#[derive(Debug, Clone)]
pub struct ProducerMetrics {
    records: IntCounterVec,
    delivery_latency: Histogram,
}

impl ProducerMetrics {
    /// Creates the metric families and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let records = IntCounterVec::new(
            Opts::new(
                RECORDS_TOTAL,
                "Records whose delivery report came back, by result (acked or failed).",
            ),
            &["topic", "event_type", "result"],
        )?;
        let delivery_latency = Histogram::with_opts(
            HistogramOpts::new(
                DELIVERY_LATENCY_SECONDS,
                "Seconds from handing a record to the Kafka client until its delivery report.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(delivery_latency.clone()))?;
        Ok(Self {
            records,
            delivery_latency,
        })
    }

    /// The acked and failed counters of one topic and event type, resolved once so the
    /// delivery path does no label lookups.
    pub fn record_counters(&self, topic: &str, event_type: &str) -> ResultCounters {
        ResultCounters {
            acked: self
                .records
                .with_label_values(&[topic, event_type, RESULT_ACKED]),
            failed: self
                .records
                .with_label_values(&[topic, event_type, RESULT_FAILED]),
        }
    }

    /// The delivery latency histogram.
    pub fn delivery_latency(&self) -> &Histogram {
        &self.delivery_latency
    }
}

/// The two result counters of one (topic, event type).
#[derive(Debug, Clone)]
pub struct ResultCounters {
    /// Records acknowledged by the broker.
    pub acked: IntCounter,
    /// Records that failed delivery.
    pub failed: IntCounter,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    #[test]
    fn exports_records_and_latency_under_their_names() {
        let registry = Registry::new();
        let metrics = ProducerMetrics::register(&registry).unwrap();
        let counters = metrics.record_counters("orders", "OrderPaid");
        counters.acked.inc_by(3);
        counters.failed.inc();
        metrics.delivery_latency().observe(0.004);

        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains(
            r#"orderflow_producer_records_total{event_type="OrderPaid",result="acked",topic="orders"} 3"#
        ), "{text}");
        assert!(
            text.contains(r#"result="failed",topic="orders"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"orderflow_producer_delivery_latency_seconds_bucket{le="0.005"} 1"#),
            "{text}"
        );
        assert!(
            ProducerMetrics::register(&registry).is_err(),
            "names are registered once"
        );
    }
}
