//! Circuit breaker in front of the database: after repeated transient failures
//! it opens, work waits instead of hammering the database, and one probe at a
//! time tests whether it is back.

use std::sync::Mutex;
use std::time::Duration;

// tokio's clock, so tests can pause and advance time.
use tokio::time::Instant;

/// The breaker's state as exported in metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerState {
    /// Normal operation.
    Closed,
    /// Failing: nothing may call the database until the cool-down ends.
    Open,
    /// Cool-down over: one probe is allowed through.
    HalfOpen,
}

impl BreakerState {
    /// Numeric value for the gauge (0 closed, 1 open, 2 half-open).
    pub(crate) fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    open_until: Instant,
    times_opened: u32,
    probe_in_flight: bool,
}

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    /// Go ahead.
    Allowed,
    /// Wait about this long, then ask again.
    Wait(Duration),
}

/// A state change worth one log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    /// State before.
    pub(crate) from: BreakerState,
    /// State after.
    pub(crate) to: BreakerState,
}

/// Shared breaker; cheap to call from many tasks.
pub(crate) struct CircuitBreaker {
    inner: Mutex<Inner>,
    failure_threshold: u32,
    cool_down: Box<dyn Fn(u32) -> Duration + Send + Sync>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("failure_threshold", &self.failure_threshold)
            .finish()
    }
}

impl CircuitBreaker {
    /// Opens after `failure_threshold` consecutive transient failures; the n-th
    /// opening lasts `cool_down(n)` (grow it with backoff and jitter).
    pub(crate) fn new(
        failure_threshold: u32,
        cool_down: impl Fn(u32) -> Duration + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                open_until: Instant::now(),
                times_opened: 0,
                probe_in_flight: false,
            }),
            failure_threshold: failure_threshold.max(1),
            cool_down: Box::new(cool_down),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Current state. The cool-down ends by time alone: an open breaker whose
    /// cool-down is over is half-open whether or not anyone asked for a permit
    /// (the engine resumes paused partitions on that, so a probe can come).
    pub(crate) fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        end_cool_down(&mut inner);
        inner.state
    }

    /// Moves an open breaker whose cool-down is over to half-open; the
    /// transition, if any, for the caller to log.
    pub(crate) fn refresh(&self) -> Option<Transition> {
        end_cool_down(&mut self.lock())
    }

    /// Asks to call the database now.
    pub(crate) fn try_acquire(&self) -> (Permit, Option<Transition>) {
        let mut inner = self.lock();
        let transition = end_cool_down(&mut inner);
        let permit = match inner.state {
            BreakerState::Closed => Permit::Allowed,
            BreakerState::Open => Permit::Wait(inner.open_until - Instant::now()),
            BreakerState::HalfOpen if inner.probe_in_flight => {
                Permit::Wait(Duration::from_millis(50))
            }
            BreakerState::HalfOpen => {
                inner.probe_in_flight = true;
                Permit::Allowed
            }
        };
        (permit, transition)
    }

    /// Reports a successful database call.
    pub(crate) fn on_success(&self) -> Option<Transition> {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        inner.probe_in_flight = false;
        if inner.state == BreakerState::Closed {
            return None;
        }
        let from = inner.state;
        inner.state = BreakerState::Closed;
        inner.times_opened = 0;
        Some(Transition {
            from,
            to: BreakerState::Closed,
        })
    }

    /// Reports a transient database failure.
    pub(crate) fn on_transient_failure(&self) -> Option<Transition> {
        let mut inner = self.lock();
        inner.consecutive_failures += 1;
        inner.probe_in_flight = false;
        let should_open = match inner.state {
            BreakerState::Closed => inner.consecutive_failures >= self.failure_threshold,
            BreakerState::HalfOpen => true,
            BreakerState::Open => false,
        };
        if !should_open {
            return None;
        }
        let from = inner.state;
        inner.times_opened += 1;
        inner.state = BreakerState::Open;
        inner.open_until = Instant::now() + (self.cool_down)(inner.times_opened);
        Some(Transition {
            from,
            to: BreakerState::Open,
        })
    }
}

fn end_cool_down(inner: &mut Inner) -> Option<Transition> {
    if inner.state != BreakerState::Open || Instant::now() < inner.open_until {
        return None;
    }
    inner.state = BreakerState::HalfOpen;
    inner.probe_in_flight = false;
    Some(Transition {
        from: BreakerState::Open,
        to: BreakerState::HalfOpen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes_then_closes() {
        let breaker = CircuitBreaker::new(3, |_| Duration::from_millis(20));
        assert_eq!(breaker.try_acquire().0, Permit::Allowed);
        assert!(breaker.on_transient_failure().is_none());
        assert!(breaker.on_transient_failure().is_none());
        let opened = breaker.on_transient_failure().unwrap();
        assert_eq!(opened.to, BreakerState::Open);
        assert!(matches!(breaker.try_acquire().0, Permit::Wait(_)));
        std::thread::sleep(Duration::from_millis(25));
        let (permit, transition) = breaker.try_acquire();
        assert_eq!(permit, Permit::Allowed);
        assert_eq!(transition.unwrap().to, BreakerState::HalfOpen);
        assert!(
            matches!(breaker.try_acquire().0, Permit::Wait(_)),
            "only one probe at a time"
        );
        assert_eq!(breaker.on_success().unwrap().to, BreakerState::Closed);
        assert_eq!(breaker.try_acquire().0, Permit::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_follows_time_without_a_caller() {
        // Workers that lost their partitions never ask for a permit again; the
        // engine only looks at the state. The cool-down must end by itself.
        let breaker = CircuitBreaker::new(1, |_| Duration::from_secs(30));
        assert_eq!(
            breaker.on_transient_failure().unwrap().to,
            BreakerState::Open
        );
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert_eq!(breaker.try_acquire().0, Permit::Allowed, "the probe");
        assert!(matches!(breaker.try_acquire().0, Permit::Wait(_)));
    }

    #[test]
    fn failed_probe_reopens() {
        let breaker = CircuitBreaker::new(1, |_| Duration::from_millis(1));
        breaker.on_transient_failure();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(breaker.try_acquire().0, Permit::Allowed);
        assert_eq!(
            breaker.on_transient_failure().unwrap().to,
            BreakerState::Open
        );
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}
