//! Text rendering of a snapshot, in the layout of `kafka-consumer-groups --describe`
//! plus lag in seconds and status.

use std::fmt::Write;

use crate::model::{Membership, OffsetState, Snapshot};

const HEADER: [&str; 9] = [
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "LAG-SECONDS",
    "STATUS",
    "CONSUMER-ID",
];

/// Renders the per-partition table followed by one summary line per group, each with
/// a line per member (client id, host, assigned partitions).
pub fn render(snapshot: &Snapshot) -> String {
    let mut rows: Vec<[String; 9]> = vec![HEADER.map(str::to_owned)];
    for g in &snapshot.groups {
        for t in &g.topics {
            for p in &t.partitions {
                let current = match (p.committed, p.offset_state) {
                    (None, OffsetState::Unknown) => "?".to_owned(),
                    (None, _) => "-".to_owned(),
                    (Some(c), OffsetState::BelowLogStart) => format!("{c}(<start)"),
                    (Some(c), _) => c.to_string(),
                };
                let consumer = match (&p.consumer_id, &g.membership) {
                    (Some(id), _) => id.clone(),
                    (None, Membership::Unknown { .. }) => "unknown".to_owned(),
                    (None, Membership::Known { .. }) => "-".to_owned(),
                };
                rows.push([
                    g.group.clone(),
                    t.topic.clone(),
                    p.partition.to_string(),
                    current,
                    p.end_offset.to_string(),
                    if p.offset_state == OffsetState::Unknown {
                        "?".to_owned()
                    } else {
                        p.lag.to_string()
                    },
                    p.lag_seconds
                        .map_or_else(|| "?".to_owned(), |s| format!("{s:.1}")),
                    p.status.to_string(),
                    consumer,
                ]);
            }
        }
    }
    let mut widths = [0usize; 9];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths.iter())
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join(" ").trim_end());
    }
    out.push('\n');
    for g in &snapshot.groups {
        let members = match &g.membership {
            Membership::Known { members, state } => format!("{} member(s) {state}", members.len()),
            Membership::Unknown { .. } => "members unknown".to_owned(),
        };
        let catchup = g.catchup_seconds.map_or_else(
            || "never at current rates".to_owned(),
            |c| format!("{c:.0}s"),
        );
        let _ = writeln!(
            out,
            "group {}: {} lag={} lag-seconds={:.1} consume={:.1}/s produce={:.1}/s catch-up={} lost={} ({members}) - {}",
            g.group,
            g.status,
            g.lag,
            g.lag_seconds,
            g.consume_rate,
            g.produce_rate,
            catchup,
            g.lost_records,
            g.reason
        );
        match &g.membership {
            Membership::Known { members, .. } => {
                for m in members {
                    let _ = writeln!(
                        out,
                        "  member {} client-id={} host={} partitions={}",
                        m.member_id,
                        m.client_id,
                        m.client_host,
                        assignment(&m.assignment)
                    );
                }
            }
            Membership::Unknown { reason } => {
                let _ = writeln!(out, "  members unknown: {reason}");
            }
        }
    }
    for w in &snapshot.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
}

/// `topic[0,1] other[3]`, or `-` when nothing is assigned.
fn assignment(partitions: &[(String, i32)]) -> String {
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    if by_topic.is_empty() {
        return "-".to_owned();
    }
    by_topic
        .into_iter()
        .map(|(topic, mut ps)| {
            ps.sort_unstable();
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{topic}[{}]", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_groups_partitions_by_topic() {
        let parts = vec![
            ("orders".to_owned(), 3),
            ("audit".to_owned(), 0),
            ("orders".to_owned(), 1),
        ];
        assert_eq!(assignment(&parts), "audit[0] orders[1,3]");
        assert_eq!(assignment(&[]), "-");
    }
}
