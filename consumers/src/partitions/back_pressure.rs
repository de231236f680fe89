//! Back-pressure per partition: which partitions to pause and which to resume.
//! The database breaker pauses every partition (they all need the database); a
//! full buffer pauses only the partitions holding more than their share of it, so
//! a partition stuck behind one slow record does not stop the others.

use std::time::Duration;

use crate::worker::circuit_breaker::BreakerState;

/// How long the buffer may stay full (records held back in librdkafka, the
/// consumer not polled) before partitions are paused so that polling, and with
/// it rebalance handling, goes on.
pub(crate) const HOLD_BACK_BEFORE_PAUSE: Duration = Duration::from_secs(2);

/// One assigned partition as back-pressure sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionLoad {
    /// Partition number.
    pub(crate) partition: i32,
    /// Its records received and not finished.
    pub(crate) buffered: usize,
    /// Whether it is paused now; `None`: assigned and not paused or resumed since,
    /// so whether librdkafka fetches it is unknown.
    pub(crate) paused: Option<bool>,
}

/// Partitions to pause and to resume.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Partitions to pause.
    pub(crate) pause: Vec<i32>,
    /// Partitions to resume.
    pub(crate) resume: Vec<i32>,
}

/// Decides the changes. A partition's share is `max_buffered` divided among the
/// assigned partitions. With the breaker open every partition pauses, and so it
/// does with the breaker half-open while records are buffered: its one probe
/// needs a batch, not more records (with none buffered, the partitions resume
/// to bring one). Otherwise,
/// once the buffer has been full for [`HOLD_BACK_BEFORE_PAUSE`] (`held_back`), a
/// partition holding at least its share pauses; a paused one (or one assigned
/// and not yet told) resumes when it is down to half its share and the whole
/// buffer is below `max_buffered`: a partition resumed into a full buffer
/// delivers a fetch's worth at once (its backlog after an outage).
pub(crate) fn decide(
    loads: &[PartitionLoad],
    max_buffered: usize,
    breaker: BreakerState,
    held_back: bool,
) -> Changes {
    let share = (max_buffered / loads.len().max(1)).max(1);
    let total: usize = loads.iter().map(|load| load.buffered).sum();
    let full = total >= max_buffered;
    let closed_off = match breaker {
        BreakerState::Open => true,
        BreakerState::HalfOpen => total > 0,
        BreakerState::Closed => false,
    };
    let mut changes = Changes::default();
    for load in loads {
        let want_paused = if closed_off {
            true
        } else if load.paused != Some(false) {
            full || load.buffered > share / 2
        } else {
            held_back && load.buffered >= share
        };
        // A partition of unknown state is told either way: recording it as paused
        // without pausing it would let librdkafka fetch its whole backlog.
        match (load.paused, want_paused) {
            (Some(false) | None, true) => changes.pause.push(load.partition),
            (Some(true) | None, false) => changes.resume.push(load.partition),
            _ => {}
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(partition: i32, buffered: usize, paused: bool) -> PartitionLoad {
        PartitionLoad {
            partition,
            buffered,
            paused: Some(paused),
        }
    }

    fn just_assigned(partition: i32) -> PartitionLoad {
        PartitionLoad {
            partition,
            buffered: 0,
            paused: None,
        }
    }

    #[test]
    fn a_partition_assigned_while_the_breaker_is_open_is_paused() {
        let loads = [load(0, 5, true), just_assigned(1)];
        assert_eq!(
            decide(&loads, 100, BreakerState::Open, false),
            Changes {
                pause: vec![1],
                resume: vec![]
            }
        );
    }

    #[test]
    fn a_partition_assigned_with_the_breaker_closed_is_resumed() {
        assert_eq!(
            decide(&[just_assigned(4)], 100, BreakerState::Closed, false),
            Changes {
                pause: vec![],
                resume: vec![4]
            }
        );
    }

    #[test]
    fn a_full_buffer_pauses_only_the_partitions_over_their_share() {
        let loads = [load(0, 90, false), load(1, 10, false)];
        assert_eq!(
            decide(&loads, 100, BreakerState::Closed, false),
            Changes::default()
        );
        assert_eq!(
            decide(&loads, 100, BreakerState::Closed, true),
            Changes {
                pause: vec![0],
                resume: vec![]
            }
        );
    }

    #[test]
    fn a_paused_partition_resumes_at_half_its_share() {
        let loads = [load(0, 26, true), load(1, 25, true)];
        assert_eq!(
            decide(&loads, 100, BreakerState::Closed, true),
            Changes {
                pause: vec![],
                resume: vec![1]
            }
        );
    }

    #[test]
    fn an_open_breaker_pauses_every_partition_and_holds_them() {
        let loads = [load(0, 0, false), load(1, 0, true)];
        assert_eq!(
            decide(&loads, 100, BreakerState::Open, false),
            Changes {
                pause: vec![0],
                resume: vec![]
            }
        );
    }

    /// Chaos scenario h, worker 2: partitions 6 to 11 paused by the breaker hold
    /// 1,001 records (`--max-buffered` 1000) when 0 to 5 are assigned with the
    /// breaker half-open. Resumed, each delivered its backlog (2,567 buffered).
    #[test]
    fn no_partition_is_resumed_while_the_buffer_is_full() {
        let mut loads: Vec<PartitionLoad> = (0..6).map(just_assigned).collect();
        loads.extend(
            [182, 175, 167, 158, 171, 148]
                .iter()
                .zip(6..)
                .map(|(b, p)| load(p, *b, true)),
        );
        let changes = decide(&loads, 1000, BreakerState::Closed, true);
        assert_eq!(changes.pause, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(changes.resume, Vec::<i32>::new());
        // Below the limit, the ones down to half their share resume.
        let loads = [load(0, 0, true), load(1, 900, true)];
        assert_eq!(
            decide(&loads, 1000, BreakerState::Closed, true).resume,
            vec![0]
        );
    }

    /// Chaos scenario h again: with the breaker half-open and 729 records buffered,
    /// partitions assigned were resumed, and took the buffer to its limit and past
    /// it (1,415 records against 1000).
    #[test]
    fn a_half_open_breaker_with_records_buffered_holds_every_partition() {
        let loads = [just_assigned(0), load(6, 108, true), load(9, 171, true)];
        assert_eq!(
            decide(&loads, 1000, BreakerState::HalfOpen, false),
            Changes {
                pause: vec![0],
                resume: vec![]
            }
        );
        // Nothing buffered: the probe needs a record, so they resume.
        let loads = [load(0, 0, true), just_assigned(1)];
        assert_eq!(
            decide(&loads, 1000, BreakerState::HalfOpen, false).resume,
            vec![0, 1]
        );
    }
}
