//! When was offset X written? For every partition the engine remembers (time, high
//! watermark) points from its own polls, so the write time of any offset produced
//! since the engine started is interpolated without reading the record (the approach
//! of kafka-lag-exporter). Older offsets need the record's own timestamp.

use std::collections::{HashMap, VecDeque};

/// Points kept per partition (enough for hours at a 5 s interval, since points are
/// only added when the high watermark moves).
const MAX_POINTS: usize = 2_000;

/// (time ms, high watermark) points per partition.
#[derive(Debug, Default)]
pub struct ProduceTimeline {
    partitions: HashMap<(String, i32), VecDeque<(i64, i64)>>,
}

impl ProduceTimeline {
    /// Records that `topic[partition]` had high watermark `hwm` at `at_ms`.
    pub fn observe(&mut self, topic: &str, partition: i32, at_ms: i64, hwm: i64) {
        let points = self
            .partitions
            .entry((topic.to_owned(), partition))
            .or_default();
        match points.back() {
            // Unchanged: keep the oldest time at this watermark; log truncation: restart.
            Some(&(_, last)) if last == hwm => return,
            Some(&(_, last)) if hwm < last => points.clear(),
            _ => {}
        }
        points.push_back((at_ms, hwm));
        while points.len() > MAX_POINTS {
            points.pop_front();
        }
    }

    /// Estimated write time (ms) of the record at `offset`, or `None` when it was
    /// written before the first observation.
    pub fn produced_at(&self, topic: &str, partition: i32, offset: i64) -> Option<i64> {
        let points = self.partitions.get(&(topic.to_owned(), partition))?;
        let i = points.iter().position(|&(_, hwm)| hwm > offset)?;
        if i == 0 {
            return None;
        }
        let (t0, h0) = points[i - 1];
        let (t1, h1) = points[i];
        // Records h0..h1 were written in (t0, t1]: spread them evenly.
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
        // Offsets 10..19 were written between 1 s and 3 s.
        assert_eq!(t.produced_at("o", 0, 10), Some(1_200));
        assert_eq!(t.produced_at("o", 0, 19), Some(3_000));
        assert_eq!(
            t.produced_at("o", 0, 9),
            None,
            "written before the first observation"
        );
        assert_eq!(t.produced_at("o", 0, 20), None, "not written yet");
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
