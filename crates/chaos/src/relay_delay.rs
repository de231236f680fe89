//! The relay's end-to-end delay for scripts/bench-order-api.sh: for each outbox row
//! (`order_id,epoch_seconds` of when the order's transaction wrote it), the broker's
//! append time (LogAppendTime) of the order's record minus that; p50, p99 and max over
//! the orders. One event per order (OrderCreated) is expected.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::verifier::read::read_topic;

/// The summary line, e.g. `p50 3.1 ms, p99 9.8 ms, max 12.0 ms over 5000 orders`.
pub async fn relay_delay(brokers: &str, topic: &str, created_csv: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(created_csv)
        .with_context(|| format!("read {}", created_csv.display()))?;
    let mut created: HashMap<String, f64> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (order, seconds) = line
            .rsplit_once(',')
            .context("a line is not order_id,epoch")?;
        created.insert(order.to_string(), seconds.trim().parse()?);
    }
    let records = read_topic(brokers, topic, Duration::from_secs(10)).await?;
    let mut delays = Vec::new();
    for record in records {
        let key = String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
        if let (Some(at), Some(millis)) = (created.remove(&key), record.timestamp_ms) {
            delays.push(millis as f64 / 1000.0 - at);
        }
    }
    if delays.is_empty() {
        bail!("no record matched an outbox row");
    }
    delays.sort_by(f64::total_cmp);
    let percentile = |q: f64| {
        let index = ((q / 100.0 * delays.len() as f64).round() as usize).clamp(1, delays.len()) - 1;
        delays[index] * 1000.0
    };
    let mut line = format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} orders",
        percentile(50.0),
        percentile(99.0),
        delays[delays.len() - 1] * 1000.0,
        delays.len()
    );
    if !created.is_empty() {
        line.push_str(&format!(
            " ({} outbox rows without a record)",
            created.len()
        ));
    }
    Ok(line)
}
