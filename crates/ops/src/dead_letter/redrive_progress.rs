//! How far redrives have gone over each DLQ partition, committed under
//! [`REDRIVE_GROUP`] (next offset not replayed, as a consumer commits), so that the lag
//! engine's DLQ count drops once records are replayed. Only the replayed prefix of a
//! partition counts: the position stops at the first record a run read but did not
//! replay (skipped, not selected, failed), and a run that started past the position
//! (`--from-offset`) leaves it alone. It never moves backwards.

use std::collections::BTreeMap;
use std::time::Duration;

use orderflow_lag::engine::REDRIVE_GROUP;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::error::{DeadLetterError, Result};
use super::reader::PartitionRange;

/// Timeout of each request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one run did in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionProgress {
    /// The range the run was to read.
    pub range: PartitionRange,
    /// One past the last offset read.
    pub read_to: i64,
    /// The first offset read and not replayed, if any.
    pub first_not_replayed: Option<i64>,
    /// Whether the whole range was read.
    pub finished: bool,
}

impl PartitionProgress {
    /// Where the replayed prefix of this run ends.
    pub fn replayed_to(&self) -> i64 {
        let read = if self.finished {
            self.range.end
        } else {
            self.read_to
        };
        self.first_not_replayed.map_or(read, |o| o.min(read))
    }
}

/// The new position of a partition, if this run moves it: the run must have started
/// at or before the old position (or the log start) and gone past it.
pub fn advanced_position(
    progress: &PartitionProgress,
    committed: Option<i64>,
    log_start: i64,
) -> Option<i64> {
    let from = committed.unwrap_or(log_start).max(log_start);
    let to = progress.replayed_to();
    (progress.range.start <= from && to > from).then_some(to)
}

/// Commits the positions `progress` advances on `topic` and returns them.
pub fn record(
    base: &ClientConfig,
    topic: &str,
    progress: &BTreeMap<i32, PartitionProgress>,
) -> Result<BTreeMap<i32, i64>> {
    if progress.is_empty() {
        return Ok(BTreeMap::new());
    }
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", REDRIVE_GROUP)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(DeadLetterError::kafka("create the redrive position client"))?;
    let mut asked = TopicPartitionList::new();
    for partition in progress.keys() {
        asked.add_partition(topic, *partition);
    }
    let committed =
        consumer
            .committed_offsets(asked, REQUEST_TIMEOUT)
            .map_err(DeadLetterError::kafka(format!(
                "read the redrive positions of {topic}"
            )))?;
    let mut advanced = BTreeMap::new();
    let mut commit = TopicPartitionList::new();
    for (partition, p) in progress {
        let old = committed
            .find_partition(topic, *partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            });
        let (log_start, _) = consumer
            .fetch_watermarks(topic, *partition, REQUEST_TIMEOUT)
            .map_err(DeadLetterError::kafka(format!(
                "read the offsets of {topic}[{partition}]"
            )))?;
        if let Some(to) = advanced_position(p, old, log_start) {
            commit
                .add_partition_offset(topic, *partition, Offset::Offset(to))
                .map_err(DeadLetterError::kafka("build the redrive positions"))?;
            advanced.insert(*partition, to);
        }
    }
    if !advanced.is_empty() {
        consumer
            .commit(&commit, CommitMode::Sync)
            .map_err(DeadLetterError::kafka(format!(
                "commit the redrive positions of {topic}"
            )))?;
    }
    Ok(advanced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(start: i64, end: i64, first_not_replayed: Option<i64>) -> PartitionProgress {
        PartitionProgress {
            range: PartitionRange { start, end },
            read_to: end,
            first_not_replayed,
            finished: true,
        }
    }

    #[test]
    fn position_stops_at_the_first_record_not_replayed() {
        assert_eq!(advanced_position(&progress(0, 10, None), None, 0), Some(10));
        assert_eq!(
            advanced_position(&progress(0, 10, Some(4)), None, 0),
            Some(4)
        );
        // The first record was skipped: nothing replayed in order, nothing to record.
        assert_eq!(advanced_position(&progress(0, 10, Some(0)), None, 0), None);
    }

    #[test]
    fn a_run_starting_past_the_position_or_ending_before_it_moves_nothing() {
        // --from-offset 6 while records 2..6 were never replayed.
        assert_eq!(advanced_position(&progress(6, 10, None), Some(2), 0), None);
        // An earlier, shorter run.
        assert_eq!(advanced_position(&progress(0, 5, None), Some(8), 0), None);
        // Retention removed 0..7: a run from the log start continues the prefix.
        assert_eq!(
            advanced_position(&progress(7, 10, None), Some(2), 7),
            Some(10)
        );
    }

    #[test]
    fn an_interrupted_run_counts_only_what_it_read() {
        let interrupted = PartitionProgress {
            range: PartitionRange { start: 0, end: 10 },
            read_to: 3,
            first_not_replayed: None,
            finished: false,
        };
        assert_eq!(interrupted.replayed_to(), 3);
    }
}
