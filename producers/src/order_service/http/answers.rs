//! The answers the order API's routes share, as the OpenAPI document describes them:
//! the handlers name them in their `#[utoipa::path]` and the document lists them. They
//! are never built: the answers themselves are [`ApiError`]s.

use utoipa::IntoResponses;

use crate::order_service::http::api_error::ApiError;

/// Another method on the path.
#[expect(dead_code, reason = "only the OpenAPI document reads it")]
#[derive(IntoResponses)]
#[response(status = 405, description = "The path exists, with other methods")]
pub(crate) struct MethodNotAllowed(pub ApiError);

/// Answers every `/orders` route may give.
#[expect(dead_code, reason = "only the OpenAPI document reads it")]
#[derive(IntoResponses)]
pub(crate) enum GuardAnswers {
    /// The service has API tokens and the request sent none, or an unknown one.
    #[response(
        status = 401,
        headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"orderflow\"`"))
    )]
    Unauthorized(ApiError),
    /// The path exists, with other methods.
    #[response(status = 405)]
    MethodNotAllowed(ApiError),
    /// The client sent more requests than its rate limit allows.
    #[response(
        status = 429,
        headers(("Retry-After" = u32, description = "Seconds until a request is accepted again"))
    )]
    TooManyRequests(ApiError),
    /// The database is unavailable, the request took longer than the request timeout,
    /// or the service is at its concurrency limit; retrying later may succeed.
    #[response(
        status = 503,
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying (timeout and concurrency limit)"))
    )]
    Unavailable(ApiError),
}

/// Answers to a write with a JSON body.
#[expect(dead_code, reason = "only the OpenAPI document reads it")]
#[derive(IntoResponses)]
pub(crate) enum WriteAnswers {
    /// Malformed JSON, a malformed `Idempotency-Key`, or text the database cannot store
    /// (a NUL character).
    #[response(status = 400)]
    BadRequest(ApiError),
    /// The order's status does not allow this change, or a request with the same
    /// `Idempotency-Key` is still in progress.
    #[response(status = 409)]
    Conflict(ApiError),
    /// The body is larger than `--max-body-bytes`, or the event would exceed the
    /// largest record the topic accepts.
    #[response(status = 413)]
    PayloadTooLarge(ApiError),
    /// The body is not sent as `Content-Type: application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ApiError),
    /// A field is missing, unknown, of the wrong type or out of bounds (`field` names
    /// it), or the `Idempotency-Key` was used before with another body.
    #[response(status = 422)]
    Unprocessable(ApiError),
}

/// No order of the calling client has this id (another client's order answers the same).
#[expect(dead_code, reason = "only the OpenAPI document reads it")]
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "The calling client has no order with this id: an order placed by another client answers the same, so its existence is not revealed"
)]
pub(crate) struct UnknownOrder(pub ApiError);
