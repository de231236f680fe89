//! When was offset X written? For every partition the engine remembers (time, high
//! watermark) points from its own polls, so the write time of any offset produced
//! since the engine started is interpolated without reading the record (the approach
//! of kafka-lag-exporter). Older offsets need the record's own timestamp.

use std::collections::{HashMap, VecDeque};

/// Points kept per partition (enough for hours at a 5 s interval, since points are
/// only added when the high watermark moves).
const MAX_POINTS: usize = 2_000;

/// One high watermark and the first and last poll that saw it.
#[derive(Debug, Clone, Copy)]
struct Point {
    first_ms: i64,
    last_ms: i64,
    hwm: i64,
}

/// High-watermark points per partition.
#[derive(Debug, Default)]
pub struct ProduceTimeline {
    partitions: HashMap<(String, i32), VecDeque<Point>>,
}

impl ProduceTimeline {
    /// Records that `topic[partition]` had high watermark `hwm` at `at_ms`.
    pub fn observe(&mut self, topic: &str, partition: i32, at_ms: i64, hwm: i64) {
        let points = self
            .partitions
            .entry((topic.to_owned(), partition))
            .or_default();
        match points.back_mut() {
            // Unchanged: the records after it were written after this poll, not after
            // the first one that saw it (an idle hour must not age them).
            Some(last) if last.hwm == hwm => {
                last.last_ms = last.last_ms.max(at_ms);
                return;
            }
            // Log truncation: restart.
            Some(last) if hwm < last.hwm => points.clear(),
            _ => {}
        }
        points.push_back(Point {
            first_ms: at_ms,
            last_ms: at_ms,
            hwm,
        });
        while points.len() > MAX_POINTS {
            points.pop_front();
        }
    }

    /// Estimated write time (ms) of the record at `offset`, or `None` when it was
    /// written before the first observation.
    pub fn produced_at(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let points = self.partitions.get(&(topic.to_owned(), partition))?;
        let i = points.iter().position(|p| p.hwm > offset)?;
        if i == 0 {
            return None;
        }
        let (before, after) = (points[i - 1], points[i]);
        // Records h0..h1 were written after the last poll that still saw h0 and by
        // the first poll that saw h1: spread them evenly over that span.
        let (t0, h0) = (before.last_ms, before.hwm);
        let (t1, h1) = (after.first_ms, after.hwm);
        let share = (offset - h0 + 1) as f64 / (h1 - h0) as f64;
        Some(t0 + ((t1 - t0) as f64 * share) as i64)
    }

    /// Forgets partitions not in `keep`.
    pub fn retain(&mut self, keep: &dyn Fn(&(String, i32)) -> bool) {
        self.partitions.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_between_observations() {
        let mut t = ProduceTimeline::default();
        t.observe("o", 0, 1_000, 10);
        t.observe("o", 0, 2_000, 10);
        t.observe("o", 0, 3_000, 20);
        // Offsets 10..19 were written after the 2 s poll (still 10) and by 3 s.
        assert_eq!(t.produced_at("o", 0, 10), Some(2_100));
        assert_eq!(t.produced_at("o", 0, 19), Some(3_000));
        assert_eq!(
            t.produced_at("o", 0, 9),
            None,
            "written before the first observation"
        );
        assert_eq!(t.produced_at("o", 0, 20), None, "not written yet");
    }

    #[test]
    fn records_after_an_idle_hour_are_dated_from_the_last_unchanged_poll() {
        // The case: a topic idle for an hour (polled every 5 s), then 1,000
        // records arrive within one interval; the consumer is 500 behind.
        let mut t = ProduceTimeline::default();
        for poll in 0..=720 {
            t.observe("o", 0, poll * 5_000, 1_000);
        }
        let arrived = 720 * 5_000 + 5_000;
        t.observe("o", 0, arrived, 2_000);
        let first_unread = 1_500;
        let written = t.produced_at("o", 0, first_unread).expect("dated");
        let lag_seconds = (arrived - written) as f64 / 1000.0;
        assert!(
            lag_seconds <= 5.0,
            "lag {lag_seconds} s: the records arrived within the last 5 s, not over the idle hour"
        );
    }

    #[test]
    fn truncated_log_restarts_the_timeline() {
        let mut t = ProduceTimeline::default();
        t.observe("o", 0, 1_000, 10);
        t.observe("o", 0, 2_000, 20);
        t.observe("o", 0, 3_000, 5);
        assert_eq!(t.produced_at("o", 0, 12), None);
    }
}
