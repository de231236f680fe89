//! One server span per HTTP request (OpenTelemetry's HTTP conventions), continuing the
//! caller's trace when it sent a `traceparent`. The order's database transaction and its
//! outbox row are the span's children, so the trace goes on through the relay and Kafka.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use orderflow_runtime::telemetry::propagation::extract_http_headers;
use orderflow_runtime::telemetry::span_context;
use tracing::Instrument;
use tracing::field::Empty;

/// Runs the request inside its server span and records the answer's status.
pub async fn trace_request(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    // The route template, never the order id, names the span (low cardinality).
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        url.scheme = "http",
        http.response.status_code = Empty,
    );
    span_context::set_parent(&span, &extract_http_headers(request.headers()));
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}
