//! `orderflow lag serve`: polls in the background on an interval, so a scrape or a page
//! load never waits on Kafka, and serves metrics, the JSON API and the dashboard.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orderflow_runtime::ops_server::{OpsServer, Readiness};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::LagEngine;
use crate::error::{LagError, Result};
pub use crate::state::{CONCURRENT_DLQ_READS, SharedState};

/// Settings of the exporter.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address of the HTTP server.
    pub listen: SocketAddr,
    /// Time between the starts of two poll cycles.
    pub interval: Duration,
    /// How much history the dashboard's charts keep.
    pub history: Duration,
}

/// Failed polls in a row after which the exporter stops being ready: its figures are
/// stale and whatever routes on readiness should know.
pub const UNREADY_AFTER_FAILED_POLLS: u32 = 3;

/// A running exporter.
pub struct Running {
    /// Address the HTTP server is bound to.
    pub addr: SocketAddr,
    /// State shared with the handlers.
    pub state: Arc<SharedState>,
    /// Ends when the token is cancelled: the HTTP server and the poller.
    pub tasks: Vec<JoinHandle<()>>,
}

/// Binds the server and starts the poller; returns once both run.
pub async fn start(
    engine: LagEngine,
    config: ServeConfig,
    token: CancellationToken,
) -> Result<Running> {
    engine.config().validate(config.interval)?;
    let state = Arc::new(
        SharedState::new(config.interval, config.history)
            .with_kafka(engine.client_config().clone()),
    );
    let readiness = Readiness::default();
    let (addr, server) = OpsServer::new(config.listen, state.metrics().registry().clone())
        .with_readiness(readiness.clone())
        .with_routes(crate::web::router(state.clone()))
        .spawn(token.clone())
        .await
        .map_err(LagError::Server)?;
    let poller = tokio::spawn(poll_loop(
        engine,
        state.clone(),
        readiness,
        config.interval,
        token,
    ));
    tracing::info!(address = %addr, interval = ?config.interval, "lag exporter and dashboard running");
    Ok(Running {
        addr,
        state,
        tasks: vec![server, poller],
    })
}

/// Runs the exporter until `token` is cancelled.
pub async fn run(engine: LagEngine, config: ServeConfig, token: CancellationToken) -> Result<()> {
    let running = start(engine, config, token).await?;
    for task in running.tasks {
        task.await.map_err(|e| LagError::Task(e.to_string()))?;
    }
    Ok(())
}

async fn poll_loop(
    mut engine: LagEngine,
    state: Arc<SharedState>,
    readiness: Readiness,
    interval: Duration,
    token: CancellationToken,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let polled = tokio::select! {
            _ = token.cancelled() => return,
            polled = engine.poll() => polled,
        };
        match polled {
            Ok(snapshot) => {
                for warning in &snapshot.warnings {
                    tracing::debug!(%warning, "lag poll warning");
                }
                state.publish(snapshot);
                readiness.set_ready(true);
            }
            Err(err) => {
                let failed = state.fail(&err);
                tracing::warn!(error = %err, retryable = err.is_retryable(), failed, "lag poll failed; serving the previous figures, marked stale");
                if failed >= UNREADY_AFTER_FAILED_POLLS {
                    readiness.set_ready(false);
                }
            }
        }
    }
}
