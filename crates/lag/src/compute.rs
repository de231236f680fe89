//! Lag of one partition from one read of its offsets: pure arithmetic, no I/O.

use serde::{Deserialize, Serialize};

use crate::model::{Isolation, LogOffsets, OffsetState};

/// Where a consumer without a committed offset would start (its `auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetPolicy {
    /// From the log start: every record present counts as lag.
    #[default]
    Earliest,
    /// From the log end: nothing counts as lag until the group commits.
    Latest,
}

/// Record counts of one partition for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagFigures {
    /// The end measured against (high watermark or last stable offset).
    pub end_offset: i64,
    /// Records left to read, never negative.
    pub lag: i64,
    /// Records deleted by retention before being read.
    pub lost_records: i64,
    /// How the committed offset relates to the log.
    pub offset_state: OffsetState,
    /// Records by which the committed offset ran past the end (reads not simultaneous).
    pub read_skew_records: i64,
    /// Offset of the first record the group has still to read (its timestamp gives lag
    /// in seconds); meaningful only when `lag > 0`.
    pub first_unread: i64,
}

/// Computes lag of a partition. The committed offset is read before the log end, so in
/// a consistent world it never exceeds the end; when it does (clock of two requests,
/// log truncation), lag is clamped at 0 and the excess is reported as skew.
pub fn lag_figures(
    log: LogOffsets,
    committed: Option<i64>,
    isolation: Isolation,
    reset: ResetPolicy,
) -> LagFigures {
    let end = match isolation {
        Isolation::ReadUncommitted => log.high_watermark,
        // A broker without transactions may report 0 or nothing useful: never above HWM.
        Isolation::ReadCommitted => log.last_stable.min(log.high_watermark),
    };
    let log_start = log.log_start.map(|s| s.min(end));
    let (state, start, lost) = match (committed, log_start) {
        (None, _) if reset == ResetPolicy::Latest => (OffsetState::NoCommit, end, 0),
        (None, Some(log_start)) => (OffsetState::NoCommit, log_start, 0),
        // Where the group would start is unknown: no figure rather than a made-up one.
        (None, None) => (OffsetState::Unknown, end, 0),
        (Some(c), Some(log_start)) if c < log_start => {
            (OffsetState::BelowLogStart, log_start, log_start - c)
        }
        // With the log start unknown, records lost to retention cannot be told apart.
        (Some(c), _) => (OffsetState::Committed, c, 0),
    };
    let raw = end - start;
    LagFigures {
        end_offset: end,
        lag: raw.max(0),
        lost_records: lost,
        offset_state: state,
        read_skew_records: (-raw).max(0),
        first_unread: start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(start: i64, hwm: i64, lso: i64) -> LogOffsets {
        LogOffsets {
            log_start: Some(start),
            high_watermark: hwm,
            last_stable: lso,
        }
    }

    #[test]
    fn committed_inside_log_gives_end_minus_committed() {
        let f = lag_figures(
            log(0, 100, 100),
            Some(40),
            Isolation::ReadUncommitted,
            ResetPolicy::Earliest,
        );
        assert_eq!(
            (f.lag, f.offset_state, f.first_unread),
            (60, OffsetState::Committed, 40)
        );
    }

    #[test]
    fn read_committed_measures_against_last_stable_offset() {
        let f = lag_figures(
            log(0, 100, 90),
            Some(40),
            Isolation::ReadCommitted,
            ResetPolicy::Earliest,
        );
        assert_eq!((f.end_offset, f.lag), (90, 50));
    }

    #[test]
    fn no_commit_follows_reset_policy() {
        let earliest = lag_figures(
            log(10, 100, 100),
            None,
            Isolation::ReadUncommitted,
            ResetPolicy::Earliest,
        );
        assert_eq!(
            (earliest.lag, earliest.offset_state),
            (90, OffsetState::NoCommit)
        );
        let latest = lag_figures(
            log(10, 100, 100),
            None,
            Isolation::ReadUncommitted,
            ResetPolicy::Latest,
        );
        assert_eq!(latest.lag, 0);
    }

    #[test]
    fn committed_below_log_start_counts_lost_records() {
        let f = lag_figures(
            log(50, 80, 80),
            Some(20),
            Isolation::ReadUncommitted,
            ResetPolicy::Earliest,
        );
        assert_eq!(
            (f.lag, f.lost_records, f.offset_state),
            (30, 30, OffsetState::BelowLogStart)
        );
    }

    #[test]
    fn unknown_log_start_is_not_taken_as_zero() {
        let mut unknown_start = log(50, 80, 80);
        unknown_start.log_start = None;
        let never = lag_figures(
            unknown_start,
            None,
            Isolation::ReadUncommitted,
            ResetPolicy::Earliest,
        );
        assert_eq!(
            (never.lag, never.offset_state),
            (0, OffsetState::Unknown),
            "a group that never committed starts at an unknown log start: lag unknown, not 80"
        );
        let committed = lag_figures(
            unknown_start,
            Some(20),
            Isolation::ReadUncommitted,
            ResetPolicy::Earliest,
        );
        assert_eq!(
            (committed.lag, committed.offset_state),
            (60, OffsetState::Committed)
        );
    }

    #[test]
    fn committed_past_end_is_clamped_and_skew_recorded() {
        let f = lag_figures(
            log(0, 100, 100),
            Some(104),
            Isolation::ReadUncommitted,
            ResetPolicy::Earliest,
        );
        assert_eq!((f.lag, f.read_skew_records), (0, 4));
    }
}
