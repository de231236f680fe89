//! Errors of the order API as HTTP responses: a status and a JSON body
//! `{"error": "...", "field": "items[0].quantity"}` naming the field at fault, and the
//! JSON body extractor that produces them for malformed or mistyped input.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderflow_schemas::ValidationError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::order_service::store::idempotency::KeyError;
use crate::order_service::store::order_store::StoreError;

/// The `field` of errors about the `Idempotency-Key` header.
pub const IDEMPOTENCY_KEY_FIELD: &str = "Idempotency-Key";

/// An API error, the JSON body of every 4xx and 5xx answer: what is wrong and, when
/// one field is at fault, which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// What is wrong, for people.
    pub error: String,
    /// The request field at fault (`items[0].quantity`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// An error with `status`, `message` and the `field` at fault.
    pub fn new(status: StatusCode, message: impl Into<String>, field: Option<String>) -> Self {
        Self {
            status,
            error: message.into(),
            field,
        }
    }

    /// 422: the value of `field` breaks a rule.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            message,
            Some(field.into()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

impl From<ValidationError> for ApiError {
    /// Maps an event rule breach to the request field it came from (the event's
    /// `payload.` prefix is dropped: request fields are the payload's fields).
    fn from(error: ValidationError) -> Self {
        let field = match &error {
            ValidationError::EmptyField { field } => {
                field.strip_prefix("payload.").unwrap_or(field).to_string()
            }
            ValidationError::NoLineItems | ValidationError::TotalOverflow => "items".into(),
            ValidationError::NonPositiveQuantity { index, .. } => {
                format!("items[{index}].quantity")
            }
            ValidationError::NegativeUnitPrice { index, .. } => {
                format!("items[{index}].unit_price_cents")
            }
            ValidationError::TotalMismatch { .. } => "items".into(),
            ValidationError::InvalidCurrency { .. } => "currency".into(),
            ValidationError::NonPositiveAmount { .. } => "amount_cents".into(),
            ValidationError::NilEventId => "event_id".into(),
        };
        let message = error.to_string();
        let message = message
            .strip_prefix("payload.")
            .unwrap_or(&message)
            .to_string();
        Self::invalid(field, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, error.to_string(), None),
            StoreError::TransitionNotAllowed { .. } => Self::new(
                StatusCode::CONFLICT,
                error.to_string(),
                Some("status".into()),
            ),
            StoreError::AmountMismatch { .. } => Self::invalid("amount_cents", error.to_string()),
            StoreError::IdempotencyKeyInProgress => Self::new(
                StatusCode::CONFLICT,
                error.to_string(),
                Some(IDEMPOTENCY_KEY_FIELD.into()),
            ),
            StoreError::IdempotencyKeyReused => {
                Self::invalid(IDEMPOTENCY_KEY_FIELD, error.to_string())
            }
            StoreError::Invalid(invalid) => Self::from(invalid.clone()),
            StoreError::EventTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                error.to_string(),
                Some("body".into()),
            ),
            StoreError::Database(cause) => Self::from_database(cause),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            error.to_string(),
            Some(IDEMPOTENCY_KEY_FIELD.into()),
        )
    }
}

impl ApiError {
    /// 503 only for a real outage (retrying may help); a value the database cannot take
    /// is the client's 400; anything else is a bug of ours, 500.
    fn from_database(cause: &sqlx::Error) -> Self {
        match database_failure(cause) {
            DatabaseFailure::Outage => {
                tracing::warn!(error = %cause, "order API request failed on the database");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the order database is unavailable; retry later",
                    None,
                )
            }
            DatabaseFailure::BadValue => Self::new(
                StatusCode::BAD_REQUEST,
                "a value of the request cannot be stored",
                None,
            ),
            DatabaseFailure::Bug => {
                tracing::error!(error = %cause, "order API request failed on an unexpected database error");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
            }
        }
    }
}

/// What a database error means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DatabaseFailure {
    /// Unreachable, overloaded, shutting down, or a transaction conflict: retry later.
    Outage,
    /// The data itself was refused (SQLSTATE class 22, data exception).
    BadValue,
    /// Anything else: not the client's fault, and retrying will not help.
    Bug,
}

fn database_failure(error: &sqlx::Error) -> DatabaseFailure {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // 08 connection, 40 serialization failure/deadlock, 53 resources, 57 operator
            // intervention (shutdown), 58 system error, 55P03 lock not available.
            if ["08", "40", "53", "57", "58"]
                .iter()
                .any(|class| code.starts_with(class))
                || code == "55P03"
            {
                DatabaseFailure::Outage
            } else if code.starts_with("22") {
                DatabaseFailure::BadValue
            } else {
                DatabaseFailure::Bug
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => DatabaseFailure::Outage,
        _ => DatabaseFailure::Bug,
    }
}

/// A JSON request body. Unlike `axum::Json`, its errors name the field: malformed JSON
/// is 400, a missing field or a value of the wrong type is 422 with the field's path.
/// The raw bytes are kept for the idempotency fingerprint.
#[derive(Debug, Clone)]
pub struct JsonBody<T> {
    /// The parsed body.
    pub value: T,
    /// The body as received.
    pub raw: Bytes,
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON, sent with Content-Type: application/json",
                Some("Content-Type".into()),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError::new(
                    rejection.status(),
                    rejection.body_text(),
                    Some("body".into()),
                )
            })?;
        let value = parse_json(&bytes)?;
        Ok(JsonBody { value, raw: bytes })
    }
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`,
/// with any parameters such as a charset).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as `T`, naming the field at fault on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|trailing| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("malformed JSON: {trailing}"),
                    None,
                )
            })?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("malformed JSON: {inner}"),
                    None,
                ));
            }
            let message = inner.to_string();
            Err(ApiError::invalid(field_of(&path, &message), message))
        }
    }
}

/// The field path of a data error: serde's path (which ends at an unknown field), plus
/// the missing field's name (serde reports a missing field at its parent).
fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        Some(missing) if parent.is_empty() => missing.to_string(),
        Some(missing) => format!("{parent}.{missing}"),
        None if parent.is_empty() => "body".to_string(),
        None => parent.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: i32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        items: Vec<Line>,
    }

    #[test]
    fn only_outages_are_503() {
        for outage in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed] {
            assert_eq!(
                ApiError::from(StoreError::Database(outage)).status,
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
        assert_eq!(
            ApiError::from(StoreError::Database(sqlx::Error::RowNotFound)).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn errors_name_the_field() {
        let malformed = parse_json::<Body>(b"{\"items\": [").unwrap_err();
        assert_eq!(malformed.status, StatusCode::BAD_REQUEST);

        let wrong_type =
            parse_json::<Body>(br#"{"items": [{"sku": "a", "quantity": "two"}]}"#).unwrap_err();
        assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(wrong_type.field.as_deref(), Some("items[0].quantity"));

        let missing = parse_json::<Body>(br#"{"items": [{"quantity": 1}]}"#).unwrap_err();
        assert_eq!(
            missing.field.as_deref(),
            Some("items[0].sku"),
            "{missing:?}"
        );

        let missing_top = parse_json::<Body>(b"{}").unwrap_err();
        assert_eq!(missing_top.field.as_deref(), Some("items"));

        let quantity = ApiError::from(ValidationError::NonPositiveQuantity {
            index: 2,
            sku: "x".into(),
            quantity: 0,
        });
        assert_eq!(quantity.field.as_deref(), Some("items[2].quantity"));
        assert!(
            !quantity.error.starts_with("payload."),
            "{}",
            quantity.error
        );
    }
}
