//! HTTP side of the exporter: the JSON API and the embedded dashboard.

mod assets;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::history::HistoryPoint;
use crate::model::Snapshot;
use crate::serve::SharedState;

/// Body of `/api/groups`: the latest snapshot plus the poller's state.
#[derive(Debug, Serialize)]
struct GroupsBody<'a> {
    snapshot: &'a Snapshot,
    interval_ms: u64,
    last_error: Option<String>,
    /// The figures come from before a failed poll.
    stale: bool,
    /// Polls that failed in a row.
    failed_polls: u32,
}

/// Query of `/api/history`.
#[derive(Debug, Deserialize)]
struct HistoryQuery {
    /// Only points after this time (ms since the Unix epoch).
    since: Option<i64>,
}

/// Body of `/api/history`.
#[derive(Debug, Serialize)]
struct HistoryBody {
    points: Vec<HistoryPoint>,
}

/// Routes of the dashboard and its API, to merge with the operations endpoints.
pub fn router(state: Arc<SharedState>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::asset))
        .route("/api/groups", get(groups))
        .route("/api/history", get(history))
        .with_state(state)
}

async fn groups(State(state): State<Arc<SharedState>>) -> Response {
    let Some(snapshot) = state.latest() else {
        let body = serde_json::json!({
            "error": "the first poll has not finished yet",
            "last_error": state.last_error(),
        });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    };
    Json(GroupsBody {
        snapshot: &snapshot,
        interval_ms: state.interval().as_millis() as u64,
        last_error: state.last_error(),
        stale: state.is_stale(),
        failed_polls: state.failed_polls(),
    })
    .into_response()
}

async fn history(State(state): State<Arc<SharedState>>, Query(q): Query<HistoryQuery>) -> Response {
    Json(HistoryBody {
        points: state.history_since(q.since),
    })
    .into_response()
}
