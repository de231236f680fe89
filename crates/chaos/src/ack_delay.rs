//! The delay of an acknowledged change: from the HTTP workload's 2xx (`acked_ms` in
//! `http.jsonl`) to the broker's append time of the event's first record (the scenario's
//! topic uses LogAppendTime). Changes missing from the topic are the verifiers' concern.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

/// The figures over the acknowledged changes found in the topic.
#[derive(Debug, Clone, Serialize)]
pub struct AckDelay {
    /// Changes measured.
    pub changes: usize,
    /// Median, ms.
    pub p50_ms: i64,
    /// 99th percentile, ms.
    pub p99_ms: i64,
    /// Largest, ms.
    pub max_ms: i64,
}

/// Reads `http_log` and compares it with `first_record_ms` (by event id); `None` when no
/// acknowledged change has both times. Each change's times go to `csv`
/// (`event_id,acked_ms,record_ms`).
pub fn measure(
    http_log: &Path,
    first_record_ms: &HashMap<String, i64>,
    csv: &Path,
) -> anyhow::Result<Option<AckDelay>> {
    let mut lines = String::from("event_id,acked_ms,record_ms\n");
    let text = std::fs::read_to_string(http_log)
        .with_context(|| format!("read {}", http_log.display()))?;
    let mut delays = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line)?;
        let (Some(event), Some(acked)) = (entry["event_id"].as_str(), entry["acked_ms"].as_i64())
        else {
            continue;
        };
        if let Some(&appended) = first_record_ms.get(event) {
            delays.push(appended - acked);
            lines.push_str(&format!("{event},{acked},{appended}\n"));
        }
    }
    std::fs::write(csv, lines).with_context(|| format!("write {}", csv.display()))?;
    if delays.is_empty() {
        return Ok(None);
    }
    delays.sort_unstable();
    let at =
        |q: f64| delays[((q * delays.len() as f64).ceil() as usize).clamp(1, delays.len()) - 1];
    Ok(Some(AckDelay {
        changes: delays.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: delays[delays.len() - 1],
    }))
}
