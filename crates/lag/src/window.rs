//! Sliding window of samples per partition: rates, catch-up estimate and the
//! Burrow-like status rules. Pure logic: callers pass timestamps in.

use std::collections::VecDeque;

use crate::model::Status;

/// One observation of a partition for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the sample was taken, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Committed offset, if any.
    pub committed: Option<i64>,
    /// High watermark (for the produce rate).
    pub high_watermark: i64,
    /// Lag in records at that time.
    pub lag: i64,
}

/// Samples of one partition covering at least the window (plus one older anchor).
#[derive(Debug, Clone, Default)]
pub struct PartitionWindow {
    samples: VecDeque<Sample>,
}

/// Whether the rest of the group shows signs of life, which separates STALLED from STOPPED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupActivity {
    /// Another partition of the group advanced its committed offset within the window.
    CommitsElsewhere,
    /// The coordinator reports this many members (> 0).
    Members(usize),
    /// Neither: no known member and no progress anywhere.
    Idle,
}

/// Rates and catch-up estimate over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Committed records per second.
    pub consume: f64,
    /// Produced records per second.
    pub produce: f64,
    /// Seconds until lag reaches 0 at these rates; `None` when it never would.
    pub catchup_seconds: Option<f64>,
}

impl PartitionWindow {
    /// Adds a sample and drops those no longer needed to cover `window_ms`.
    pub fn push(&mut self, sample: Sample, window_ms: i64) {
        if let Some(last) = self.samples.back()
            && sample.at_ms <= last.at_ms
        {
            // Clock went backwards or duplicate cycle: keep the newer reading only.
            self.samples.pop_back();
        }
        self.samples.push_back(sample);
        let horizon = sample.at_ms - window_ms;
        // Keep exactly one sample at or before the horizon as the window's anchor.
        while self.samples.len() >= 2 && self.samples[1].at_ms <= horizon {
            self.samples.pop_front();
        }
    }

    /// Samples currently held, oldest first.
    pub fn samples(&self) -> &VecDeque<Sample> {
        &self.samples
    }

    /// True when the held samples span the whole window.
    pub fn is_full(&self, window_ms: i64) -> bool {
        match (self.samples.front(), self.samples.back()) {
            (Some(first), Some(last)) => {
                self.samples.len() >= 2 && last.at_ms - first.at_ms >= window_ms
            }
            _ => false,
        }
    }

    /// True when the committed offset changed between any two held samples.
    pub fn committed_moved(&self) -> bool {
        let mut it = self.samples.iter().map(|s| s.committed);
        match it.next() {
            Some(first) => it.any(|c| c != first),
            None => false,
        }
    }

    /// The latest backward step of the committed offset within the held samples, as
    /// (from, to): the group was reset to an earlier offset and will read again.
    pub fn rewound(&self) -> Option<(i64, i64)> {
        self.samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .filter_map(|(a, b)| match (a.committed, b.committed) {
                (Some(from), Some(to)) if to < from => Some((from, to)),
                _ => None,
            })
            .next_back()
    }

    /// Consume and produce rates over the held samples, and the catch-up estimate.
    pub fn rates(&self) -> Rates {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else {
            return Rates {
                consume: 0.0,
                produce: 0.0,
                catchup_seconds: Some(0.0),
            };
        };
        let span_s = (last.at_ms - first.at_ms) as f64 / 1000.0;
        let per_second = |delta: i64| {
            if span_s > 0.0 {
                delta.max(0) as f64 / span_s
            } else {
                0.0
            }
        };
        let consume = match (first.committed, last.committed) {
            (Some(a), Some(b)) => per_second(b - a),
            _ => 0.0,
        };
        let produce = per_second(last.high_watermark - first.high_watermark);
        let catchup_seconds = if last.lag == 0 {
            Some(0.0)
        } else if consume > produce {
            Some(last.lag as f64 / (consume - produce))
        } else {
            None
        };
        Rates {
            consume,
            produce,
            catchup_seconds,
        }
    }

    /// Status of the partition with a one-line reason.
    pub fn judge(&self, window_ms: i64, activity: GroupActivity) -> (Status, String) {
        let Some(last) = self.samples.back() else {
            return (Status::Ok, "no sample yet".to_owned());
        };
        if last.lag == 0 {
            let at = last
                .committed
                .map_or_else(|| "no commit needed".to_owned(), |c| format!("offset {c}"));
            return (Status::CaughtUp, format!("at log end ({at})"));
        }
        let first = self.samples.front().copied().unwrap_or(*last);
        let span_s = (last.at_ms - first.at_ms) as f64 / 1000.0;
        if let Some((from, to)) = self.rewound() {
            return (
                Status::Rewind,
                format!(
                    "committed offset moved back from {from} to {to} within the last {:.0}s; {} record(s) to read (again)",
                    window_ms as f64 / 1000.0,
                    last.lag
                ),
            );
        }
        if !self.is_full(window_ms) {
            return (
                Status::Ok,
                format!(
                    "lag {}; window filling ({span_s:.0}s of {:.0}s seen)",
                    last.lag,
                    window_ms as f64 / 1000.0
                ),
            );
        }
        let lag_whole_window = self.samples.iter().all(|s| s.lag > 0);
        if !self.committed_moved() && !lag_whole_window {
            return (
                Status::Ok,
                format!("lag {} appeared within the last {span_s:.0}s", last.lag),
            );
        }
        if !self.committed_moved() {
            let at = last
                .committed
                .map_or_else(|| "never committed".to_owned(), |c| format!("offset {c}"));
            return match activity {
                GroupActivity::CommitsElsewhere => (
                    Status::Stalled,
                    format!(
                        "{at} did not move for {span_s:.0}s with lag {} while the group commits on other partitions",
                        last.lag
                    ),
                ),
                GroupActivity::Members(n) => (
                    Status::Stalled,
                    format!(
                        "{at} did not move for {span_s:.0}s with lag {} while the group has {n} member(s)",
                        last.lag
                    ),
                ),
                GroupActivity::Idle => (
                    Status::Stopped,
                    format!("no progress for {span_s:.0}s with lag {} ({at})", last.lag),
                ),
            };
        }
        let rates = self.rates();
        let growing = self
            .samples
            .iter()
            .zip(self.samples.iter().skip(1))
            .all(|(a, b)| b.lag >= a.lag);
        if growing && last.lag > first.lag {
            return (
                Status::Lagging,
                format!(
                    "lag grew from {} to {} over {span_s:.0}s (consuming {:.1}/s, producing {:.1}/s)",
                    first.lag, last.lag, rates.consume, rates.produce
                ),
            );
        }
        (
            Status::Ok,
            format!("lag {}, consuming {:.1}/s", last.lag, rates.consume),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: i64 = 10_000;

    /// Feeds (seconds, committed, hwm) samples; lag = hwm - committed.
    fn scripted(steps: &[(i64, i64, i64)]) -> PartitionWindow {
        let mut w = PartitionWindow::default();
        for &(t, c, h) in steps {
            w.push(
                Sample {
                    at_ms: t * 1000,
                    committed: Some(c),
                    high_watermark: h,
                    lag: (h - c).max(0),
                },
                WINDOW,
            );
        }
        w
    }

    #[test]
    fn zero_lag_is_caught_up_even_when_idle() {
        let w = scripted(&[(0, 50, 50), (5, 50, 50), (10, 50, 50), (15, 50, 50)]);
        assert_eq!(w.judge(WINDOW, GroupActivity::Idle).0, Status::CaughtUp);
    }

    #[test]
    fn no_movement_with_lag_is_stopped_only_after_a_full_window() {
        let w = scripted(&[(0, 10, 50), (5, 10, 50)]);
        assert_eq!(w.judge(WINDOW, GroupActivity::Idle).0, Status::Ok);
        let w = scripted(&[(0, 10, 50), (5, 10, 50), (10, 10, 50)]);
        let (status, reason) = w.judge(WINDOW, GroupActivity::Idle);
        assert_eq!(status, Status::Stopped, "{reason}");
        assert!(reason.contains("lag 40"), "{reason}");
    }

    #[test]
    fn fresh_records_on_an_idle_caught_up_group_are_not_stopped() {
        let w = scripted(&[(0, 50, 50), (5, 50, 50), (10, 50, 60)]);
        let (status, reason) = w.judge(WINDOW, GroupActivity::Idle);
        assert_eq!(status, Status::Ok, "{reason}");
    }

    #[test]
    fn no_movement_while_group_is_alive_is_stalled() {
        let w = scripted(&[(0, 10, 50), (5, 10, 50), (10, 10, 50)]);
        assert_eq!(
            w.judge(WINDOW, GroupActivity::CommitsElsewhere).0,
            Status::Stalled
        );
        assert_eq!(
            w.judge(WINDOW, GroupActivity::Members(2)).0,
            Status::Stalled
        );
    }

    #[test]
    fn lag_growing_in_every_sample_is_lagging() {
        let w = scripted(&[(0, 10, 20), (5, 12, 30), (10, 14, 40)]);
        let (status, reason) = w.judge(WINDOW, GroupActivity::Idle);
        assert_eq!(status, Status::Lagging, "{reason}");
    }

    #[test]
    fn lag_that_dips_is_ok() {
        let w = scripted(&[(0, 10, 20), (5, 25, 30), (10, 26, 40)]);
        assert_eq!(w.judge(WINDOW, GroupActivity::Idle).0, Status::Ok);
    }

    #[test]
    fn stop_then_restart_goes_stopped_ok_caught_up() {
        let mut w = scripted(&[(0, 10, 50), (5, 10, 50), (10, 10, 50)]);
        assert_eq!(w.judge(WINDOW, GroupActivity::Idle).0, Status::Stopped);
        w.push(
            Sample {
                at_ms: 15_000,
                committed: Some(30),
                high_watermark: 50,
                lag: 20,
            },
            WINDOW,
        );
        assert_eq!(w.judge(WINDOW, GroupActivity::Idle).0, Status::Ok);
        w.push(
            Sample {
                at_ms: 20_000,
                committed: Some(50),
                high_watermark: 50,
                lag: 0,
            },
            WINDOW,
        );
        assert_eq!(w.judge(WINDOW, GroupActivity::Idle).0, Status::CaughtUp);
    }

    #[test]
    fn window_keeps_one_anchor_before_horizon() {
        let w = scripted(&[
            (0, 0, 0),
            (3, 0, 0),
            (6, 0, 0),
            (9, 0, 0),
            (12, 0, 0),
            (15, 0, 0),
        ]);
        let times: Vec<i64> = w.samples().iter().map(|s| s.at_ms / 1000).collect();
        assert_eq!(times, vec![3, 6, 9, 12, 15]);
    }

    #[test]
    fn rates_and_catchup_from_window_ends() {
        // 100 committed and 50 produced in 10 s; lag 50 -> 50 / (10 - 5) = 10 s.
        let w = scripted(&[(0, 0, 100), (10, 100, 150)]);
        let r = w.rates();
        assert_eq!((r.consume, r.produce), (10.0, 5.0));
        assert_eq!(r.catchup_seconds, Some(10.0));
        let slow = scripted(&[(0, 0, 100), (10, 10, 200)]);
        assert_eq!(slow.rates().catchup_seconds, None);
    }

    #[test]
    fn committed_offset_moving_back_is_rewind_until_it_leaves_the_window() {
        let mut w = scripted(&[(0, 10, 10), (5, 3, 10)]);
        let (status, reason) = w.judge(WINDOW, GroupActivity::Idle);
        assert_eq!(status, Status::Rewind, "{reason}");
        assert!(reason.contains("from 10 to 3"), "{reason}");
        for t in [10, 15, 20] {
            w.push(
                Sample {
                    at_ms: t * 1000,
                    committed: Some(3 + t),
                    high_watermark: 40,
                    lag: 37 - t,
                },
                WINDOW,
            );
        }
        assert_eq!(w.judge(WINDOW, GroupActivity::Idle).0, Status::Ok);
    }

    #[test]
    fn offset_reset_backwards_gives_zero_rate_not_negative() {
        let w = scripted(&[(0, 100, 100), (10, 20, 100)]);
        assert_eq!(w.rates().consume, 0.0);
    }
}
