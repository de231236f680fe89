//! The relay's own health, apart from the API's readiness: the API takes writes while
//! the database does (the outbox exists so that writes go on while Kafka is away), and
//! the relay says here why nothing leaves. Served as `GET /relayz` on the operations
//! address: 200 while the relay publishes (or has nothing to publish), 503 after
//! [`UNHEALTHY_AFTER_FAILED_ROUNDS`](super::relay::UNHEALTHY_AFTER_FAILED_ROUNDS)
//! failed rounds in a row, with the oldest unsent row's age, the backlog, the last
//! successful send and the last error as JSON. The same figures are metrics.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{DateTime, Utc};
use orderflow_outbox::Unsent;
use serde::Serialize;

/// What `/relayz` answers.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RelayReport {
    /// `ok`, or `failing` while the relay cannot publish.
    status: &'static str,
    /// Age of the oldest unsent row, in seconds (0 when none).
    oldest_unsent_age_seconds: f64,
    /// Rows waiting to be published (pending or waiting behind their order).
    backlog: i64,
    /// Rows parked after permanent failures.
    parked: i64,
    /// When a row was last acknowledged and marked sent.
    last_send_at: Option<DateTime<Utc>>,
    /// Why the last failed round failed.
    last_error: Option<String>,
    /// When the figures above were last counted.
    counted_at: Option<DateTime<Utc>>,
}

/// The relay's health, shared by the relay (which writes it) and `/relayz`.
#[derive(Debug, Clone)]
pub(crate) struct RelayHealth(Arc<Mutex<RelayReport>>);

impl Default for RelayHealth {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(RelayReport {
            status: "ok",
            ..RelayReport::default()
        })))
    }
}

impl RelayHealth {
    fn update(&self, change: impl FnOnce(&mut RelayReport)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Whether the relay is publishing; `error` says why not.
    pub(crate) fn set_failing(&self, failing: bool, error: Option<String>) {
        self.update(|report| {
            report.status = if failing { "failing" } else { "ok" };
            if error.is_some() {
                report.last_error = error;
            }
        });
    }

    /// Rows were acknowledged and marked sent at `at`.
    pub(crate) fn sent(&self, at: DateTime<Utc>) {
        self.update(|report| report.last_send_at = Some(at));
    }

    /// The unsent rows as counted at `at`.
    pub(crate) fn counted(&self, unsent: &Unsent, at: DateTime<Utc>) -> f64 {
        let age = oldest_age_seconds(unsent, at);
        self.update(|report| {
            report.backlog = unsent.pending;
            report.parked = unsent.parked;
            report.oldest_unsent_age_seconds = age;
            report.counted_at = Some(at);
        });
        age
    }

    /// The report, and whether it is healthy.
    pub(crate) fn report(&self) -> (bool, RelayReport) {
        let report = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        (report.status == "ok", report)
    }
}

/// Seconds since the oldest unsent row was written, 0 when none is.
fn oldest_age_seconds(unsent: &Unsent, at: DateTime<Utc>) -> f64 {
    unsent.oldest_written_at.map_or(0.0, |written| {
        (at - written).num_milliseconds().max(0) as f64 / 1000.0
    })
}

/// `GET /relayz`.
pub(crate) fn routes(health: RelayHealth) -> Router {
    Router::new()
        .route("/relayz", get(relayz))
        .with_state(health)
}

async fn relayz(State(health): State<RelayHealth>) -> (StatusCode, Json<RelayReport>) {
    let (healthy, report) = health.report();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_rows_age_is_counted_from_its_write() {
        let health = RelayHealth::default();
        let now = Utc::now();
        let unsent = Unsent {
            pending: 7,
            parked: 1,
            oldest_written_at: Some(now - chrono::Duration::seconds(90)),
        };
        assert_eq!(health.counted(&unsent, now), 90.0);
        let (healthy, report) = health.report();
        assert!(healthy);
        assert_eq!((report.backlog, report.parked), (7, 1));
        let none = Unsent {
            pending: 0,
            parked: 0,
            oldest_written_at: None,
        };
        assert_eq!(health.counted(&none, now), 0.0);
    }

    #[test]
    fn failing_keeps_the_reason_until_it_publishes_again() {
        let health = RelayHealth::default();
        health.set_failing(true, Some("broker transport failure".into()));
        let (healthy, report) = health.report();
        assert!(!healthy);
        assert_eq!(
            report.last_error.as_deref(),
            Some("broker transport failure")
        );
        health.set_failing(false, None);
        assert!(health.report().0);
    }
}
