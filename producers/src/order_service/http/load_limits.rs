//! The order API's request timeout and concurrency limit (tower layers).
//!
//! Both answer 503 with `Retry-After` and a JSON body:
//! - A request that takes longer than the timeout is dropped (its transaction rolls
//!   back unless it had already committed) and answered 503, not 408: 408 tells a client
//!   that *it* was too slow sending its request, while here the service was too slow.
//!   A client retrying with the same `Idempotency-Key` cannot apply a write twice.
//! - Beyond the concurrency limit a request is shed at once rather than queued: a queue
//!   in front of a saturated database only adds latency until every request times out,
//!   while an immediate 503 lets the client back off or a load balancer try another
//!   instance (as Envoy's and Finagle's admission control do).
//!
//! The limit is one semaphore for all routes together.

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer;
use tower::{BoxError, ServiceBuilder};

use crate::order_service::http::api_error::ApiError;

/// The timeout of a request when `--request-timeout` is 0: a century.
const NO_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// `Retry-After` of a shed or timed-out request, in seconds.
const RETRY_AFTER_SECONDS: u32 = 1;

/// How long a request may take and how many may run at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadLimits {
    /// Longest a request may take; `None` for no limit.
    pub request_timeout: Option<Duration>,
    /// Most requests served at once; `None` for no limit.
    pub max_concurrent_requests: Option<usize>,
}

/// Puts the limits around every route of `router` (not its fallbacks).
pub fn apply<S>(router: Router<S>, limits: LoadLimits) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // One stack whether or not a limit is set, so both answer the same way; a limit
    // that is off is one no request reaches.
    let timeout = limits.request_timeout;
    let layers = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |error: BoxError| async move {
            answer_overload(&error, timeout)
        }))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(
            limits
                .max_concurrent_requests
                .unwrap_or(Semaphore::MAX_PERMITS),
        ))
        .layer(TimeoutLayer::new(timeout.unwrap_or(NO_TIMEOUT)));
    router.route_layer(layers)
}

fn answer_overload(error: &BoxError, timeout: Option<Duration>) -> Response {
    let message = if error.is::<tower::timeout::error::Elapsed>() {
        format!(
            "the request did not finish within {}; retry later (a write retried with the same Idempotency-Key is applied at most once)",
            humanize(timeout.unwrap_or_default())
        )
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        "the service is at its limit of concurrent requests; retry later".to_string()
    } else {
        tracing::error!(%error, "order API request failed in a middleware");
        return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
            .into_response();
    };
    let mut response =
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message, None).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

fn humanize(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tokio::sync::{Notify, mpsc};
    use tower::ServiceExt;

    use super::*;

    async fn json_error(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        body["error"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_is_503_json() {
        let router = apply(
            Router::new().route("/", get(std::future::pending::<&'static str>)),
            LoadLimits {
                request_timeout: Some(Duration::from_millis(20)),
                max_concurrent_requests: None,
            },
        );
        let response = router
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert!(json_error(response).await.contains("within 20 ms"));
    }

    #[tokio::test]
    async fn a_request_beyond_the_concurrency_limit_of_all_routes_is_shed_not_queued() {
        let (entered_tx, mut entered) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let handler_release = release.clone();
        let router = apply(
            Router::new()
                .route(
                    "/",
                    get(move || {
                        let entered_tx = entered_tx.clone();
                        let release = handler_release.clone();
                        async move {
                            entered_tx.send(()).unwrap();
                            release.notified().await;
                            "done"
                        }
                    }),
                )
                .route("/other", get(|| async { "other" })),
            LoadLimits {
                request_timeout: None,
                max_concurrent_requests: Some(1),
            },
        );
        let request = || Request::get("/").body(Body::empty()).unwrap();
        let first = tokio::spawn(router.clone().oneshot(request()));
        entered.recv().await.unwrap();

        // Another route: the limit is one for the whole API, not one per route.
        let other = Request::get("/other").body(Body::empty()).unwrap();
        let shed = tokio::time::timeout(Duration::from_secs(30), router.clone().oneshot(other))
            .await
            .expect("a request beyond the limit is answered at once, not queued")
            .unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(shed.headers()[header::RETRY_AFTER], "1");
        assert!(json_error(shed).await.contains("concurrent requests"));

        release.notify_one();
        assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
        let after = tokio::spawn(router.oneshot(request()));
        entered.recv().await.unwrap();
        release.notify_one();
        assert_eq!(after.await.unwrap().unwrap().status(), StatusCode::OK);
    }
}
