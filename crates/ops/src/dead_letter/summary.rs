//! Counts printed at the end of `dlq list` and `dlq redrive`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::DlqRecord;

/// Label used for a record without the header being counted.
const MISSING: &str = "(none)";

/// What `dlq list` showed, by error category and by source topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListSummary {
    /// Records listed.
    pub listed: u64,
    /// Records listed per `dlq-error-category`.
    pub by_category: BTreeMap<String, u64>,
    /// Records listed per `dlq-source-topic`.
    pub by_source_topic: BTreeMap<String, u64>,
}

impl ListSummary {
    /// Counts one listed record.
    pub fn add(&mut self, record: &DlqRecord) {
        self.listed += 1;
        let category = record.category().unwrap_or_else(|| MISSING.to_owned());
        *self.by_category.entry(category).or_default() += 1;
        let topic = record.source_topic().unwrap_or_else(|| MISSING.to_owned());
        *self.by_source_topic.entry(topic).or_default() += 1;
    }

    /// The human summary: a total line and one line per grouping.
    pub fn render_text(&self) -> String {
        let join = join_counts;
        format!(
            "{} record(s)\nby category: {}\nby source topic: {}",
            self.listed,
            join(&self.by_category),
            join(&self.by_source_topic)
        )
    }
}

/// The outcome of `dlq redrive`, printed as one JSON object.
/// `selected` = `redriven` + `would_redrive` + every `skipped_*` + `refused_topic` + `failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveSummary {
    /// Records that passed the filters.
    pub selected: u64,
    /// Records produced to their source topic and acknowledged.
    pub redriven: u64,
    /// Records that would have been produced (`--dry-run` only).
    pub would_redrive: u64,
    /// Records left in the DLQ because they reached `--max-redrives`.
    pub skipped_max_redrives: u64,
    /// Records left in the DLQ because they have no `dlq-source-topic` header.
    pub skipped_no_source: u64,
    /// Records left in the DLQ because their `dlq-redrive-count` is not a number.
    pub skipped_invalid_count: u64,
    /// Records left in the DLQ because an earlier run already handled them (below the
    /// redrive cursor); `--again` replays them.
    pub skipped_already_redriven: u64,
    /// Records refused because `dlq-source-topic` names a topic outside the allow-list.
    pub refused_topic: u64,
    /// Records whose delivery failed (or whose source topic does not exist).
    pub failed: u64,
    /// Records replayed (or, in a dry run, that would be), per error category.
    pub by_category: BTreeMap<String, u64>,
    /// Records replayed (or that would be), per target `topic[partition]`.
    pub by_target: BTreeMap<String, u64>,
    /// Whether this was a dry run (nothing produced).
    pub dry_run: bool,
    /// Whether a signal stopped the run before every selected record was handled.
    pub interrupted: bool,
    /// Redrive positions this run moved (DLQ partition: next offset not replayed),
    /// committed under the `orderflow-dlq-redrive` group; the DLQ count drops by them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub positions: BTreeMap<i32, i64>,
    /// Redrive cursor this run moved (DLQ partition: next offset not handled); a
    /// re-run starts there.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cursor: BTreeMap<i32, i64>,
}

impl RedriveSummary {
    /// Whether the command should exit non-zero: a delivery failed, or a record tried
    /// to send the redrive to a topic the operator did not allow.
    pub fn has_failures(&self) -> bool {
        self.failed > 0 || self.refused_topic > 0
    }

    /// Counts one replay (or would-be replay) of a `category` record to `topic[partition]`.
    pub fn count_target(&mut self, category: Option<String>, topic: &str, partition: i32) {
        let category = category.unwrap_or_else(|| MISSING.to_owned());
        *self.by_category.entry(category).or_default() += 1;
        *self
            .by_target
            .entry(format!("{topic}[{partition}]"))
            .or_default() += 1;
    }

    /// The human summary for a terminal: totals, then the counts per category and target.
    pub fn render_text(&self) -> String {
        let join = join_counts;
        let done = if self.dry_run {
            format!("{} would be redriven", self.would_redrive)
        } else {
            format!("{} redriven", self.redriven)
        };
        format!(
            "{} selected, {done}, {} already redriven, {} at --max-redrives, {} without source, \
             {} with a bad count, {} refused topic, {} failed{}\nby category: {}\nby target: {}",
            self.selected,
            self.skipped_already_redriven,
            self.skipped_max_redrives,
            self.skipped_no_source,
            self.skipped_invalid_count,
            self.refused_topic,
            self.failed,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            join(&self.by_category),
            join(&self.by_target),
        )
    }
}

/// `name=count` pairs on one line, `-` when there are none.
fn join_counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        "-".to_owned()
    } else {
        counts
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use orderflow_contracts::dead_letter::headers;

    use super::*;
    use crate::dead_letter::record::RecordHeader;

    fn record(topic: Option<&str>, category: &str) -> DlqRecord {
        let mut headers = vec![RecordHeader::text(headers::ERROR_CATEGORY, category)];
        if let Some(topic) = topic {
            headers.push(RecordHeader::text(headers::SOURCE_TOPIC, topic));
        }
        DlqRecord {
            partition: 0,
            offset: 0,
            key: None,
            value: None,
            headers,
        }
    }

    #[test]
    fn counts_by_category_and_source_topic() {
        let mut summary = ListSummary::default();
        summary.add(&record(Some("orders"), "validation"));
        summary.add(&record(Some("orders"), "schema"));
        summary.add(&record(None, "validation"));
        assert_eq!(summary.listed, 3);
        assert_eq!(summary.by_category["validation"], 2);
        assert_eq!(summary.by_source_topic["orders"], 2);
        assert_eq!(summary.by_source_topic[MISSING], 1);
        assert_eq!(
            summary.render_text(),
            "3 record(s)\nby category: schema=1 validation=2\nby source topic: (none)=1 orders=2"
        );
    }
}
