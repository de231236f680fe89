//! Prometheus metrics of the lag exporter, named once here. Every series is rebuilt
//! from the latest snapshot, so groups and partitions that vanish stop being exported
//! and unknown values are absent (never NaN or -1).

use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use crate::model::{OffsetState, Snapshot};

/// Lag in records per group, topic, partition.
pub const LAG: &str = "orderflow_consumergroup_lag";
/// Age of the first unconsumed record, seconds, per group, topic, partition.
pub const LAG_SECONDS: &str = "orderflow_consumergroup_lag_seconds";
/// Committed offset per group, topic, partition (absent when never committed).
pub const COMMITTED_OFFSET: &str = "orderflow_consumergroup_committed_offset";
/// High watermark per topic, partition.
pub const HIGH_WATERMARK: &str = "orderflow_partition_high_watermark";
/// Lag in records summed per group and topic.
pub const LAG_SUM: &str = "orderflow_consumergroup_lag_sum";
/// Group status code (0 CAUGHT_UP, 1 OK, 2 LAGGING, 3 STALLED, 4 STOPPED, 5 REWIND,
/// 6 UNKNOWN, 7 NOT_FOUND).
pub const STATUS: &str = "orderflow_consumergroup_status";
/// Estimated seconds until the group is caught up (absent when it never would be).
pub const CATCHUP_SECONDS: &str = "orderflow_consumergroup_catchup_seconds";
/// Records lost to retention before the group read them, per group, topic, partition.
pub const LOST_RECORDS: &str = "orderflow_consumergroup_lost_records";
/// Committed records per second per group and topic.
pub const CONSUME_RATE: &str = "orderflow_consumergroup_consume_rate";
/// Produced records per second per group and topic.
pub const PRODUCE_RATE: &str = "orderflow_consumergroup_produce_rate";
/// Records in a dead-letter topic per source topic still to deal with (neither
/// removed by retention or DeleteRecords nor gone over by a redrive).
pub const DLQ_RECORDS: &str = "orderflow_dlq_records";
/// Duration of the last poll cycle, seconds.
pub const POLL_SECONDS: &str = "orderflow_lag_poll_seconds";
/// Age of the figures served, seconds: time since the start of the last poll that
/// succeeded (grows while polls fail).
pub const SNAPSHOT_AGE: &str = "orderflow_lag_snapshot_age_seconds";
/// Polls that failed in a row since the last one that succeeded.
pub const FAILED_POLLS: &str = "orderflow_lag_failed_polls";

/// Every metric name this crate exports, for checks against dashboards and alerts.
pub const METRIC_NAMES: &[&str] = &[
    LAG,
    LAG_SECONDS,
    COMMITTED_OFFSET,
    HIGH_WATERMARK,
    LAG_SUM,
    STATUS,
    CATCHUP_SECONDS,
    LOST_RECORDS,
    CONSUME_RATE,
    PRODUCE_RATE,
    DLQ_RECORDS,
    POLL_SECONDS,
    SNAPSHOT_AGE,
    FAILED_POLLS,
];

/// The exporter's gauges, registered in one registry.
#[derive(Clone)]
pub struct LagMetrics {
    registry: Registry,
    lag: IntGaugeVec,
    lag_seconds: GaugeVec,
    committed: IntGaugeVec,
    high_watermark: IntGaugeVec,
    lag_sum: IntGaugeVec,
    status: IntGaugeVec,
    catchup: GaugeVec,
    lost: IntGaugeVec,
    consume_rate: GaugeVec,
    produce_rate: GaugeVec,
    dlq: IntGaugeVec,
    poll_seconds: prometheus::Gauge,
    snapshot_age: prometheus::Gauge,
    failed_polls: prometheus::IntGauge,
}

fn int(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

fn float(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

const PARTITION: &[&str] = &["group", "topic", "partition"];
const GROUP_TOPIC: &[&str] = &["group", "topic"];

impl LagMetrics {
    /// Creates and registers the gauges in a fresh registry.
    pub fn new() -> Self {
        let r = Registry::new();
        let poll_seconds = prometheus::Gauge::new(
            POLL_SECONDS,
            "Duration of the last lag poll cycle in seconds",
        )
        .expect("valid metric definition");
        r.register(Box::new(poll_seconds.clone()))
            .expect("metric registered once");
        let snapshot_age = prometheus::Gauge::new(
            SNAPSHOT_AGE,
            "Seconds since the start of the last successful lag poll: the age of the figures served",
        )
        .expect("valid metric definition");
        r.register(Box::new(snapshot_age.clone()))
            .expect("metric registered once");
        let failed_polls = prometheus::IntGauge::new(
            FAILED_POLLS,
            "Lag polls that failed in a row since the last successful one",
        )
        .expect("valid metric definition");
        r.register(Box::new(failed_polls.clone()))
            .expect("metric registered once");
        Self {
            lag: int(
                &r,
                LAG,
                "Records the group has not consumed yet (never negative)",
                PARTITION,
            ),
            lag_seconds: float(
                &r,
                LAG_SECONDS,
                "Age of the first unconsumed record in seconds, 0 when caught up",
                PARTITION,
            ),
            committed: int(
                &r,
                COMMITTED_OFFSET,
                "Committed offset (next offset to read); absent when never committed",
                PARTITION,
            ),
            high_watermark: int(
                &r,
                HIGH_WATERMARK,
                "High watermark (log end offset)",
                &["topic", "partition"],
            ),
            lag_sum: int(
                &r,
                LAG_SUM,
                "Lag in records summed over the topic's partitions",
                GROUP_TOPIC,
            ),
            status: int(
                &r,
                STATUS,
                "Group status: 0 CAUGHT_UP, 1 OK, 2 LAGGING, 3 STALLED, 4 STOPPED, 5 REWIND, 6 UNKNOWN, 7 NOT_FOUND",
                &["group"],
            ),
            catchup: float(
                &r,
                CATCHUP_SECONDS,
                "Estimated seconds until caught up; absent when lag grows",
                &["group"],
            ),
            lost: int(
                &r,
                LOST_RECORDS,
                "Records deleted by retention before the group read them",
                PARTITION,
            ),
            consume_rate: float(
                &r,
                CONSUME_RATE,
                "Committed records per second over the window",
                GROUP_TOPIC,
            ),
            produce_rate: float(
                &r,
                PRODUCE_RATE,
                "Produced records per second over the window",
                GROUP_TOPIC,
            ),
            dlq: int(
                &r,
                DLQ_RECORDS,
                "Records in the dead-letter topic of a source topic that no redrive has gone over yet",
                &["source_topic"],
            ),
            poll_seconds,
            snapshot_age,
            failed_polls,
            registry: r,
        }
    }

    /// The registry to serve on `/metrics`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sets how stale the served figures are: `age_seconds` since the last successful
    /// poll started (`None` before the first one), after `failed` failed polls in a row.
    pub fn set_staleness(&self, age_seconds: Option<f64>, failed: u32) {
        if let Some(age) = age_seconds {
            self.snapshot_age.set(age.max(0.0));
        }
        self.failed_polls.set(i64::from(failed));
    }

    /// Replaces every series with the snapshot's figures.
    pub fn update(&self, snapshot: &Snapshot) {
        for v in [
            &self.lag,
            &self.committed,
            &self.high_watermark,
            &self.lag_sum,
            &self.status,
            &self.lost,
            &self.dlq,
        ] {
            v.reset();
        }
        for v in [
            &self.lag_seconds,
            &self.catchup,
            &self.consume_rate,
            &self.produce_rate,
        ] {
            v.reset();
        }
        self.poll_seconds.set(snapshot.poll_millis as f64 / 1000.0);
        for g in &snapshot.groups {
            self.status
                .with_label_values(&[&g.group])
                .set(g.status.code());
            if let Some(c) = g.catchup_seconds {
                self.catchup.with_label_values(&[&g.group]).set(c);
            }
            for t in &g.topics {
                let gt = [g.group.as_str(), t.topic.as_str()];
                self.lag_sum.with_label_values(&gt).set(t.lag);
                self.consume_rate.with_label_values(&gt).set(t.consume_rate);
                self.produce_rate.with_label_values(&gt).set(t.produce_rate);
                for p in &t.partitions {
                    let partition = p.partition.to_string();
                    let l = [g.group.as_str(), t.topic.as_str(), partition.as_str()];
                    self.high_watermark
                        .with_label_values(&[t.topic.as_str(), partition.as_str()])
                        .set(p.log.high_watermark);
                    if p.offset_state == OffsetState::Unknown {
                        // Lag is not known: absent, never a made-up 0.
                        continue;
                    }
                    self.lag.with_label_values(&l).set(p.lag);
                    self.lost.with_label_values(&l).set(p.lost_records);
                    if let Some(s) = p.lag_seconds {
                        self.lag_seconds.with_label_values(&l).set(s);
                    }
                    if let Some(c) = p.committed {
                        self.committed.with_label_values(&l).set(c);
                    }
                }
            }
        }
        for d in &snapshot.dlq {
            self.dlq
                .with_label_values(&[&d.source_topic])
                .set(d.records);
        }
    }
}

impl Default for LagMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        GroupLag, Isolation, LogOffsets, Membership, OffsetState, PartitionLag, Status, TopicLag,
    };
    use prometheus::{Encoder, TextEncoder};

    fn snapshot(group: &str, committed: Option<i64>, catchup: Option<f64>) -> Snapshot {
        let partition = PartitionLag {
            topic: "orders".into(),
            partition: 0,
            log: LogOffsets {
                log_start: Some(0),
                high_watermark: 10,
                last_stable: 10,
            },
            committed,
            offset_state: if committed.is_some() {
                OffsetState::Committed
            } else {
                OffsetState::NoCommit
            },
            end_offset: 10,
            lag: 10 - committed.unwrap_or(0),
            lost_records: 0,
            lag_seconds: None,
            read_skew_records: 0,
            consume_rate: 0.0,
            produce_rate: 0.0,
            catchup_seconds: catchup,
            status: Status::Stopped,
            reason: "test".into(),
            consumer_id: None,
            measuring: false,
        };
        Snapshot {
            taken_at_ms: 0,
            poll_millis: 5,
            read_gap_millis: 0,
            groups: vec![GroupLag {
                group: group.into(),
                membership: Membership::Unknown {
                    reason: "test".into(),
                },
                isolation: Isolation::ReadUncommitted,
                status: Status::Stopped,
                reason: "test".into(),
                lag: partition.lag,
                lag_seconds: 0.0,
                lost_records: 0,
                consume_rate: 0.0,
                produce_rate: 0.0,
                catchup_seconds: catchup,
                measuring: false,
                topics: vec![TopicLag {
                    topic: "orders".into(),
                    lag: partition.lag,
                    lag_seconds: 0.0,
                    consume_rate: 0.0,
                    produce_rate: 0.0,
                    partitions: vec![partition],
                }],
            }],
            dlq: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn text(metrics: &LagMetrics) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&metrics.registry().gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn unknown_values_are_absent_never_nan_or_minus_one() {
        let metrics = LagMetrics::new();
        metrics.update(&snapshot("g1", None, None));
        let text = text(&metrics);
        assert!(
            text.contains(
                r#"orderflow_consumergroup_lag{group="g1",partition="0",topic="orders"} 10"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"orderflow_consumergroup_status{group="g1"} 4"#),
            "{text}"
        );
        assert!(!text.contains("NaN") && !text.contains("} -1"), "{text}");
        assert!(
            !text.contains("orderflow_consumergroup_committed_offset{"),
            "{text}"
        );
        assert!(
            !text.contains("orderflow_consumergroup_lag_seconds{"),
            "{text}"
        );
        assert!(
            !text.contains("orderflow_consumergroup_catchup_seconds{"),
            "{text}"
        );
    }

    #[test]
    fn series_of_vanished_groups_are_dropped() {
        let metrics = LagMetrics::new();
        metrics.update(&snapshot("old", Some(4), Some(3.0)));
        metrics.update(&snapshot("new", Some(4), Some(3.0)));
        let text = text(&metrics);
        assert!(!text.contains(r#"group="old""#), "{text}");
        assert!(text.contains(r#"orderflow_consumergroup_committed_offset{group="new",partition="0",topic="orders"} 4"#), "{text}");
    }

    #[test]
    fn every_exported_family_is_in_the_name_list() {
        let metrics = LagMetrics::new();
        metrics.update(&snapshot("g", Some(1), Some(1.0)));
        for family in metrics.registry().gather() {
            assert!(
                METRIC_NAMES.contains(&family.name()),
                "{} not listed",
                family.name()
            );
        }
    }
}
