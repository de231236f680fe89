//! What the harness reads off the services without asking them: retries and
//! assignments from the workers' JSON logs (they outlive kill -9, metrics do not), and
//! each worker's memory (VmRSS from /proc) and buffered records (its /metrics), sampled
//! while it runs.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

/// Figures summed over the JSON log lines of the workers.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct LogFigures {
    /// "partitions assigned" lines.
    pub assignments: u64,
    /// Records in batches retried after a database failure.
    pub db_retries: u64,
    /// Records dead-lettered (lines of the consumer's DLQ decision).
    pub dead_letter_lines: u64,
}

/// Adds the figures of one log file (lines that are not JSON are skipped: a panic
/// message, or a line cut by kill -9).
pub fn read_log(path: &Path, into: &mut LogFigures) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        // tracing's JSON puts the fields under "fields", or at the top with flattening.
        let fields = if value["fields"].is_object() {
            &value["fields"]
        } else {
            &value
        };
        let message = fields["message"].as_str().unwrap_or("");
        if message == "partitions assigned" {
            into.assignments += 1;
        } else if message.ends_with("batch will be retried") {
            into.db_retries += fields["records"].as_u64().unwrap_or(0);
        } else if message.contains("dead-lettered") {
            into.dead_letter_lines += 1;
        }
    }
}

/// Resident memory of `pid` in KiB (`None` once it is gone).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The sum of a Prometheus gauge over its label sets, from a text exposition.
pub fn gauge_sum(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        *found.get_or_insert(0.0) += value;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_log_lines_are_counted_and_other_lines_skipped() {
        let dir = std::env::temp_dir().join(format!("chaos-observe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("worker.log");
        std::fs::write(
            &path,
            concat!(
                r#"{"level":"INFO","fields":{"message":"partitions assigned","partitions":"[1]"}}"#, "\n",
                r#"{"level":"WARN","fields":{"message":"database failed transiently; batch will be retried","records":12}}"#, "\n",
                "thread 'main' panicked\n",
                r#"{"level":"WARN","message":"database failed transiently; batch will be retried","records":3}"#, "\n",
            ),
        )
        .unwrap();
        let mut figures = LogFigures::default();
        read_log(&path, &mut figures);
        assert_eq!((figures.assignments, figures.db_retries), (1, 15));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_gauge_is_summed_over_its_labels() {
        let text = "# HELP x\norderflow_consumer_buffered_records{group=\"g\"} 40\n\
                    orderflow_consumer_buffered_records_other 9\n\
                    orderflow_consumer_buffered_records{group=\"h\"} 2\n";
        assert_eq!(
            gauge_sum(text, "orderflow_consumer_buffered_records"),
            Some(42.0)
        );
        assert_eq!(gauge_sum(text, "missing"), None);
    }
}
