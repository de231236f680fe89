//! Back-pressure per partition: which partitions to pause and which to resume.
//! The database breaker pauses every partition (they all need the database); a
//! full buffer pauses only the partitions holding more than their share of it, so
//! a partition stuck behind one slow record does not stop the others.

use std::time::Duration;

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
    /// Whether it is paused now.
    pub(crate) paused: bool,
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
/// assigned partitions. With the breaker open every partition pauses. Otherwise,
/// once the buffer has been full for [`HOLD_BACK_BEFORE_PAUSE`] (`held_back`), a
/// partition holding at least its share pauses; a paused one resumes when it is
/// down to half its share.
pub(crate) fn decide(
    loads: &[PartitionLoad],
    max_buffered: usize,
    breaker_open: bool,
    held_back: bool,
) -> Changes {
    let share = (max_buffered / loads.len().max(1)).max(1);
    let mut changes = Changes::default();
    for load in loads {
        let want_paused = if breaker_open {
            true
        } else if load.paused {
            load.buffered > share / 2
        } else {
            held_back && load.buffered >= share
        };
        match (load.paused, want_paused) {
            (false, true) => changes.pause.push(load.partition),
            (true, false) => changes.resume.push(load.partition),
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
            paused,
        }
    }

    #[test]
    fn a_full_buffer_pauses_only_the_partitions_over_their_share() {
        let loads = [load(0, 90, false), load(1, 10, false)];
        assert_eq!(decide(&loads, 100, false, false), Changes::default());
        assert_eq!(
            decide(&loads, 100, false, true),
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
            decide(&loads, 100, false, true),
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
            decide(&loads, 100, true, false),
            Changes {
                pause: vec![0],
                resume: vec![]
            }
        );
    }
}
