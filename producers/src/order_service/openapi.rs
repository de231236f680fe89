//! The order API's OpenAPI document, served at `GET /openapi.json` and written to
//! `docs/openapi.json` by `order-producer openapi`.
//!
//! The document and the router are built from the same list of routes
//! ([`order_api::routes`](super::order_api::routes)): each handler's `#[utoipa::path]`
//! gives its method, path, parameters, body and answers, so a route cannot be served
//! without being described.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, OpenApi as Document, RefOr, Schema, Type};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::order_service::api_error::ApiError;
use crate::order_service::order_api;

/// Name of the bearer-token security scheme.
pub const BEARER_SCHEME: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow order service",
        description = "Places orders and moves them through their lifecycle \
            (created -> paid -> shipped, created | paid -> cancelled). Every change is \
            written with its event to a transactional outbox and published to Kafka.\n\n\
            Authentication: when the service has API tokens, every /orders request needs \
            `Authorization: Bearer <token>` (401 otherwise). Rate limits are per client \
            (429 with Retry-After). Errors are JSON `{\"error\", \"field\"}`.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ApiError)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags((name = "orders", description = "Orders and their lifecycle"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from --api-tokens-file or ORDERFLOW_API_TOKENS; \
                         required only when the service has tokens",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document.
pub fn document() -> Document {
    let (_, described) = order_api::routes().split_for_parts();
    let mut document = ApiDoc::openapi();
    document.merge(described);
    document
}

/// The document as pretty-printed JSON, with a final newline.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(document_json);

/// This document, as JSON.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI document of this API", content_type = "application/json", body = Object),
        MethodNotAllowed,
    )
)]
pub async fn serve_document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT_JSON.as_str(),
    )
}

/// The schema of an order's `status`.
pub fn order_status_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["created", "paid", "shipped", "cancelled"]))
        .description(Some("Where the order is in its lifecycle"))
}

/// Another method on the path.
#[derive(IntoResponses)]
#[response(status = 405, description = "The path exists, with other methods")]
pub struct MethodNotAllowed(pub ApiError);

/// Answers every `/orders` route may give.
#[derive(IntoResponses)]
pub enum GuardAnswers {
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
#[derive(IntoResponses)]
pub enum WriteAnswers {
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

/// No order has this id.
#[derive(IntoResponses)]
#[response(status = 404, description = "No order has this id")]
pub struct UnknownOrder(pub ApiError);
