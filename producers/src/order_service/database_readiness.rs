//! The API's readiness: it can take writes while its database answers, whatever Kafka
//! does (the relay's health is apart, see [`relay_health`](super::relay_health)).

use std::time::Duration;

use orderflow_runtime::ops_server::Readiness;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// How often the database is asked.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe may take before the database counts as unavailable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets `readiness` from a `SELECT 1` on `pool` every [`PROBE_INTERVAL`] until `token`
/// is cancelled; logs each change.
pub(crate) async fn run(pool: PgPool, readiness: Readiness, token: CancellationToken) {
    loop {
        let probe = tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&pool));
        let ready = matches!(probe.await, Ok(Ok(_)));
        if ready != readiness.is_ready() {
            if ready {
                tracing::info!("order database answers again; ready");
            } else {
                tracing::error!("order database does not answer; not ready");
            }
            readiness.set_ready(ready);
        }
        tokio::select! {
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
            () = token.cancelled() => return,
        }
    }
}
