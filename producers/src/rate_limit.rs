//! A token bucket that paces sends to a target rate without sleeping per record.
//!
//! Tokens refill continuously at `rate` per second up to a small burst; a caller takes
//! one token per record and only waits when the bucket is empty. Rate 0 means unlimited:
//! acquiring is then a no-op that reads no clock.

use std::time::{Duration, Instant};

/// How much traffic the bucket may release at once, as a fraction of a second of rate:
/// enough that a sleep wakes up to a batch rather than a single record.
const BURST_SECONDS: f64 = 0.02;

/// Token bucket pacing records to a fixed rate (or not at all).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// `None` when unlimited.
    bucket: Option<Bucket>,
}

#[derive(Debug, Clone)]
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    /// A limiter releasing `per_second` records per second; 0 means unlimited.
    pub fn new(per_second: u32) -> Self {
        Self::starting_at(per_second, Instant::now())
    }

    /// Like [`RateLimiter::new`], with an explicit start time (for tests).
    pub fn starting_at(per_second: u32, now: Instant) -> Self {
        let bucket = (per_second > 0).then(|| {
            let rate = f64::from(per_second);
            let capacity = (rate * BURST_SECONDS).max(1.0);
            Bucket {
                rate,
                capacity,
                // Start with one token so the first record goes out at once, then pace.
                tokens: 1.0,
                refilled_at: now,
            }
        });
        Self { bucket }
    }

    /// Whether the limiter never waits.
    pub fn is_unlimited(&self) -> bool {
        self.bucket.is_none()
    }

    /// Takes one token if available at `now`; otherwise returns how long until one is.
    pub fn try_acquire_at(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(bucket) = self.bucket.as_mut() else {
            return Ok(());
        };
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * bucket.rate).min(bucket.capacity);
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.rate))
        }
    }

    /// Waits until one token is available and takes it.
    pub async fn acquire(&mut self) {
        if self.bucket.is_none() {
            return;
        }
        while let Err(wait) = self.try_acquire_at(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits() {
        let mut limiter = RateLimiter::new(0);
        assert!(limiter.is_unlimited());
        let now = Instant::now();
        for _ in 0..100_000 {
            assert_eq!(limiter.try_acquire_at(now), Ok(()));
        }
    }

    #[test]
    fn releases_rate_records_per_second_of_simulated_time() {
        let start = Instant::now();
        let mut limiter = RateLimiter::starting_at(1_000, start);
        let mut released = 0u32;
        // Step through two simulated seconds in 1 ms ticks, taking all we may each tick.
        for tick in 0..=2_000u64 {
            let now = start + Duration::from_millis(tick);
            while limiter.try_acquire_at(now).is_ok() {
                released += 1;
            }
        }
        // 1 initial token + 2 s * 1000/s, give or take float rounding.
        assert!((2_000..=2_002).contains(&released), "released {released}");
    }

    #[test]
    fn empty_bucket_says_how_long_to_wait() {
        let start = Instant::now();
        let mut limiter = RateLimiter::starting_at(10, start);
        assert_eq!(limiter.try_acquire_at(start), Ok(()));
        let wait = limiter.try_acquire_at(start).unwrap_err();
        assert!(
            wait > Duration::from_millis(95) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert_eq!(limiter.try_acquire_at(start + wait), Ok(()));
    }

    #[test]
    fn idle_time_does_not_bank_more_than_the_burst() {
        let start = Instant::now();
        let mut limiter = RateLimiter::starting_at(1_000, start);
        let later = start + Duration::from_secs(60);
        let mut burst = 0;
        while limiter.try_acquire_at(later).is_ok() {
            burst += 1;
        }
        assert_eq!(
            burst, 20,
            "a minute idle must not release a minute of records at once"
        );
    }
}
