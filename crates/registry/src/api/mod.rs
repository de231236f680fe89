//! The Confluent Schema Registry REST API subset real clients use.

mod compatibility;
mod config;
mod schemas;
mod subjects;
mod wire;

use axum::Router;
use axum::routing::{get, post};

pub use wire::CONTENT_TYPE_V1;

use crate::schema_registry::SchemaRegistry;

/// The API routes, served by [`crate::server`] next to `/metrics`, `/healthz`, `/readyz`.
pub fn router(registry: SchemaRegistry) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { wire::ConfluentJson(serde_json::json!({})) }),
        )
        .route("/schemas/types", get(schemas::types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions_of_id))
        .route("/subjects", get(subjects::list))
        .route(
            "/subjects/{subject}",
            post(subjects::lookup).delete(subjects::delete),
        )
        .route(
            "/subjects/{subject}/versions",
            get(subjects::versions).post(subjects::register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subjects::version),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility::against_level),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility::against_version),
        )
        .route("/config", get(config::get_global).put(config::put_global))
        .route(
            "/config/{subject}",
            get(config::get_subject)
                .put(config::put_subject)
                .delete(config::delete_subject),
        )
        .fallback(not_found)
        .with_state(registry)
}

async fn not_found(uri: axum::http::Uri) -> crate::error::RegistryError {
    crate::error::RegistryError::BadRequest {
        status: axum::http::StatusCode::NOT_FOUND,
        message: format!("HTTP 404 Not Found: {}", uri.path()),
    }
}
