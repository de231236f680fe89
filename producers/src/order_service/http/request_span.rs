//! One server span per HTTP request (OpenTelemetry's HTTP conventions), continuing the
//! caller's trace when it sent a `traceparent`. The order's database transaction and its
//! outbox row are the span's children, so the trace goes on through the relay and Kafka.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use orderflow_runtime::telemetry;
use orderflow_runtime::telemetry::propagation::extract_http_headers;
use tracing::field::Empty;

/// Runs the request inside its server span and records the answer's status. Whether the
/// trace is sampled is decided before the span is built (the caller's `traceparent`
/// decides, under a parent-based sampler); a request sampled out builds no exported span
/// and hands its trace on with the sampled flag off.
pub async fn trace_request(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    // The route template, never the order id, names the span (low cardinality).
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().as_str();
    let root = telemetry::root_span(
        || extract_http_headers(request.headers()),
        || {
            tracing::info_span!(
                "HTTP request",
                otel.name = %format_args!("{method} {route}"),
                otel.kind = "server",
                otel.status_code = Empty,
                http.request.method = method,
                http.route = route,
                url.path = request.uri().path(),
                url.scheme = "http",
                http.response.status_code = Empty,
            )
        },
    );
    let response = root.in_trace(next.run(request)).await;
    let status = response.status();
    root.span
        .record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        root.span.record("otel.status_code", "ERROR");
    }
    response
}
