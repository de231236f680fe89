//! Whether, when and how often to try again. A failure is the database's (the
//! breaker hears of it, records wait without limit and use up no attempt) or a
//! record's own (counted against `--max-attempts`, then dead-lettered); the
//! breaker gates every call to the database, and rounds are spaced by backoff.
//! Which database errors retrying can help with is the store's to say
//! ([`crate::store::db_error`]).

use std::time::Duration;

use orderflow_runtime::backoff::Backoff;
use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;

use super::circuit_breaker::{BreakerState, CircuitBreaker, Permit, Transition};
use super::effect_batch::BatchFailure;
use crate::error::FailureKind;

/// What a failed attempt to apply records says about whose failure it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The database as a whole failed: breaker, backoff, no attempt counted.
    Database,
    /// Several records failed together with an error of unknown kind: apply
    /// each on its own to tell a record's failure from the database's.
    Split,
    /// One record failed transiently on its own (a concurrent writer): retry it,
    /// no attempt counted.
    RetryRecord,
    /// One record failed with an error of unknown kind: count an attempt.
    Record,
}

/// The retry decisions of the engine, with the database's circuit breaker.
#[derive(Debug)]
pub(crate) struct RetryPolicy {
    breaker: CircuitBreaker,
    backoff: Backoff,
    max_attempts: u32,
    breaker_gauge: IntGauge,
    group: String,
}

impl RetryPolicy {
    /// Rounds spaced by `backoff`; a record's own failures of unknown kind get
    /// `max_attempts`; the breaker opens after `breaker_threshold` transient
    /// failures in a row, for the backoff's ceiling (at least 0.5 s to start)
    /// growing with each opening. `breaker_gauge` follows its state.
    pub(crate) fn new(
        backoff: Backoff,
        max_attempts: u32,
        breaker_threshold: u32,
        breaker_gauge: IntGauge,
        group: String,
    ) -> Self {
        let breaker = CircuitBreaker::new(breaker_threshold, move |opened| {
            Backoff {
                initial: backoff.initial.max(Duration::from_millis(500)),
                ..backoff
            }
            .ceiling(opened.saturating_sub(1))
        });
        Self {
            breaker,
            backoff,
            max_attempts,
            breaker_gauge,
            group,
        }
    }

    /// Judges the failure of a transaction of `records` records.
    pub(crate) fn judge_batch(&self, failure: &BatchFailure, records: usize) -> Verdict {
        match failure.kind {
            FailureKind::Transient => Verdict::Database,
            _ if records > 1 => Verdict::Split,
            _ => Verdict::Record,
        }
    }

    /// Judges the records of a split batch, each applied on its own: `tried`
    /// records, of which these failed. Every one of at least two records failing
    /// with the same SQLSTATE is the database's failure; otherwise each failure
    /// is its record's.
    pub(crate) fn judge_split(&self, tried: usize, failed: &[&BatchFailure]) -> SplitVerdict {
        if is_database_wide(tried, failed) {
            return SplitVerdict::Database;
        }
        SplitVerdict::PerRecord(
            failed
                .iter()
                .map(|failure| match failure.kind {
                    FailureKind::Transient => Verdict::RetryRecord,
                    _ => Verdict::Record,
                })
                .collect(),
        )
    }

    /// Whether a record whose own failures number `attempts` is to be dead-lettered.
    pub(crate) fn attempts_exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }

    /// Waits while the breaker is open; false when cancelled.
    pub(crate) async fn wait_for_database(&self, token: &CancellationToken) -> bool {
        loop {
            let (permit, transition) = self.breaker.try_acquire();
            self.log_breaker(transition);
            match permit {
                Permit::Allowed => return true,
                Permit::Wait(delay) => {
                    tokio::select! {
                        _ = token.cancelled() => return false,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// The database answered (even with a record's error).
    pub(crate) fn database_answered(&self) {
        self.log_breaker(self.breaker.on_success());
    }

    /// The database failed as a whole.
    pub(crate) fn database_failed(&self) {
        self.log_breaker(self.breaker.on_transient_failure());
    }

    /// Whether the breaker is open now (its cool-down ends by time, so this also
    /// moves it to half-open when due).
    pub(crate) fn database_closed_off(&self) -> bool {
        self.log_breaker(self.breaker.refresh());
        self.breaker.state() == BreakerState::Open
    }

    /// The breaker's state (as of the last [`Self::database_closed_off`]).
    pub(crate) fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Waits before retry round `round` (0 first); false when cancelled.
    pub(crate) async fn wait_before_round(&self, round: u32, token: &CancellationToken) -> bool {
        tokio::select! {
            _ = token.cancelled() => false,
            _ = tokio::time::sleep(self.backoff.delay(round)) => true,
        }
    }

    fn log_breaker(&self, transition: Option<Transition>) {
        if let Some(Transition { from, to }) = transition {
            self.breaker_gauge.set(to.as_gauge());
            tracing::warn!(group = %self.group, ?from, ?to, "database circuit breaker changed state");
        }
    }
}

/// How the records of a split batch are judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SplitVerdict {
    /// They all failed alike: the database's failure.
    Database,
    /// Each failure is its record's, in the order given.
    PerRecord(Vec<Verdict>),
}

/// Whether the failures of a batch tried one record at a time say the database,
/// not the records, is at fault: nothing succeeded, and every one of at least two
/// records failed with the same SQLSTATE.
fn is_database_wide(tried: usize, failed: &[&BatchFailure]) -> bool {
    let Some(first) = failed.first() else {
        return false;
    };
    tried > 1
        && failed.len() == tried
        && first.sqlstate.is_some()
        && failed.iter().all(|f| f.sqlstate == first.sqlstate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind, code: Option<&str>) -> BatchFailure {
        BatchFailure {
            kind,
            message: "boom".into(),
            sqlstate: code.map(str::to_owned),
        }
    }

    fn unknown(code: Option<&str>) -> BatchFailure {
        failure(FailureKind::Unknown, code)
    }

    fn policy() -> RetryPolicy {
        let gauge = IntGauge::new("breaker", "test").unwrap();
        RetryPolicy::new(Backoff::default(), 3, 2, gauge, "g".into())
    }

    #[test]
    fn database_wide_only_when_every_record_fails_alike() {
        let (a, b) = (unknown(Some("P0001")), unknown(Some("P0001")));
        let alike = [&a, &b];
        assert!(is_database_wide(2, &alike));
        assert!(!is_database_wide(3, &alike), "one record succeeded");
        let c = unknown(Some("23514"));
        assert!(!is_database_wide(2, &[&a, &c]));
        let (d, e) = (unknown(None), unknown(None));
        assert!(!is_database_wide(2, &[&d, &e]));
        assert!(!is_database_wide(1, &alike[..1]));
    }

    #[test]
    fn a_transient_failure_is_the_databases_and_an_unknown_one_splits_a_batch() {
        let policy = policy();
        let transient = failure(FailureKind::Transient, Some("25006"));
        assert_eq!(policy.judge_batch(&transient, 1), Verdict::Database);
        assert_eq!(policy.judge_batch(&unknown(None), 5), Verdict::Split);
        assert_eq!(policy.judge_batch(&unknown(None), 1), Verdict::Record);
    }

    #[test]
    fn split_records_failing_differently_are_each_their_own() {
        let policy = policy();
        let (a, b) = (
            unknown(Some("23514")),
            failure(FailureKind::Transient, None),
        );
        assert_eq!(
            policy.judge_split(3, &[&a, &b]),
            SplitVerdict::PerRecord(vec![Verdict::Record, Verdict::RetryRecord])
        );
        let c = unknown(Some("23514"));
        assert_eq!(policy.judge_split(2, &[&a, &c]), SplitVerdict::Database);
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_on_database_failures_and_attempts_run_out() {
        let policy = policy();
        policy.database_failed();
        assert!(!policy.database_closed_off());
        policy.database_failed();
        assert!(policy.database_closed_off());
        policy.database_answered();
        assert!(!policy.database_closed_off());
        assert!(!policy.attempts_exhausted(2));
        assert!(policy.attempts_exhausted(3));
    }
}
