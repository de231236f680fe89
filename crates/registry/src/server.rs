//! Starting the registry: migrations, then the API served next to `/metrics`,
//! `/healthz` and `/readyz` (the runtime's operations server) on one address.

use std::net::SocketAddr;

use orderflow_runtime::ops_server::{OpsServer, Readiness};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api;
use crate::error::Result;
use crate::metrics::RegistryMetrics;
use crate::schema_registry::SchemaRegistry;
use crate::store;

/// A registry serving requests until its token is cancelled.
#[derive(Debug)]
pub struct RunningRegistry {
    address: SocketAddr,
    handle: JoinHandle<()>,
}

impl RunningRegistry {
    /// The address the server is bound to (useful when started on port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Waits until the server has stopped (after the token was cancelled and in-flight
    /// requests finished).
    pub async fn stopped(self) {
        if let Err(err) = self.handle.await {
            tracing::error!(error = %err, "registry server task failed");
        }
    }
}

/// Applies the migrations to `pool`, then serves the registry on `listen` until `token`
/// is cancelled. Fails if the migrations fail or the address cannot be bound.
pub async fn start(
    pool: PgPool,
    listen: SocketAddr,
    token: CancellationToken,
) -> Result<RunningRegistry> {
    store::migrate(&pool).await?;
    let metrics_registry = prometheus::Registry::new();
    let metrics = RegistryMetrics::new(&metrics_registry)?;
    let registry = SchemaRegistry::new(pool, metrics);
    let readiness = Readiness::default();
    let (address, handle) = OpsServer::new(listen, metrics_registry)
        .with_readiness(readiness.clone())
        .with_routes(api::router(registry))
        .spawn(token)
        .await?;
    readiness.set_ready(true);
    tracing::info!(%address, "schema registry listening");
    Ok(RunningRegistry { address, handle })
}
