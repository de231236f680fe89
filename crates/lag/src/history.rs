//! In-memory ring of compact per-cycle figures for the dashboard's charts (the last
//! hour by default), so the page shows history without a time-series database.

use std::collections::VecDeque;

use serde::Serialize;

use crate::model::{Snapshot, Status};

/// Figures of one group at one cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupPoint {
    /// Group id.
    pub group: String,
    /// Total lag in records.
    pub lag: i64,
    /// Largest lag in seconds.
    pub lag_seconds: f64,
    /// Committed records per second.
    pub consume_rate: f64,
    /// Produced records per second.
    pub produce_rate: f64,
    /// Status.
    pub status: Status,
    /// Lag per topic, as (topic, lag).
    pub topics: Vec<(String, i64)>,
}

/// One cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// When the cycle started, ms since the Unix epoch.
    pub at_ms: i64,
    /// Groups.
    pub groups: Vec<GroupPoint>,
    /// DLQ records per source topic, as (source topic, records).
    pub dlq: Vec<(String, i64)>,
}

/// Ring of the latest points, bounded by age and count.
#[derive(Debug, Clone)]
pub struct History {
    points: VecDeque<HistoryPoint>,
    max_age_ms: i64,
    max_points: usize,
}

impl History {
    /// A ring keeping points younger than `max_age_ms`, at most `max_points`.
    pub fn new(max_age_ms: i64, max_points: usize) -> Self {
        Self {
            points: VecDeque::new(),
            max_age_ms,
            max_points: max_points.max(1),
        }
    }

    /// Appends the snapshot's figures and drops old points.
    pub fn record(&mut self, snapshot: &Snapshot) {
        self.points.push_back(HistoryPoint {
            at_ms: snapshot.taken_at_ms,
            groups: snapshot
                .groups
                .iter()
                .map(|g| GroupPoint {
                    group: g.group.clone(),
                    lag: g.lag,
                    lag_seconds: g.lag_seconds,
                    consume_rate: g.consume_rate,
                    produce_rate: g.produce_rate,
                    status: g.status,
                    topics: g.topics.iter().map(|t| (t.topic.clone(), t.lag)).collect(),
                })
                .collect(),
            dlq: snapshot
                .dlq
                .iter()
                .map(|d| (d.source_topic.clone(), d.records))
                .collect(),
        });
        let horizon = snapshot.taken_at_ms - self.max_age_ms;
        while self.points.len() > self.max_points
            || self.points.front().is_some_and(|p| p.at_ms < horizon)
        {
            self.points.pop_front();
        }
    }

    /// Points since `since_ms` (all when `None`), oldest first.
    pub fn since(&self, since_ms: Option<i64>) -> Vec<HistoryPoint> {
        self.points
            .iter()
            .filter(|p| since_ms.is_none_or(|s| p.at_ms > s))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(at_ms: i64) -> Snapshot {
        Snapshot {
            taken_at_ms: at_ms,
            poll_millis: 1,
            read_gap_millis: 0,
            groups: Vec::new(),
            dlq: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn drops_points_older_than_the_horizon_and_beyond_the_count() {
        let mut h = History::new(10_000, 3);
        for t in [0, 4_000, 8_000, 12_000, 16_000] {
            h.record(&snapshot(t));
        }
        let at: Vec<i64> = h.since(None).iter().map(|p| p.at_ms).collect();
        assert_eq!(at, vec![8_000, 12_000, 16_000]);
        assert_eq!(h.since(Some(12_000)).len(), 1);
    }
}
