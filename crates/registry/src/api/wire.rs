//! Confluent's wire conventions: accepted request content types, the response content
//! type, and the `{"error_code", "message"}` error body.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::RegistryError;

/// Content type of every response, as Confluent's registry sends it.
pub const CONTENT_TYPE_V1: &str = "application/vnd.schemaregistry.v1+json";

/// A JSON response with Confluent's content type.
#[derive(Debug)]
pub struct ConfluentJson<T>(pub T);

impl<T: Serialize> IntoResponse for ConfluentJson<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(err) => RegistryError::BadRequest {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("cannot encode the response: {err}"),
            }
            .into_response(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: u32,
    message: &'a str,
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "registry request failed");
        }
        let message = self.to_string();
        let body = ErrorBody {
            error_code: self.error_code(),
            message: &message,
        };
        // Serialising two plain fields cannot fail.
        json_response(status, serde_json::to_vec(&body).unwrap_or_default())
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_V1),
    );
    response
}

/// A JSON request body, accepted under the content types Confluent's registry accepts:
/// `application/vnd.schemaregistry.v1+json`, `application/vnd.schemaregistry+json`,
/// `application/json` and `application/octet-stream` (or none at all).
#[derive(Debug)]
pub struct ConfluentBody<T>(pub T);

impl<S, T> FromRequest<S> for ConfluentBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = RegistryError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(kind) = request.headers().get(header::CONTENT_TYPE) {
            let kind = kind.to_str().unwrap_or_default();
            if !accepted_content_type(kind) {
                return Err(RegistryError::BadRequest {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    message: format!(
                        "Content-Type '{kind}' is not supported; send \
                         {CONTENT_TYPE_V1}, application/json or application/octet-stream"
                    ),
                });
            }
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| RegistryError::BadRequest {
                status: rejection.status(),
                message: rejection.body_text(),
            })?;
        serde_json::from_slice(&bytes)
            .map(ConfluentBody)
            .map_err(|err| {
                // Malformed JSON is a 400; well-formed JSON with a missing or mistyped
                // field is a 422 whose message names the field.
                let status = if err.is_syntax() || err.is_eof() {
                    StatusCode::BAD_REQUEST
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                RegistryError::BadRequest {
                    status,
                    message: format!("invalid request body: {err}"),
                }
            })
    }
}

fn accepted_content_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/vnd.schemaregistry.v1+json"
            | "application/vnd.schemaregistry+json"
            | "application/json"
            | "application/octet-stream"
    )
}

#[cfg(test)]
mod tests {
    use super::accepted_content_type;

    #[test]
    fn accepts_the_content_types_confluent_accepts() {
        for ok in [
            "application/vnd.schemaregistry.v1+json",
            "application/vnd.schemaregistry+json",
            "application/json; charset=utf-8",
            "Application/Octet-Stream",
        ] {
            assert!(accepted_content_type(ok), "{ok}");
        }
        for bad in ["text/plain", "application/x-www-form-urlencoded", ""] {
            assert!(!accepted_content_type(bad), "{bad}");
        }
    }
}
