//! The producer's Prometheus metrics, named once here.

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Metric name: records whose delivery report came back, by topic, event type and result.
pub const RECORDS_TOTAL: &str = "orderflow_producer_records_total";
/// Metric name: time from handing a record to the client until its delivery report.
pub const DELIVERY_LATENCY_SECONDS: &str = "orderflow_producer_delivery_latency_seconds";

/// Metric name: outbox rows not yet acknowledged by the broker (order service).
pub const OUTBOX_PENDING: &str = "orderflow_outbox_pending";
/// Metric name: outbox rows the relay published and marked sent (order service).
pub const OUTBOX_PUBLISHED_TOTAL: &str = "orderflow_outbox_published_total";
/// Metric name: outbox rows parked after permanent delivery failures (order service).
pub const OUTBOX_PARKED: &str = "orderflow_outbox_parked";
/// Metric name: age of the oldest unsent outbox row, in seconds (order service).
pub const OUTBOX_OLDEST_UNSENT_AGE_SECONDS: &str = "orderflow_outbox_oldest_unsent_age_seconds";
/// Metric name: when the relay last had a row acknowledged, as a Unix time (order service).
pub const OUTBOX_LAST_SEND_TIMESTAMP_SECONDS: &str = "orderflow_outbox_last_send_timestamp_seconds";
/// Metric name: outbox rows the relay parked (order service).
pub const OUTBOX_PARKED_TOTAL: &str = "orderflow_outbox_parked_total";
/// Metric name: outbox rows whose delivery failed and will be retried (order service).
pub const OUTBOX_PUBLISH_FAILURES_TOTAL: &str = "orderflow_outbox_publish_failures_total";
/// Outbox slots this relay owns and publishes.
pub const OUTBOX_SLOTS_OWNED: &str = "orderflow_outbox_slots_owned";
/// Metric name: seconds from an outbox row's write (its transaction) until the Kafka
/// transaction carrying it committed (order service).
pub const OUTBOX_COMMIT_TO_ACK_SECONDS: &str = "orderflow_outbox_commit_to_ack_seconds";
/// Metric name: HTTP requests to the order API, by route template and status code.
pub const ORDER_API_REQUESTS_TOTAL: &str = "orderflow_order_api_requests_total";
/// Metric name: order API requests refused by the per-client rate limit, by client name.
pub const ORDER_API_RATE_LIMITED_TOTAL: &str = "orderflow_order_api_rate_limited_total";

/// `result` label value of a record the broker acknowledged.
pub const RESULT_ACKED: &str = "acked";
/// `result` label value of a record that could not be delivered.
pub const RESULT_FAILED: &str = "failed";

/// Latency buckets in seconds: linger and batching put typical values in the
/// milliseconds, a struggling broker in the seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of the relay's commit-to-ack delay: tens of milliseconds when it keeps up,
/// seconds when a backlog builds, minutes during an outage; fine enough around the
/// usual values for p99.9 to mean something.
const COMMIT_TO_ACK_BUCKETS: [f64; 24] = [
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
    7.5, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0,
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

/// The order service's metric families: the outbox relay and the HTTP API.
#[derive(Debug, Clone)]
pub struct OrderServiceMetrics {
    /// Unsent outbox rows, refreshed by the relay after every round.
    pub outbox_pending: IntGauge,
    /// Parked outbox rows, refreshed by the relay after every round.
    pub outbox_parked: IntGauge,
    /// Age of the oldest unsent row (0 when none), refreshed by the relay every second.
    pub outbox_oldest_unsent_age: Gauge,
    /// When the relay last had a row acknowledged and marked sent (Unix seconds).
    pub outbox_last_send: Gauge,
    /// Outbox rows the relay parked.
    pub outbox_parked_rows: IntCounter,
    /// Outbox rows published and marked sent.
    pub outbox_published: IntCounter,
    /// Outbox rows whose delivery failed (each attempt counted).
    pub outbox_publish_failures: IntCounter,
    /// Outbox slots this relay owns (of 64), refreshed every second.
    pub outbox_slots_owned: IntGauge,
    /// Per published row: seconds from its write until its Kafka transaction committed.
    pub outbox_commit_to_ack: Histogram,
    /// API requests by `route` (the path template, never an order id) and `status`.
    pub api_requests: IntCounterVec,
    /// API requests refused by the rate limit, by `client` (the token's name, or
    /// `anonymous` for clients known only by address).
    pub api_rate_limited: IntCounterVec,
}

impl OrderServiceMetrics {
    /// Creates the metric families and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let outbox_pending = IntGauge::new(
            OUTBOX_PENDING,
            "Outbox rows written but not yet acknowledged by the broker.",
        )?;
        let outbox_parked = IntGauge::new(
            OUTBOX_PARKED,
            "Outbox rows parked after permanent delivery failures; their orders' later events wait behind them.",
        )?;
        let outbox_oldest_unsent_age = Gauge::new(
            OUTBOX_OLDEST_UNSENT_AGE_SECONDS,
            "Age of the oldest outbox row not yet acknowledged by the broker (0 when none): how late the next event to leave already is.",
        )?;
        let outbox_last_send = Gauge::new(
            OUTBOX_LAST_SEND_TIMESTAMP_SECONDS,
            "When the relay last had an outbox row acknowledged and marked sent, as a Unix time (0 before the first).",
        )?;
        let outbox_parked_rows = IntCounter::new(
            OUTBOX_PARKED_TOTAL,
            "Outbox rows the relay parked after permanent delivery failures.",
        )?;
        let outbox_published = IntCounter::new(
            OUTBOX_PUBLISHED_TOTAL,
            "Outbox rows the broker acknowledged and the relay marked sent.",
        )?;
        let outbox_publish_failures = IntCounter::new(
            OUTBOX_PUBLISH_FAILURES_TOTAL,
            "Outbox row deliveries that failed (retried later, or parked).",
        )?;
        let outbox_slots_owned = IntGauge::new(
            OUTBOX_SLOTS_OWNED,
            "Outbox slots (of 64) this relay owns and publishes; the relays on one database share them out.",
        )?;
        let outbox_commit_to_ack = Histogram::with_opts(
            HistogramOpts::new(
                OUTBOX_COMMIT_TO_ACK_SECONDS,
                "Seconds from an outbox row's write (its order's transaction) until the Kafka transaction that published it committed.",
            )
            .buckets(COMMIT_TO_ACK_BUCKETS.to_vec()),
        )?;
        let api_requests = IntCounterVec::new(
            Opts::new(
                ORDER_API_REQUESTS_TOTAL,
                "Order API requests by route template and HTTP status.",
            ),
            &["route", "status"],
        )?;
        let api_rate_limited = IntCounterVec::new(
            Opts::new(
                ORDER_API_RATE_LIMITED_TOTAL,
                "Order API requests refused with 429 by the per-client rate limit, by client name.",
            ),
            &["client"],
        )?;
        registry.register(Box::new(outbox_pending.clone()))?;
        registry.register(Box::new(outbox_parked.clone()))?;
        registry.register(Box::new(outbox_oldest_unsent_age.clone()))?;
        registry.register(Box::new(outbox_last_send.clone()))?;
        registry.register(Box::new(outbox_parked_rows.clone()))?;
        registry.register(Box::new(outbox_published.clone()))?;
        registry.register(Box::new(outbox_publish_failures.clone()))?;
        registry.register(Box::new(outbox_slots_owned.clone()))?;
        registry.register(Box::new(outbox_commit_to_ack.clone()))?;
        registry.register(Box::new(api_requests.clone()))?;
        registry.register(Box::new(api_rate_limited.clone()))?;
        Ok(Self {
            outbox_pending,
            outbox_parked,
            outbox_oldest_unsent_age,
            outbox_last_send,
            outbox_parked_rows,
            outbox_published,
            outbox_publish_failures,
            outbox_slots_owned,
            outbox_commit_to_ack,
            api_requests,
            api_rate_limited,
        })
    }
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
