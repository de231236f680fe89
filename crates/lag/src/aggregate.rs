//! From per-partition reads and windows to the partition, topic and group figures of a
//! snapshot. Pure: no I/O.

use std::collections::HashMap;

use crate::compute::{LagFigures, ResetPolicy, lag_figures};
use crate::kafka::ClusterTopics;
use crate::kafka::log_offsets::TopicPartition;
use crate::kafka::timestamps::RecordKey;
use crate::model::{
    DlqCount, GroupLag, Isolation, LogOffsets, Membership, OffsetState, PartitionLag, Status,
    TopicLag,
};
use crate::window::{GroupActivity, PartitionWindow, Sample};
use orderflow_contracts::dead_letter::DLQ_SUFFIX;

/// What was read for one partition of a group this cycle.
#[derive(Debug, Clone)]
pub struct PartitionInput {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
    /// Log offsets.
    pub log: LogOffsets,
    /// Committed offset, if any.
    pub committed: Option<i64>,
    /// Why this cycle could not read the committed offset (then `committed` is the
    /// last one read, if any).
    pub unreadable: Option<String>,
    /// Only transaction markers (control records) lie between the committed offset
    /// and the end: the group has read everything there is to read.
    pub markers_only: bool,
    /// How long (ms) the last stable offset has stayed at its value below the high
    /// watermark (an open transaction); `None` when it equals the high watermark.
    pub open_transaction_ms: Option<i64>,
}

/// What was read for one group this cycle.
#[derive(Debug, Clone)]
pub struct GroupInput {
    /// Group id.
    pub group: String,
    /// Members, or why unknown.
    pub membership: Membership,
    /// Isolation lag is measured with.
    pub isolation: Isolation,
    /// Asked for by name, but the cluster's listing does not have it.
    pub unlisted: bool,
    /// Why reading the group's committed offsets failed this cycle, if it did.
    pub read_error: Option<String>,
    /// Its partitions, ordered by topic and partition.
    pub partitions: Vec<PartitionInput>,
}

/// Builds a group's figures from this cycle's reads and the windows (already fed).
pub fn build_group(
    input: GroupInput,
    windows: &HashMap<(String, String, i32), PartitionWindow>,
    stamps: &HashMap<RecordKey, i64>,
    reset: ResetPolicy,
    window_ms: i64,
    now_ms: i64,
) -> GroupLag {
    let empty = PartitionWindow::default();
    let window_of = |p: &PartitionInput| {
        windows
            .get(&(input.group.clone(), p.topic.clone(), p.partition))
            .unwrap_or(&empty)
    };
    let moved_anywhere = input
        .partitions
        .iter()
        .any(|p| window_of(p).committed_moved());
    let activity = match (moved_anywhere, input.membership.member_count()) {
        (true, _) => GroupActivity::CommitsElsewhere,
        (false, Some(n)) if n > 0 => GroupActivity::Members(n),
        _ => GroupActivity::Idle,
    };
    let owners: HashMap<(String, i32), String> = match &input.membership {
        Membership::Known { members, .. } => members
            .iter()
            .flat_map(|m| {
                m.assignment
                    .iter()
                    .map(move |tp| (tp.clone(), m.member_id.clone()))
            })
            .collect(),
        Membership::Unknown { .. } => HashMap::new(),
    };

    let mut topics: Vec<TopicLag> = Vec::new();
    for p in &input.partitions {
        let f = figures(p, input.isolation, reset);
        let window = window_of(p);
        let rates = window.rates();
        let (status, reason) = match (&p.unreadable, f.offset_state) {
            (Some(why), _) => (Status::Unknown, why.clone()),
            (None, OffsetState::Unknown) => (
                Status::Unknown,
                "never committed, and the log start it would read from is unknown this cycle"
                    .to_owned(),
            ),
            (None, _) => {
                let (status, reason) = window.judge(window_ms, activity);
                let blocked_ms = p
                    .open_transaction_ms
                    .filter(|ms| input.isolation == Isolation::ReadCommitted && *ms >= window_ms);
                if let (Status::CaughtUp, Some(ms)) = (status, blocked_ms) {
                    (
                        Status::BlockedByTransaction,
                        format!(
                            "at the last stable offset {}, held there for {}s by an open transaction while the high watermark is {}",
                            p.log.last_stable,
                            ms / 1000,
                            p.log.high_watermark
                        ),
                    )
                } else if p.markers_only && status == Status::CaughtUp {
                    let at = p.committed.unwrap_or(f.end_offset);
                    let markers = f.end_offset - at;
                    (
                        status,
                        format!(
                            "at log end: only {markers} transaction marker(s) after offset {at}"
                        ),
                    )
                } else {
                    (status, reason)
                }
            }
        };
        let lag_seconds = if f.lag == 0 {
            Some(0.0)
        } else {
            stamps
                .get(&(p.topic.clone(), p.partition, f.first_unread))
                .map(|ts| ((now_ms - ts).max(0)) as f64 / 1000.0)
        };
        let partition = PartitionLag {
            topic: p.topic.clone(),
            partition: p.partition,
            log: p.log,
            committed: p.committed,
            offset_state: f.offset_state,
            end_offset: f.end_offset,
            lag: f.lag,
            lost_records: f.lost_records,
            lag_seconds,
            read_skew_records: f.read_skew_records,
            consume_rate: rates.consume,
            produce_rate: rates.produce,
            catchup_seconds: rates.catchup_seconds,
            status,
            reason,
            consumer_id: owners.get(&(p.topic.clone(), p.partition)).cloned(),
            measuring: !window.is_full(window_ms),
        };
        match topics.last_mut() {
            Some(t) if t.topic == p.topic => t.partitions.push(partition),
            _ => topics.push(TopicLag {
                topic: p.topic.clone(),
                lag: 0,
                lag_seconds: 0.0,
                consume_rate: 0.0,
                produce_rate: 0.0,
                partitions: vec![partition],
            }),
        }
    }
    for t in &mut topics {
        t.lag = t.partitions.iter().map(|p| p.lag).sum();
        t.lag_seconds = t
            .partitions
            .iter()
            .filter_map(|p| p.lag_seconds)
            .fold(0.0, f64::max);
        t.consume_rate = t.partitions.iter().map(|p| p.consume_rate).sum();
        t.produce_rate = t.partitions.iter().map(|p| p.produce_rate).sum();
    }

    let all = || topics.iter().flat_map(|t| t.partitions.iter());
    let status = match all().map(|p| p.status).max() {
        Some(worst) => worst,
        // Nothing committed and nothing assigned: an absent group is not caught up.
        None if input.unlisted => Status::NotFound,
        None => Status::Unknown,
    };
    let catchup_seconds = all()
        .map(|p| p.catchup_seconds)
        .try_fold(0.0_f64, |acc, c| c.map(|c| acc.max(c)));
    let reason = match &input.read_error {
        Some(err) if topics.is_empty() => {
            format!("reading the group's committed offsets failed ({err}); no earlier read to show")
        }
        _ => group_reason(&input.membership, status, all().collect()),
    };
    GroupLag {
        group: input.group,
        isolation: input.isolation,
        status,
        reason,
        lag: topics.iter().map(|t| t.lag).sum(),
        lag_seconds: topics.iter().map(|t| t.lag_seconds).fold(0.0, f64::max),
        lost_records: all().map(|p| p.lost_records).sum(),
        consume_rate: topics.iter().map(|t| t.consume_rate).sum(),
        produce_rate: topics.iter().map(|t| t.produce_rate).sum(),
        catchup_seconds,
        measuring: all().any(|p| p.measuring),
        membership: input.membership,
        topics,
    }
}

/// Lag figures of a partition this cycle: an offset that could not be read and was
/// never read before gives no lag (not the reset policy's "never committed").
pub fn figures(p: &PartitionInput, isolation: Isolation, reset: ResetPolicy) -> LagFigures {
    let f = lag_figures(p.log, p.committed, isolation, reset);
    if p.markers_only {
        return LagFigures {
            lag: 0,
            first_unread: f.end_offset,
            ..f
        };
    }
    if p.unreadable.is_some() && p.committed.is_none() {
        return LagFigures {
            lag: 0,
            lost_records: 0,
            offset_state: OffsetState::Unknown,
            read_skew_records: 0,
            first_unread: f.end_offset,
            ..f
        };
    }
    f
}

fn group_reason(membership: &Membership, status: Status, partitions: Vec<&PartitionLag>) -> String {
    let members = match membership {
        Membership::Known { members, .. } if members.is_empty() => "no active members".to_owned(),
        Membership::Known { members, state } => format!("{} member(s), {state}", members.len()),
        Membership::Unknown { .. } => "members unknown".to_owned(),
    };
    if status == Status::NotFound {
        return "the cluster does not list this group and it has no committed offsets (misspelt, or deleted after its offsets expired)".to_owned();
    }
    if partitions.is_empty() {
        return format!("no committed offsets and no assigned partitions; {members}");
    }
    let worst: Vec<&&PartitionLag> = partitions.iter().filter(|p| p.status == status).collect();
    if status == Status::CaughtUp {
        return format!(
            "all {} partition(s) at log end; {members}",
            partitions.len()
        );
    }
    let first = worst[0];
    format!(
        "{} of {} partition(s) {status}, e.g. {}[{}]: {}; {members}",
        worst.len(),
        partitions.len(),
        first.topic,
        first.partition,
        first.reason
    )
}

/// Records of each dead-letter topic still to deal with: per partition, those between
/// the high watermark and the later of the log start (retention and DeleteRecords
/// remove records) and the position `orderflow dlq redrive` recorded as gone over
/// (`redriven`). The rate is of records written (the sum of high watermarks). When a
/// partition's log start is unknown, the topic keeps the count of the last cycle.
pub fn dlq_counts(
    topics: &ClusterTopics,
    logs: &HashMap<TopicPartition, LogOffsets>,
    redriven: &HashMap<TopicPartition, i64>,
    windows: &mut HashMap<String, DlqWindow>,
    now_ms: i64,
    window_ms: i64,
) -> Vec<DlqCount> {
    let mut out = Vec::new();
    for (topic, n) in &topics.topics {
        let Some(source) = topic.strip_suffix(DLQ_SUFFIX) else {
            continue;
        };
        let (mut written, mut pending, mut unknown) = (0, 0, false);
        for p in 0..*n {
            let tp = (topic.clone(), p);
            let Some(log) = logs.get(&tp) else {
                unknown = true;
                continue;
            };
            written += log.high_watermark;
            match log.log_start {
                Some(start) => {
                    let from = start.max(redriven.get(&tp).copied().unwrap_or(0));
                    pending += (log.high_watermark - from).max(0);
                }
                None => unknown = true,
            }
        }
        let window = windows.entry(topic.clone()).or_default();
        let records = match (unknown, window.records) {
            (true, Some(last)) => last,
            _ => pending,
        };
        window.records = Some(records);
        window.written.push(
            Sample {
                at_ms: now_ms,
                committed: None,
                high_watermark: written,
                lag: 0,
            },
            window_ms,
        );
        out.push(DlqCount {
            source_topic: source.to_owned(),
            dlq_topic: topic.clone(),
            records,
            rate: window.written.rates().produce,
        });
    }
    windows.retain(|t, _| out.iter().any(|d| &d.dlq_topic == t));
    out
}

/// What the engine keeps of a dead-letter topic between cycles.
#[derive(Debug, Default)]
pub struct DlqWindow {
    /// Records written (sum of high watermarks) over the window, for the rate.
    pub written: PartitionWindow,
    /// The last count served.
    pub records: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(partitions: Vec<PartitionInput>, unlisted: bool) -> GroupInput {
        GroupInput {
            group: "g".into(),
            membership: Membership::Unknown {
                reason: "test".into(),
            },
            isolation: Isolation::ReadUncommitted,
            unlisted,
            read_error: None,
            partitions,
        }
    }

    fn partition(committed: Option<i64>, unreadable: Option<&str>) -> PartitionInput {
        PartitionInput {
            topic: "orders".into(),
            partition: 0,
            log: LogOffsets {
                log_start: Some(0),
                high_watermark: 100,
                last_stable: 100,
            },
            committed,
            unreadable: unreadable.map(str::to_owned),
            markers_only: false,
            open_transaction_ms: None,
        }
    }

    fn build(input: GroupInput) -> GroupLag {
        build_group(
            input,
            &HashMap::new(),
            &HashMap::new(),
            ResetPolicy::Earliest,
            10_000,
            0,
        )
    }

    #[test]
    fn a_partition_whose_offset_was_unreadable_is_unknown_with_its_last_offset() {
        let g = build(input(
            vec![partition(Some(100), Some("OffsetFetch error"))],
            false,
        ));
        assert_eq!(g.status, Status::Unknown, "{}", g.reason);
        let p = &g.topics[0].partitions[0];
        assert_eq!((p.committed, p.lag), (Some(100), 0));
        assert!(p.reason.contains("OffsetFetch error"), "{}", p.reason);
    }

    #[test]
    fn an_unreadable_offset_never_read_before_is_not_the_whole_log() {
        let g = build(input(
            vec![partition(None, Some("OffsetFetch error"))],
            false,
        ));
        assert_eq!(g.status, Status::Unknown, "{}", g.reason);
        let p = &g.topics[0].partitions[0];
        assert_eq!(
            (p.lag, p.offset_state),
            (0, OffsetState::Unknown),
            "an unreadable offset must not read as never committed (lag 100 with Earliest)"
        );
    }

    #[test]
    fn an_unlisted_group_without_offsets_is_not_found_and_a_listed_one_unknown() {
        assert_eq!(build(input(Vec::new(), true)).status, Status::NotFound);
        assert_eq!(build(input(Vec::new(), false)).status, Status::Unknown);
    }

    #[test]
    fn a_group_whose_first_read_failed_says_so() {
        let mut failed = input(Vec::new(), false);
        failed.read_error = Some("coordinator not available".into());
        let g = build(failed);
        assert_eq!(g.status, Status::Unknown);
        assert!(
            g.reason.contains("coordinator not available"),
            "{}",
            g.reason
        );
    }
}
