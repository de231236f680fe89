//! What one poll cycle produces: offsets, lag and status per partition, topic and group.
//!
//! Every number is a real value: quantities that cannot be known are `None` (JSON `null`)
//! together with a labelled reason, never NaN or -1.

use serde::{Deserialize, Serialize};

/// Health of a partition or group, judged over the sliding window (Burrow-like).
/// Variants are declared from best to worst: a group shows its worst partition's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Lag is zero: the committed offset is at the log end.
    CaughtUp,
    /// Lag is above zero but the group makes progress and lag is not growing.
    Ok,
    /// This cycle could not read the partition's committed offset or log start (or
    /// the group's offsets at all); the figures shown are the last known ones.
    Unknown,
    /// Lag grew over the whole window although the group makes progress.
    Lagging,
    /// The committed offset moved backwards within the window (a reset to an earlier
    /// offset or to the beginning): records will be read again.
    Rewind,
    /// A read_committed group read everything up to the last stable offset, but an
    /// open transaction has held that offset below the high watermark for the window:
    /// the group cannot read the records written after it.
    BlockedByTransaction,
    /// The group is alive (other partitions advance or members are known) but this
    /// partition's committed offset did not move for the window while lag > 0.
    Stalled,
    /// No progress at all for the window while lag > 0.
    Stopped,
    /// The group was asked for by name but the cluster does not list it and it has no
    /// committed offsets (misspelt, or deleted after its offsets expired).
    NotFound,
}

impl Status {
    /// Every status, in the order of [`Status::code`].
    pub const ALL: [Status; 9] = [
        Status::CaughtUp,
        Status::Ok,
        Status::Lagging,
        Status::Stalled,
        Status::Stopped,
        Status::Rewind,
        Status::Unknown,
        Status::NotFound,
        Status::BlockedByTransaction,
    ];

    /// Numeric code exported as `orderflow_consumergroup_status`. Codes are stable
    /// (alerts compare them): 0 CAUGHT_UP, 1 OK, 2 LAGGING, 3 STALLED, 4 STOPPED,
    /// 5 REWIND, 6 UNKNOWN, 7 NOT_FOUND, 8 BLOCKED_BY_TRANSACTION.
    pub fn code(self) -> i64 {
        match self {
            Status::CaughtUp => 0,
            Status::Ok => 1,
            Status::Lagging => 2,
            Status::Stalled => 3,
            Status::Stopped => 4,
            Status::Rewind => 5,
            Status::Unknown => 6,
            Status::NotFound => 7,
            Status::BlockedByTransaction => 8,
        }
    }

    /// The name shown in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::CaughtUp => "CAUGHT_UP",
            Status::Ok => "OK",
            Status::Lagging => "LAGGING",
            Status::Stalled => "STALLED",
            Status::Stopped => "STOPPED",
            Status::Rewind => "REWIND",
            Status::Unknown => "UNKNOWN",
            Status::NotFound => "NOT_FOUND",
            Status::BlockedByTransaction => "BLOCKED_BY_TRANSACTION",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which end of the log lag is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Against the high watermark (what a read_uncommitted consumer can read).
    #[default]
    ReadUncommitted,
    /// Against the last stable offset (a read_committed consumer stops there).
    ReadCommitted,
}

/// Where a partition's committed offset stands relative to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetState {
    /// A committed offset inside the log (normal case).
    Committed,
    /// The group never committed this partition; lag assumes the reset policy.
    NoCommit,
    /// The committed offset is below the log start: records were deleted by retention
    /// before the group read them (counted in `lost_records`).
    BelowLogStart,
    /// Lag cannot be known this cycle: the committed offset was unreadable and none was
    /// read before, or the group never committed and the log start (where it would
    /// start) is unknown. Lag reads 0 in JSON and is not exported.
    Unknown,
}

/// Offsets of one partition of the log, independent of any group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOffsets {
    /// First offset still in the log; `None` when the broker did not say this cycle.
    pub log_start: Option<i64>,
    /// High watermark: offset of the next record to be written.
    pub high_watermark: i64,
    /// Last stable offset (equals the high watermark when no transaction is open).
    pub last_stable: i64,
}

/// Members of a group as far as the broker told us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Membership {
    /// DescribeGroups answered.
    Known {
        /// Group state reported by the coordinator (Stable, Empty, PreparingRebalance...).
        state: String,
        /// Members with their client ids and hosts.
        members: Vec<Member>,
    },
    /// Members and state are unknown (the listing failed, or the group uses the
    /// consumer protocol that DescribeGroups does not describe); lag is still exact.
    Unknown {
        /// Why the members are unknown.
        reason: String,
    },
}

impl Membership {
    /// Number of members when known.
    pub fn member_count(&self) -> Option<usize> {
        match self {
            Membership::Known { members, .. } => Some(members.len()),
            Membership::Unknown { .. } => None,
        }
    }
}

/// One consumer in a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// `client.id` of the consumer.
    pub client_id: String,
    /// Host the consumer connects from.
    pub client_host: String,
    /// Partitions assigned to it, as (topic, partition), when the assignment was readable.
    pub assignment: Vec<(String, i32)>,
}

/// Lag of one group on one partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionLag {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Log offsets read for this cycle.
    pub log: LogOffsets,
    /// Committed offset (next offset to read) or `None` when the group never committed.
    pub committed: Option<i64>,
    /// How the committed offset relates to the log.
    pub offset_state: OffsetState,
    /// The end lag is measured against (high watermark or last stable offset).
    pub end_offset: i64,
    /// Records not yet consumed, never negative.
    pub lag: i64,
    /// Records deleted by retention before the group read them (0 unless below log start).
    pub lost_records: i64,
    /// Age in seconds of the first unconsumed record; 0 when caught up; `None` when its
    /// timestamp could not be read this cycle.
    pub lag_seconds: Option<f64>,
    /// Records by which the committed offset ran past the end read slightly later or
    /// earlier (the two reads are not simultaneous); lag was clamped at 0.
    pub read_skew_records: i64,
    /// Committed records per second over the window.
    pub consume_rate: f64,
    /// Produced records per second over the window.
    pub produce_rate: f64,
    /// Estimated seconds to reach lag 0 at current rates; `None` when it never would.
    pub catchup_seconds: Option<f64>,
    /// Status over the window.
    pub status: Status,
    /// One line saying why.
    pub reason: String,
    /// Member currently assigned this partition, when known.
    pub consumer_id: Option<String>,
    /// The window is not full yet (the exporter started or first saw the partition
    /// less than a window ago): rates and catch-up time are not measured yet, and
    /// STALLED, STOPPED and LAGGING cannot be told yet.
    #[serde(default)]
    pub measuring: bool,
}

/// Lag of one group on one topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicLag {
    /// Topic name.
    pub topic: String,
    /// Sum of the partitions' lag.
    pub lag: i64,
    /// Largest lag in seconds of its partitions (0 when none is known).
    pub lag_seconds: f64,
    /// Sum of committed records per second.
    pub consume_rate: f64,
    /// Sum of produced records per second.
    pub produce_rate: f64,
    /// Per-partition detail, ordered by partition.
    pub partitions: Vec<PartitionLag>,
}

/// Lag, rates and status of one consumer group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupLag {
    /// Group id.
    pub group: String,
    /// Members, or why they are unknown.
    pub membership: Membership,
    /// Which end lag is measured against for this group.
    pub isolation: Isolation,
    /// Worst status of its partitions.
    pub status: Status,
    /// One line saying why.
    pub reason: String,
    /// Total lag in records.
    pub lag: i64,
    /// Largest lag in seconds over its partitions.
    pub lag_seconds: f64,
    /// Records lost to retention, total.
    pub lost_records: i64,
    /// Committed records per second, total.
    pub consume_rate: f64,
    /// Produced records per second on its partitions, total.
    pub produce_rate: f64,
    /// Estimated seconds until all its partitions are caught up; `None` when never.
    pub catchup_seconds: Option<f64>,
    /// Some partition's window is not full yet (see [`PartitionLag::measuring`]).
    #[serde(default)]
    pub measuring: bool,
    /// Per-topic detail, ordered by topic.
    pub topics: Vec<TopicLag>,
}

/// Records in a dead-letter topic, attributed to its source topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlqCount {
    /// Source topic (the DLQ name without its `.dlq` suffix).
    pub source_topic: String,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// Records still in it that no redrive has gone over: per partition, from the
    /// later of the log start and the redrive position up to the high watermark.
    pub records: i64,
    /// Records written to it per second over the window.
    pub rate: f64,
}

/// Result of one poll cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the cycle started, milliseconds since the Unix epoch.
    pub taken_at_ms: i64,
    /// How long the cycle took.
    pub poll_millis: u64,
    /// Time between the first committed-offset read and the log-end read: the two reads
    /// are not simultaneous, so lag may include records produced in this gap.
    pub read_gap_millis: u64,
    /// Groups, ordered by name.
    pub groups: Vec<GroupLag>,
    /// Dead-letter topics.
    pub dlq: Vec<DlqCount>,
    /// Problems that did not stop the cycle (e.g. listing groups failing).
    pub warnings: Vec<String>,
}
