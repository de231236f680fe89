//! The order API's OpenAPI document, served at `GET /openapi.json` and written to
//! `docs/openapi.json` by `order-producer openapi`.
//!
//! The document and the router are built from the same list of routes
//! ([`order_api::routes`](super::order_api::routes) and this module's own): each handler's `#[utoipa::path]`
//! gives its method, path, parameters, body and answers, so a route cannot be served
//! without being described.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Schema, Type};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::order_service::http::answers::MethodNotAllowed;
use crate::order_service::http::api_error::ApiError;
use crate::order_service::http::order_api;

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
            `Authorization: Bearer <token>` (401 otherwise). Each token names its client, \
            and the API is scoped to it: an order belongs to the client that placed it \
            (any other client gets 404 for it, on reads and on changes), and an \
            `Idempotency-Key` is the client's own (two clients may send the same key \
            independently). Without tokens every request is the client `default`, which \
            also owns the orders placed before clients were told apart. Rate limits are \
            per client (429 with Retry-After). Errors are JSON `{\"error\", \"field\"}`.",
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
                        "A token from --api-tokens-file or ORDERFLOW_API_TOKENS (`name:token`); \
                         it names the client whose orders and idempotency keys the request \
                         reaches; required only when the service has tokens",
                    ))
                    .build(),
            ),
        );
    }
}

/// What the request limits call text: at least one character that is not white space
/// (Rust's `char::is_whitespace`, spelt out because a regex `\s` differs from it) and no
/// NUL, which PostgreSQL text cannot store.
pub const TEXT_PATTERN: &str = r"^[^\u0000]*[^\u0000\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$";

/// Gives every text field of a request body without a pattern of its own
/// [`TEXT_PATTERN`], so the document refuses what the limits refuse.
struct TextRules;

impl Modify for TextRules {
    fn modify(&self, document: &mut Document) {
        let Some(components) = document.components.as_mut() else {
            return;
        };
        let requests = components
            .schemas
            .iter_mut()
            .filter(|(name, _)| name.ends_with("Request"));
        for (_, schema) in requests {
            let RefOr::T(Schema::Object(object)) = schema else {
                continue;
            };
            for property in object.properties.values_mut() {
                if let RefOr::T(Schema::Object(field)) = property
                    && field.schema_type == Type::String.into()
                    && field.pattern.is_none()
                {
                    field.pattern = Some(TEXT_PATTERN.to_string());
                }
            }
        }
    }
}

/// Routes open to every caller without limits: the document itself.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> OpenApiRouter<S> {
    OpenApiRouter::new().routes(routes!(serve_document))
}

/// The document.
pub fn document() -> Document {
    let (_, orders) = order_api::routes().split_for_parts();
    let (_, open) = routes::<()>().split_for_parts();
    let mut document = ApiDoc::openapi();
    document.merge(orders);
    document.merge(open);
    TextRules.modify(&mut document);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order_service::http::api_error::parse_json;
    use crate::order_service::http::requests::{
        CancelRequest, CreateOrderRequest, PayRequest, ShipRequest,
    };
    use axum::http::StatusCode;
    use orderflow_schemas::{OrderEvent, OrderPayload};
    use serde_json::{Value, json};

    fn field(document: &Value, schema: &str, name: &str) -> Value {
        document["components"]["schemas"][schema]["properties"][name].clone()
    }

    /// The API's answer to a body, as the write handlers compute it before the database.
    fn answer(payload: Result<OrderPayload, ApiError>) -> StatusCode {
        let event = match payload {
            Ok(payload) => OrderEvent::new("ord-1", "test", payload),
            Err(error) => return error.status,
        };
        event
            .validate()
            .map_or_else(|e| ApiError::from(e).status, |()| StatusCode::OK)
    }

    /// Schemathesis (ST202, "schema-valid request rejected") sent these exact bodies: the
    /// document allowed them and the API answered 422. The document now states the limits.
    #[test]
    fn bodies_the_api_refuses_are_outside_the_document() {
        let document: Value = serde_json::from_str(&document_json()).unwrap();
        let text = json!(TEXT_PATTERN);

        let body = br#"{"currency": "", "customer_id": "", "items": []}"#;
        let created = parse_json::<CreateOrderRequest>(body).unwrap();
        let status = answer(created.into_created().map(OrderPayload::Created));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let customer_id = field(&document, "CreateOrderRequest", "customer_id");
        assert_eq!(customer_id["minLength"], 1);
        assert_eq!(customer_id["pattern"], text);
        let currency = field(&document, "CreateOrderRequest", "currency");
        assert_eq!(currency["pattern"], "^[A-Z]{3}$");
        assert_eq!(
            field(&document, "CreateOrderRequest", "items")["minItems"],
            1
        );

        let body = br#"{"amount_cents": 0, "payment_id": ""}"#;
        let status = answer(parse_json::<PayRequest>(body).unwrap().into_payload());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            field(&document, "PayRequest", "payment_id")["pattern"],
            text
        );
        assert_eq!(field(&document, "PayRequest", "amount_cents")["minimum"], 1);

        let body = br#"{"carrier": "", "tracking_number": ""}"#;
        let status = answer(parse_json::<ShipRequest>(body).unwrap().into_payload());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field(&document, "ShipRequest", "carrier")["pattern"], text);
        assert_eq!(
            field(&document, "ShipRequest", "tracking_number")["pattern"],
            text
        );

        let body = br#"{"reason": ""}"#;
        let status = answer(parse_json::<CancelRequest>(body).unwrap().into_payload());
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(field(&document, "CancelRequest", "reason")["pattern"], text);
        assert_eq!(
            field(&document, "CancelRequest", "reason")["maxLength"],
            500
        );
        let sku = field(&document, "LineItemRequest", "sku");
        assert_eq!((&sku["maxLength"], &sku["pattern"]), (&json!(64), &text));

        // A key the document allowed was answered 400 (Schemathesis filtered the key it
        // sent): the header now has the server's rule, 1 to 255 printable ASCII
        // characters, without the spaces HTTP strips from either end.
        for path in [
            "/orders",
            "/orders/{id}/pay",
            "/orders/{id}/ship",
            "/orders/{id}/cancel",
        ] {
            let parameters = document["paths"][path]["post"]["parameters"]
                .as_array()
                .unwrap();
            let key = parameters
                .iter()
                .find(|p| p["name"] == "Idempotency-Key")
                .unwrap();
            assert_eq!(key["schema"]["maxLength"], 255, "{path}");
            assert!(key["schema"]["pattern"].is_string(), "{path}");
        }
    }
}
