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
use crate::state::SharedState;

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

/// Query of `/api/dlq`.
#[derive(Debug, Deserialize)]
struct DlqQuery {
    /// A dead-letter topic the latest snapshot counts.
    topic: String,
    /// Most records read per partition ([`DLQ_DEFAULT_PER_PARTITION`], at most
    /// [`DLQ_MAX_PER_PARTITION`]).
    per_partition: Option<i64>,
}

/// Records `/api/dlq` reads per partition unless asked for fewer or more.
const DLQ_DEFAULT_PER_PARTITION: i64 = 50;
/// Most records `/api/dlq` reads per partition.
const DLQ_MAX_PER_PARTITION: i64 = 500;
/// Longest `/api/dlq` reads before answering with what it has.
const DLQ_READ_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

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
        .route("/api/dlq", get(dlq))
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

/// The newest records of a dead-letter topic, by error category and newest first. Only
/// topics the engine counts as dead-letter topics are read, and only a bounded tail.
async fn dlq(State(state): State<Arc<SharedState>>, Query(q): Query<DlqQuery>) -> Response {
    let error = |status: StatusCode, message: String| {
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    };
    let counted = state
        .latest()
        .is_some_and(|s| s.dlq.iter().any(|d| d.dlq_topic == q.topic));
    if !counted {
        return error(
            StatusCode::NOT_FOUND,
            format!("{} is not a dead-letter topic the exporter counts", q.topic),
        );
    }
    let Some(kafka) = state.kafka().cloned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this exporter reads no records".into(),
        );
    };
    let Some(permit) = state.try_dlq_read() else {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "other dead-letter reads are running; try again in a few seconds".into(),
        );
    };
    let per_partition = q
        .per_partition
        .unwrap_or(DLQ_DEFAULT_PER_PARTITION)
        .clamp(1, DLQ_MAX_PER_PARTITION);
    let topic = q.topic.clone();
    let read = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        crate::kafka::dlq_records::read_newest(&kafka, &topic, per_partition, DLQ_READ_BUDGET)
    })
    .await;
    match read {
        Ok(Ok(records)) => Json(records).into_response(),
        Ok(Err(err)) => error(StatusCode::BAD_GATEWAY, err.to_string()),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}
