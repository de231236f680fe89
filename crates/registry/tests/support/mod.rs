//! Shared set-up of the registry integration tests: schemas, and a registry started
//! in-process on 127.0.0.1:0 against a fresh PostgreSQL database.

use std::net::SocketAddr;

use orderflow_registry::server::{self, RunningRegistry};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A first version of an order schema.
pub const V1: &str = r#"{"type":"record","name":"Order","namespace":"orderflow",
  "fields":[{"name":"order_id","type":"string"},{"name":"amount_cents","type":"long"}]}"#;

/// V1 with whitespace and key order changed: the same schema.
pub const V1_REFORMATTED: &str = r#"{
  "namespace": "orderflow", "name": "Order", "type": "record",
  "fields": [ {"type": "string", "name": "order_id"},
              {"type": "long",   "name": "amount_cents"} ]
}"#;

/// V1 plus an optional field with a default: BACKWARD compatible.
pub const V2: &str = r#"{"type":"record","name":"Order","namespace":"orderflow",
  "fields":[{"name":"order_id","type":"string"},{"name":"amount_cents","type":"long"},
            {"name":"note","type":["null","string"],"default":null}]}"#;

/// V2 plus a required field: new readers cannot read older data.
pub const V3_REQUIRED_FIELD: &str = r#"{"type":"record","name":"Order","namespace":"orderflow",
  "fields":[{"name":"order_id","type":"string"},{"name":"amount_cents","type":"long"},
            {"name":"note","type":["null","string"],"default":null},
            {"name":"currency","type":"string"}]}"#;

/// A registry serving on a random loopback port, with an HTTP client for it.
pub struct TestRegistry {
    running: RunningRegistry,
    token: CancellationToken,
    http: reqwest::Client,
}

impl TestRegistry {
    pub async fn start() -> Self {
        let (_url, pool) = orderflow_testkit::fresh_database().await;
        let token = CancellationToken::new();
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let running = server::start(pool, listen, token.clone())
            .await
            .expect("start the registry");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            running,
            token,
            http,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.running.address())
    }

    /// Sends `body` (JSON text) with Confluent's content type; returns status, response
    /// content type and the JSON (or `Value::String` of a non-JSON body).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, String, Value) {
        self.call_as(method, path, body, "application/vnd.schemaregistry.v1+json")
            .await
    }

    pub async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        content_type: &str,
    ) -> (StatusCode, String, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url()));
        if let Some(body) = body {
            request = request
                .header("content-type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.expect("request reaches the registry");
        let status = response.status();
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, kind, value)
    }

    pub async fn register(&self, subject: &str, schema: &str) -> (StatusCode, Value) {
        let body = json!({ "schema": schema }).to_string();
        let (status, _, value) = self
            .call(
                Method::POST,
                &format!("/subjects/{subject}/versions"),
                Some(&body),
            )
            .await;
        (status, value)
    }

    pub async fn stop(self) {
        self.token.cancel();
        self.running.stopped().await;
    }
}

pub fn schema_body(schema: &str) -> String {
    json!({ "schema": schema, "schemaType": "AVRO" }).to_string()
}
