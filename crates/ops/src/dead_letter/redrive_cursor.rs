//! Where a redrive stopped, committed under consumer groups of its own so that a re-run
//! continues after the last record handled instead of replaying the DLQ again.
//!
//! A cursor per DLQ partition is the next offset not handled yet ("handled": replayed
//! and acknowledged, deliberately left in the DLQ, or not of the category the run
//! selects). A run over every category commits under [`CURSOR_GROUP`]; a run with
//! `--category C` under `CURSOR_GROUP.C`, because it looked at C's records only. A record
//! counts as already redriven when it lies below the cursor of every category or below
//! the cursor of its own category. This is separate from the lag engine's
//! `orderflow-dlq-redrive` position, which counts replayed records only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::error::{DeadLetterError, Result};
use super::reader::topic_partitions;
use super::record::DlqRecord;
use super::selection::known_categories;

/// The group whose committed offsets are the cursor of runs over every category.
pub const CURSOR_GROUP: &str = "orderflow-dlq-redrive-cursor";

/// Timeout of each request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The cursor group of a run selecting `category` (every category when `None`).
pub fn cursor_group(category: Option<&str>) -> String {
    match category {
        None => CURSOR_GROUP.to_owned(),
        Some(category) => format!("{CURSOR_GROUP}.{category}"),
    }
}

/// The committed cursors of one DLQ topic: per group, per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursors {
    /// Cursor of runs over every category, by partition.
    pub all: BTreeMap<i32, i64>,
    /// Cursor of runs over one category, by category then partition.
    pub by_category: BTreeMap<String, BTreeMap<i32, i64>>,
}

impl Cursors {
    /// Reads every cursor of `topic` from the cluster of `base`.
    pub fn load(base: &ClientConfig, topic: &str) -> Result<Self> {
        let all = committed(base, &cursor_group(None), topic)?;
        let mut by_category = BTreeMap::new();
        for category in known_categories() {
            let found = committed(base, &cursor_group(Some(category)), topic)?;
            if !found.is_empty() {
                by_category.insert(category.to_owned(), found);
            }
        }
        Ok(Self { all, by_category })
    }

    /// Where a run selecting `category` starts reading `partition`: every record before
    /// it was handled by an earlier run.
    pub fn start(&self, category: Option<&str>, partition: i32) -> Option<i64> {
        let all = self.all.get(&partition).copied();
        let own = category
            .and_then(|c| self.by_category.get(c))
            .and_then(|cursors| cursors.get(&partition).copied());
        all.max(own)
    }

    /// Whether an earlier run already handled `record` (below its category's cursor).
    pub fn already_handled(&self, record: &DlqRecord) -> bool {
        let below = |cursors: Option<&BTreeMap<i32, i64>>| {
            cursors
                .and_then(|c| c.get(&record.partition))
                .is_some_and(|cursor| record.offset < *cursor)
        };
        below(Some(&self.all))
            || record
                .category()
                .is_some_and(|c| below(self.by_category.get(&c)))
    }
}

/// The committed offsets of `group` on `topic`, partitions without one left out.
fn committed(base: &ClientConfig, group: &str, topic: &str) -> Result<BTreeMap<i32, i64>> {
    let consumer = cursor_client(base, group)?;
    let brokers = base.get("bootstrap.servers").unwrap_or_default();
    let mut asked = TopicPartitionList::new();
    for partition in topic_partitions(&consumer, topic, brokers)? {
        asked.add_partition(topic, partition);
    }
    let found =
        consumer
            .committed_offsets(asked, REQUEST_TIMEOUT)
            .map_err(DeadLetterError::kafka(format!(
                "read the redrive cursor {group} of {topic}"
            )))?;
    Ok(found
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

fn cursor_client(base: &ClientConfig, group: &str) -> Result<BaseConsumer> {
    base.clone()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(DeadLetterError::kafka("create the redrive cursor client"))
}

/// How far one partition's handled prefix goes during a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PartitionCursor {
    /// Where this run started reading.
    started: i64,
    /// One past the last record read.
    read_to: i64,
    /// Records read but not handled yet (awaiting delivery) or whose delivery failed.
    open: BTreeSet<i64>,
    /// The last position committed (or found committed at start).
    committed: Option<i64>,
}

impl PartitionCursor {
    /// The next offset not handled: the first open record, else one past the last read.
    fn position(&self) -> i64 {
        self.open.first().copied().unwrap_or(self.read_to)
    }
}

/// Tracks the handled prefix of each partition during a run and commits it.
pub struct CursorWriter {
    consumer: BaseConsumer,
    topic: String,
    partitions: BTreeMap<i32, PartitionCursor>,
}

impl std::fmt::Debug for CursorWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CursorWriter")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl CursorWriter {
    /// A writer for `group` on `topic`; `starts` holds where each partition is read
    /// from and `committed` the cursors found at start.
    pub fn new(
        base: &ClientConfig,
        group: &str,
        topic: &str,
        starts: &BTreeMap<i32, i64>,
        committed: &BTreeMap<i32, i64>,
    ) -> Result<Self> {
        let partitions = starts
            .iter()
            .map(|(partition, start)| {
                let cursor = PartitionCursor {
                    started: *start,
                    read_to: *start,
                    open: BTreeSet::new(),
                    committed: committed.get(partition).copied(),
                };
                (*partition, cursor)
            })
            .collect();
        Ok(Self {
            consumer: cursor_client(base, group)?,
            topic: topic.to_owned(),
            partitions,
        })
    }

    /// A record was read; `handled` says whether nothing more is to be done with it.
    pub fn read(&mut self, partition: i32, offset: i64, handled: bool) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.read_to = p.read_to.max(offset + 1);
            if !handled {
                p.open.insert(offset);
            }
        }
    }

    /// A record read earlier is now handled (its replay was acknowledged).
    pub fn handled(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.open.remove(&offset);
        }
    }

    /// The positions a commit now would move: only forward, and only where this run
    /// started at or before the committed cursor (a `--from-offset` past it skipped
    /// records nobody handled).
    pub fn advances(&self) -> BTreeMap<i32, i64> {
        self.partitions
            .iter()
            .filter_map(|(partition, p)| {
                let to = p.position();
                let continues = p.committed.is_none_or(|c| p.started <= c);
                (continues && p.committed.is_none_or(|c| to > c) && to > p.started)
                    .then_some((*partition, to))
            })
            .collect()
    }

    /// Commits the positions that moved; `wait` blocks until the broker answered.
    pub fn commit(&mut self, wait: bool) -> Result<BTreeMap<i32, i64>> {
        let advances = self.advances();
        if advances.is_empty() {
            return Ok(advances);
        }
        let mut list = TopicPartitionList::new();
        for (partition, offset) in &advances {
            list.add_partition_offset(&self.topic, *partition, Offset::Offset(*offset))
                .map_err(DeadLetterError::kafka("build the redrive cursor"))?;
        }
        let mode = if wait {
            CommitMode::Sync
        } else {
            CommitMode::Async
        };
        self.consumer
            .commit(&list, mode)
            .map_err(DeadLetterError::kafka(format!(
                "commit the redrive cursor of {}",
                self.topic
            )))?;
        for (partition, offset) in &advances {
            if let Some(p) = self.partitions.get_mut(partition) {
                p.committed = Some(*offset);
            }
        }
        Ok(advances)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::record::RecordHeader;

    fn record(partition: i32, offset: i64, category: &str) -> DlqRecord {
        DlqRecord {
            partition,
            offset,
            key: None,
            value: None,
            headers: vec![RecordHeader::text(
                orderflow_contracts::dead_letter::headers::ERROR_CATEGORY,
                category,
            )],
        }
    }

    #[test]
    fn a_record_below_its_category_cursor_or_the_global_one_is_handled() {
        let cursors = Cursors {
            all: BTreeMap::from([(0, 5)]),
            by_category: BTreeMap::from([("validation".to_owned(), BTreeMap::from([(0, 9)]))]),
        };
        assert!(cursors.already_handled(&record(0, 4, "processing")));
        assert!(!cursors.already_handled(&record(0, 6, "processing")));
        assert!(cursors.already_handled(&record(0, 8, "validation")));
        assert!(!cursors.already_handled(&record(0, 9, "validation")));
        assert!(!cursors.already_handled(&record(1, 0, "validation")));
        assert_eq!(cursors.start(None, 0), Some(5));
        assert_eq!(cursors.start(Some("validation"), 0), Some(9));
        assert_eq!(cursors.start(Some("processing"), 0), Some(5));
        assert_eq!(cursors.start(None, 1), None);
    }

    fn writer(start: i64, committed: Option<i64>) -> BTreeMap<i32, PartitionCursor> {
        BTreeMap::from([(
            0,
            PartitionCursor {
                started: start,
                read_to: start,
                open: BTreeSet::new(),
                committed,
            },
        )])
    }

    fn advances(partitions: BTreeMap<i32, PartitionCursor>) -> BTreeMap<i32, i64> {
        // The commit client is not needed to compute what would move.
        let consumer: BaseConsumer = ClientConfig::new()
            .set("group.id", "unit")
            .create()
            .expect("an unconnected client");
        CursorWriter {
            consumer,
            topic: "t".into(),
            partitions,
        }
        .advances()
    }

    #[test]
    fn the_cursor_stops_at_the_first_unacknowledged_replay() {
        let mut partitions = writer(0, None);
        let p = partitions.get_mut(&0).unwrap();
        p.read_to = 10;
        p.open.insert(4);
        p.open.insert(7);
        assert_eq!(advances(partitions.clone()), BTreeMap::from([(0, 4)]));
        partitions.get_mut(&0).unwrap().open.clear();
        assert_eq!(advances(partitions), BTreeMap::from([(0, 10)]));
    }

    #[test]
    fn a_run_past_the_cursor_or_behind_it_moves_nothing() {
        let mut past = writer(8, Some(3));
        past.get_mut(&0).unwrap().read_to = 12;
        assert!(advances(past).is_empty(), "records 3..8 were never handled");
        let mut behind = writer(0, Some(9));
        behind.get_mut(&0).unwrap().read_to = 5;
        assert!(advances(behind).is_empty(), "never backwards");
    }
}
