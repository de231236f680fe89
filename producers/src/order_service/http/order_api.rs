//! The order API (axum): place, pay, ship, cancel and read orders.
//!
//! | method | path | body | success |
//! |---|---|---|---|
//! | POST | /orders | `{customer_id, currency, items: [{sku, quantity, unit_price_cents}]}` | 201 `{order_id, event_id, status}` |
//! | POST | /orders/{id}/pay | `{payment_id, amount_cents}` | 200 `{order_id, event_id, status}` |
//! | POST | /orders/{id}/ship | `{carrier, tracking_number}` | 200 |
//! | POST | /orders/{id}/cancel | `{reason}` | 200 |
//! | GET | /orders/{id} | | 200 the order |
//! | GET | /openapi.json | | 200 the OpenAPI document |
//!
//! Every route acts for the authenticated client (the name of its bearer token, or
//! `default` without authentication): an order belongs to the client that placed it, and
//! any other client gets 404 for it; an `Idempotency-Key` is the client's own.
//! Writes accept an `Idempotency-Key` header (see [`idempotency`](crate::order_service::store::idempotency)).
//! Errors are JSON `{"error", "field"}` (see [`ApiError`]). The `/orders` routes pass
//! [`admission`](super::admission) (rate limit and bearer token), then the
//! [`load_limits`](super::load_limits); every answer carries the
//! [`security_headers`](super::security_headers).

use std::sync::Arc;

use crate::order_service::outbox_wake::OutboxWake;
use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::order_service::http::admission::Admission;
use crate::order_service::http::answers::{GuardAnswers, UnknownOrder, WriteAnswers};
use crate::order_service::http::api_error::{ApiError, JsonBody};
use crate::order_service::http::api_tokens::Caller;
use crate::order_service::http::load_limits::LoadLimits;
use crate::order_service::http::requests::{
    self, CancelRequest, CreateOrderRequest, PayRequest, ShipRequest, TransitionBody,
};
use crate::order_service::store::idempotency::{IDEMPOTENT_REPLAYED_HEADER, IdempotentRequest};
use crate::order_service::store::order_store::{
    Order, OrderStore, Outcome, StoreError, WriteContext, Written,
};
use crate::trace_context::{TRACEPARENT_HEADER, is_valid_traceparent, new_traceparent};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// Orders and the outbox.
    pub store: OrderStore,
    /// Wakes the relay after a commit, so events leave without waiting for its poll.
    pub outbox_written: Arc<OutboxWake>,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
}

/// Who may call the API and how much.
#[derive(Debug, Clone, Default)]
pub struct ApiAccess {
    /// Authentication and the per-client rate limit.
    pub admission: Admission,
    /// Request timeout and concurrency limit.
    pub load: LoadLimits,
}

/// The `/orders` routes, each described by its handler's `#[utoipa::path]`: what the
/// router serves (authenticated, rate-limited and load-limited) and the OpenAPI
/// document describes.
pub(crate) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create_order))
        .routes(routes!(get_order))
        .routes(routes!(pay_order))
        .routes(routes!(ship_order))
        .routes(routes!(cancel_order))
}

/// 404 for an id no order can have (blank, a NUL, or too long), without asking the database.
fn check_order_id(order_id: &str) -> Result<(), ApiError> {
    if requests::is_possible_order_id(order_id) {
        Ok(())
    } else {
        Err(StoreError::NotFound(order_id.replace('\0', "\\u0000")).into())
    }
}

/// The caller's `traceparent` when well-formed, else a new trace.
fn traceparent_of(headers: &HeaderMap) -> String {
    headers
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_valid_traceparent(value))
        .map_or_else(|| new_traceparent(&mut rand::rng()), str::to_string)
}

/// The idempotency key of a write request, the caller's own and bound to its method,
/// path and body.
fn idempotency_of(
    caller: &Caller,
    headers: &HeaderMap,
    method: &Method,
    uri: &Uri,
    raw: &[u8],
) -> Result<Option<IdempotentRequest>, ApiError> {
    Ok(IdempotentRequest::from_request(
        headers,
        &caller.0,
        method,
        uri.path(),
        raw,
    )?)
}

/// The HTTP answer to a write: the new change (waking the relay), or the stored answer
/// to the same request sent earlier with the same idempotency key.
fn respond(state: &ApiState, outcome: Outcome, status: StatusCode) -> Response {
    match outcome {
        Outcome::Written(written) => {
            state.outbox_written.written(&written.order_id);
            (status, Json(written)).into_response()
        }
        Outcome::Replayed(stored) => (
            StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
            [
                (header::CONTENT_TYPE, "application/json"),
                (IDEMPOTENT_REPLAYED_HEADER_NAME, "true"),
            ],
            stored.body,
        )
            .into_response(),
    }
}

const IDEMPOTENT_REPLAYED_HEADER_NAME: header::HeaderName =
    header::HeaderName::from_static(IDEMPOTENT_REPLAYED_HEADER);

/// Place an order.
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the write safe to retry: 1 to 255 printable ASCII characters (a UUID). A key belongs to the authenticated client: another client's use of the same key is a key of its own. The same key with the same body within 24 h answers the stored response (with `Idempotent-Replayed: true`) without a second change; with another body it is 422; while the first request is in progress it is 409.", min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]([\x20-\x7E]{0,253}[\x21-\x7E])?$"),
    ),
    request_body(content = CreateOrderRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The order is placed; its OrderCreated event is in the outbox", body = Written, headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same Idempotency-Key"))),
        WriteAnswers,
        GuardAnswers,
    )
)]
async fn create_order(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<CreateOrderRequest>,
) -> Result<Response, ApiError> {
    let idempotency = idempotency_of(&caller, &headers, &method, &uri, &body.raw)?;
    let created = body.value.into_created()?;
    let order_id = format!("ord-{}", uuid::Uuid::new_v4());
    let context = WriteContext {
        client: &caller.0,
        traceparent: &traceparent_of(&headers),
        idempotency: idempotency.as_ref(),
        success_status: StatusCode::CREATED.as_u16(),
    };
    let outcome = state.store.create(&order_id, created, context).await?;
    Ok(respond(&state, outcome, StatusCode::CREATED))
}

/// The one handler of pay, ship and cancel: the body `B` says which change it is. The
/// routes below only give each change its path and its description.
async fn transition<B: TransitionBody>(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(order_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<B>,
) -> Result<Response, ApiError> {
    let payload = body.value.into_payload()?;
    check_order_id(&order_id)?;
    let idempotency = idempotency_of(&caller, &headers, &method, &uri, &body.raw)?;
    let context = WriteContext {
        client: &caller.0,
        traceparent: &traceparent_of(&headers),
        idempotency: idempotency.as_ref(),
        success_status: StatusCode::OK.as_u16(),
    };
    let outcome = state.store.transition(&order_id, payload, context).await?;
    Ok(respond(&state, outcome, StatusCode::OK))
}

/// Pay an order (it must be `created`; the amount must equal its total).
#[utoipa::path(
    post,
    path = "/orders/{id}/pay",
    tag = "orders",
    params(
        ("id" = String, Path, description = "The order id, as returned when it was placed; an order placed by another client is not found (404)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the write safe to retry: 1 to 255 printable ASCII characters (a UUID). A key belongs to the authenticated client: another client's use of the same key is a key of its own. The same key with the same body within 24 h answers the stored response (with `Idempotent-Replayed: true`) without a second change; with another body it is 422; while the first request is in progress it is 409.", min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]([\x20-\x7E]{0,253}[\x21-\x7E])?$"),
    ),
    request_body(content = PayRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The order is paid", body = Written, headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same Idempotency-Key"))),
        UnknownOrder,
        WriteAnswers,
        GuardAnswers,
    )
)]
async fn pay_order(
    state: State<ApiState>,
    caller: Extension<Caller>,
    order_id: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<PayRequest>,
) -> Result<Response, ApiError> {
    transition(state, caller, order_id, method, uri, headers, body).await
}

/// Ship an order (it must be `paid`).
#[utoipa::path(
    post,
    path = "/orders/{id}/ship",
    tag = "orders",
    params(
        ("id" = String, Path, description = "The order id, as returned when it was placed; an order placed by another client is not found (404)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the write safe to retry: 1 to 255 printable ASCII characters (a UUID). A key belongs to the authenticated client: another client's use of the same key is a key of its own. The same key with the same body within 24 h answers the stored response (with `Idempotent-Replayed: true`) without a second change; with another body it is 422; while the first request is in progress it is 409.", min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]([\x20-\x7E]{0,253}[\x21-\x7E])?$"),
    ),
    request_body(content = ShipRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The order is shipped", body = Written, headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same Idempotency-Key"))),
        UnknownOrder,
        WriteAnswers,
        GuardAnswers,
    )
)]
async fn ship_order(
    state: State<ApiState>,
    caller: Extension<Caller>,
    order_id: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<ShipRequest>,
) -> Result<Response, ApiError> {
    transition(state, caller, order_id, method, uri, headers, body).await
}

/// Cancel an order (it must be `created` or `paid`).
#[utoipa::path(
    post,
    path = "/orders/{id}/cancel",
    tag = "orders",
    params(
        ("id" = String, Path, description = "The order id, as returned when it was placed; an order placed by another client is not found (404)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the write safe to retry: 1 to 255 printable ASCII characters (a UUID). A key belongs to the authenticated client: another client's use of the same key is a key of its own. The same key with the same body within 24 h answers the stored response (with `Idempotent-Replayed: true`) without a second change; with another body it is 422; while the first request is in progress it is 409.", min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]([\x20-\x7E]{0,253}[\x21-\x7E])?$"),
    ),
    request_body(content = CancelRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The order is cancelled", body = Written, headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same Idempotency-Key"))),
        UnknownOrder,
        WriteAnswers,
        GuardAnswers,
    )
)]
async fn cancel_order(
    state: State<ApiState>,
    caller: Extension<Caller>,
    order_id: Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: JsonBody<CancelRequest>,
) -> Result<Response, ApiError> {
    transition(state, caller, order_id, method, uri, headers, body).await
}

/// Read an order.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    params(
        ("id" = String, Path, description = "The order id, as returned when it was placed; an order placed by another client is not found (404)"),
    ),
    responses(
        (status = 200, description = "The order", body = Order),
        UnknownOrder,
        GuardAnswers,
    )
)]
async fn get_order(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(order_id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    check_order_id(&order_id)?;
    Ok(Json(state.store.get(&caller.0, &order_id).await?))
}
