//! The operations HTTP endpoint of every long-running binary: `/metrics` (Prometheus
//! text format), `/healthz` (the process is alive) and `/readyz` (it is doing its job).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// Flags for the operations endpoint.
#[derive(Debug, Clone, clap::Args)]
pub struct OpsArgs {
    /// Address of the /metrics, /healthz and /readyz endpoint; empty disables it.
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:9100")]
    pub metrics_addr: String,
}

impl OpsArgs {
    /// The parsed address, or `None` when disabled.
    pub fn address(&self) -> Result<Option<SocketAddr>> {
        if self.metrics_addr.trim().is_empty() {
            return Ok(None);
        }
        self.metrics_addr.parse().map(Some).map_err(|_| {
            Error::Config(format!(
                "--metrics-addr {:?} is not host:port",
                self.metrics_addr
            ))
        })
    }
}

/// Readiness flag shared between the worker (which sets it) and `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the process ready (or not) to do its job.
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Whether the process said it is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    readiness: Readiness,
}

/// Builder of the operations server.
pub struct OpsServer {
    addr: SocketAddr,
    registry: Registry,
    readiness: Readiness,
    extra: Router,
}

impl OpsServer {
    /// A server on `addr` exporting `registry`.
    pub fn new(addr: SocketAddr, registry: Registry) -> Self {
        Self {
            addr,
            registry,
            readiness: Readiness::default(),
            extra: Router::new(),
        }
    }

    /// Uses `readiness` for `/readyz` (by default the server is never ready).
    pub fn with_readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// Adds routes (a dashboard, an API) next to the operations endpoints.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra = self.extra.merge(routes);
        self
    }

    /// The router, for embedding or for tests without a socket.
    pub fn router(&self) -> Router {
        let state = OpsState {
            registry: self.registry.clone(),
            readiness: self.readiness.clone(),
        };
        Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(ready))
            .with_state(state)
            .merge(self.extra.clone())
    }

    /// Binds the address and serves until `token` is cancelled. Binding errors are
    /// returned here, so a port already in use fails start-up with a clear line.
    pub async fn spawn(self, token: CancellationToken) -> Result<(SocketAddr, JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|source| Error::Http {
                address: self.addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Error::Http {
            address: self.addr.to_string(),
            source,
        })?;
        let app = self.router();
        let handle = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
            if let Err(err) = served {
                tracing::error!(error = %err, "operations HTTP server stopped");
            }
        });
        tracing::info!(address = %local, "serving /metrics, /healthz, /readyz");
        Ok((local, handle))
    }
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            body,
        )
            .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn ready(State(state): State<OpsState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("orderflow_test_total", "test counter").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);
        let readiness = Readiness::default();
        let token = CancellationToken::new();
        let (addr, handle) = OpsServer::new("127.0.0.1:0".parse().unwrap(), registry)
            .with_readiness(readiness.clone())
            .spawn(token.clone())
            .await
            .unwrap();

        assert!(
            get(addr, "/metrics")
                .await
                .contains("orderflow_test_total 3")
        );
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
        readiness.set_ready(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));

        token.cancel();
        handle.await.unwrap();
    }

    #[test]
    fn empty_address_disables_the_server() {
        let args = OpsArgs {
            metrics_addr: String::new(),
        };
        assert_eq!(args.address().unwrap(), None);
        let bad = OpsArgs {
            metrics_addr: "nope".into(),
        };
        assert!(bad.address().unwrap_err().to_string().contains("nope"));
    }
}
