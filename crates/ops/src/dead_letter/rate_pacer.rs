//! Spacing of replays: at most `rate` records per second, without bursts after a pause.

use std::time::{Duration, Instant};

/// Hands out send times spaced `1 / rate` apart. A slow stretch (a pause, slow acks)
/// does not earn credit: the next slot is never earlier than now, so there is no burst.
#[derive(Debug, Clone)]
pub struct RatePacer {
    interval: Duration,
    next: Option<Instant>,
}

impl RatePacer {
    /// A pacer for `per_second` records a second; must be positive and finite.
    pub fn new(per_second: f64) -> Self {
        assert!(
            per_second.is_finite() && per_second > 0.0,
            "rate must be positive, got {per_second}"
        );
        Self {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: None,
        }
    }

    /// Reserves the next slot at or after `now` and returns when it starts.
    pub fn reserve(&mut self, now: Instant) -> Instant {
        let slot = match self.next {
            Some(next) if next > now => next,
            _ => now,
        };
        self.next = Some(slot + self.interval);
        slot
    }
}

/// Parses `--rate` (records per second, > 0).
pub fn parse_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("expected records per second such as 50 or 0.5, got {raw:?}"))?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(format!("rate must be more than 0, got {raw:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_interval_and_a_pause_earns_no_burst() {
        let start = Instant::now();
        let mut pacer = RatePacer::new(10.0);
        let tick = Duration::from_millis(100);
        assert_eq!(pacer.reserve(start), start);
        assert_eq!(pacer.reserve(start), start + tick);
        assert_eq!(pacer.reserve(start), start + 2 * tick);
        // Three seconds later: the next slot is now, and the one after is a tick away.
        let later = start + Duration::from_secs(3);
        assert_eq!(pacer.reserve(later), later);
        assert_eq!(pacer.reserve(later), later + tick);
    }

    #[test]
    fn rates_must_be_positive_numbers() {
        assert_eq!(parse_rate("0.5").unwrap(), 0.5);
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-3").is_err());
        assert!(parse_rate("fast").unwrap_err().contains("per second"));
    }
}
