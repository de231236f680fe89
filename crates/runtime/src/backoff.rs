//! Exponential backoff with full jitter (see the AWS architecture blog's "full jitter":
//! a random delay in `[0, min(max, initial * multiplier^attempt)]`), so that many
//! workers retrying at once spread out instead of hammering a recovering dependency.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::{Error, Result};

/// Backoff settings. `delay(attempt)` grows exponentially from `initial` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Ceiling of the first delay.
    pub initial: Duration,
    /// Ceiling every delay is capped at.
    pub max: Duration,
    /// Growth factor per attempt.
    pub multiplier: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
        }
    }
}

impl Backoff {
    /// The exponential ceiling for `attempt` (0-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.powi(attempt.min(64) as i32);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// A delay drawn uniformly from `[0, ceiling(attempt)]` (full jitter).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        if ceiling.is_zero() {
            return ceiling;
        }
        let nanos = rand::rng().random_range(0..=ceiling.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }
}

/// Calls `attempt` until it succeeds or `deadline` has passed, sleeping with backoff
/// between tries. Used at start-up so a dependency that is still booting does not fail
/// the process, while a dependency that never comes fails it with one clear line.
pub async fn retry_until<T, E, F, Fut>(
    deadline: Duration,
    what: &str,
    address: &str,
    mut attempt: F,
) -> Result<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
{
    let backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(3),
        multiplier: 2.0,
    };
    let started = Instant::now();
    let mut tries = 0u32;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) => {
                let waited = started.elapsed();
                if waited >= deadline {
                    return Err(Error::Unreachable {
                        what: what.to_string(),
                        address: address.to_string(),
                        waited,
                        last_error: err.to_string(),
                    });
                }
                tracing::warn!(%what, %address, attempt = tries + 1, error = %err, "not reachable yet; retrying");
                let pause = backoff
                    .delay(tries)
                    .max(Duration::from_millis(50))
                    .min(deadline.saturating_sub(waited));
                tokio::time::sleep(pause).await;
                tries += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_grows_then_caps() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            multiplier: 2.0,
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(1000), Duration::from_secs(1));
    }

    #[test]
    fn jittered_delay_stays_within_ceiling_and_varies() {
        let b = Backoff::default();
        let delays: Vec<_> = (0..200).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= b.ceiling(3)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "full jitter should spread delays");
    }

    #[tokio::test]
    async fn retry_until_reports_the_address_after_the_deadline() {
        let err = retry_until(
            Duration::from_millis(300),
            "thing",
            "127.0.0.1:1",
            || async { Err::<(), _>("refused") },
        )
        .await
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("127.0.0.1:1") && text.contains("refused"),
            "{text}"
        );
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn retry_until_returns_the_first_success() {
        let mut calls = 0;
        let value = retry_until(Duration::from_secs(5), "thing", "here", || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err("not yet") } else { Ok(n) } }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }
}
