//! A progress line on stderr, refreshed once a second, when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::generator::delivery::OrderProducer;

/// The progress line for the given counts.
pub fn progress_line(sent: u64, total: u64, acked: u64, failed: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let percent = if total == 0 {
        100.0
    } else {
        sent as f64 * 100.0 / total as f64
    };
    format!(
        "sent {sent}/{total} ({percent:.0}%)  acked {acked}  failed {failed}  {:.0} records/s",
        sent as f64 / secs
    )
}

/// Starts printing progress when stderr is a terminal, until `token` is cancelled.
/// `total` is the expected number of records (lifecycle events; extras push it past 100%).
pub fn spawn_if_terminal(
    producer: OrderProducer,
    sent: Arc<AtomicU64>,
    total: u64,
    token: CancellationToken,
) -> Option<JoinHandle<()>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(tokio::spawn(async move {
        let started = Instant::now();
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let tracker = producer.context();
            let line = progress_line(
                sent.load(Ordering::Relaxed),
                total,
                tracker.acked(),
                tracker.failed(),
                started.elapsed(),
            );
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K{line}");
            let _ = stderr.flush();
        }
        let _ = writeln!(std::io::stderr());
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_counts_share_and_rate() {
        let line = progress_line(500, 1_000, 480, 2, Duration::from_secs(2));
        assert_eq!(
            line,
            "sent 500/1000 (50%)  acked 480  failed 2  250 records/s"
        );
    }
}
