//! The order API's router: the `/orders` routes behind admission (rate limit and bearer
//! token) and the load limits, the open routes (the OpenAPI document), the answers to
//! unknown routes and methods, request counting and the security headers on every
//! answer.

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::metrics::OrderServiceMetrics;
use crate::order_service::http::api_error::ApiError;
use crate::order_service::http::order_api::{self, ApiAccess, ApiState};
use crate::order_service::http::{admission, load_limits, openapi, request_span, security_headers};

/// The API router, counting requests in `metrics`.
pub(crate) fn router(state: ApiState, access: ApiAccess, metrics: OrderServiceMetrics) -> Router {
    let body_limit = DefaultBodyLimit::max(state.max_body_bytes);
    let (open, _) = openapi::routes::<ApiState>().split_for_parts();
    let (orders, _) = order_api::routes().split_for_parts();
    let guarded = load_limits::apply(orders, access.load).route_layer(
        middleware::from_fn_with_state(access.admission, admission::admit),
    );
    let router = guarded
        .merge(open)
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(body_limit)
        .layer(middleware::from_fn_with_state(metrics, count_requests))
        // Outermost: the server span covers the limits, the guards and the handler.
        .layer(middleware::from_fn(request_span::trace_request));
    security_headers::apply(router)
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route {}", uri.path()),
        None,
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
        None,
    )
}

/// Counts every request by route template (never the order id) and status.
async fn count_requests(
    State(metrics): State<OrderServiceMetrics>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(request).await;
    metrics
        .api_requests
        .with_label_values(&[route.as_str(), response.status().as_str()])
        .inc();
    response
}
