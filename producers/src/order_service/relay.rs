//! The outbox relay: publishes unsent outbox rows and marks them sent once the broker
//! acknowledged them.
//!
//! One round: in a transaction, lock a batch of publishable rows (`FOR UPDATE SKIP
//! LOCKED`), hand them all to the idempotent producer in id order, wait for every
//! delivery report, mark the acknowledged rows sent and the failed ones attempted, commit.
//!
//! Order per order id: a batch holds only the *oldest* unsent row of each order (see
//! `sql/claim_outbox_batch.sql`), so an order's next event is published only after the
//! previous one was acknowledged and marked sent. A failed delivery therefore never lets a
//! later event of the same order overtake it, and several relays on one database stay
//! correct without a leader (a row another relay has locked is skipped, and the rows
//! behind it are not eligible while it is unsent). The price: an order's consecutive
//! events leave one round apart (a round is a few milliseconds when the outbox is busy).
//!
//! Delivery is at least once: a crash between the broker's ack and the commit publishes
//! the rows again; consumers deduplicate on `event_id`.

use std::sync::Arc;
use std::time::Duration;

use orderflow_runtime::backoff::Backoff;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::generate::record_headers;
use crate::metrics::OrderServiceMetrics;
use crate::order_service::outbox::{self, OutboxRow};

/// How long to wait before retrying a send when librdkafka's local queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(2);

/// Backoff after a round with failed deliveries or a database error.
pub const RELAY_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(30),
    multiplier: 2.0,
};

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Topic to publish to.
    pub topic: String,
    /// Most rows per round.
    pub batch_size: u32,
    /// Sleep when the outbox is empty and nothing wakes the relay.
    pub poll_interval: Duration,
    /// Delay between rounds after a failure.
    pub backoff: Backoff,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    /// Rows acknowledged and marked sent.
    pub published: usize,
    /// Rows whose delivery failed (they stay unsent).
    pub failed: usize,
    /// The first delivery error of the round.
    pub first_error: Option<String>,
}

/// The relay task's parts.
pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    config: RelayConfig,
    metrics: OrderServiceMetrics,
    wake: Arc<Notify>,
}

impl Relay {
    /// A relay publishing from `pool`'s outbox with `producer`; `wake` cuts the poll sleep short.
    pub fn new(
        pool: PgPool,
        producer: FutureProducer,
        config: RelayConfig,
        metrics: OrderServiceMetrics,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            producer,
            config,
            metrics,
            wake,
        }
    }

    /// Runs rounds until `token` is cancelled. A round in progress is finished first
    /// (its delivery reports awaited and recorded), so a clean stop loses nothing.
    pub async fn run(self, token: CancellationToken) {
        tracing::info!(topic = %self.config.topic, batch_size = self.config.batch_size, "outbox relay started");
        let mut failed_rounds: u32 = 0;
        while !token.is_cancelled() {
            let pause = match self.round().await {
                Ok(outcome) if outcome.failed > 0 => {
                    failed_rounds = failed_rounds.saturating_add(1);
                    let delay = self.config.backoff.delay(failed_rounds);
                    tracing::warn!(
                        failed = outcome.failed,
                        published = outcome.published,
                        error = outcome.first_error.as_deref().unwrap_or("unknown"),
                        retry_in = ?delay,
                        "outbox deliveries failed; the rows stay unsent and are retried"
                    );
                    Some(delay)
                }
                Ok(outcome) => {
                    if failed_rounds > 0 {
                        tracing::info!("outbox deliveries succeed again");
                    }
                    failed_rounds = 0;
                    // Publishing made the next event of those orders eligible: look again at once.
                    (outcome.published == 0).then_some(self.config.poll_interval)
                }
                Err(error) => {
                    failed_rounds = failed_rounds.saturating_add(1);
                    let delay = self.config.backoff.delay(failed_rounds);
                    tracing::warn!(%error, retry_in = ?delay, "outbox relay round failed on the database");
                    Some(delay)
                }
            };
            self.refresh_pending().await;
            if let Some(pause) = pause {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = self.wake.notified(), if failed_rounds == 0 => {}
                    () = token.cancelled() => {}
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    async fn refresh_pending(&self) {
        match outbox::count_pending(&self.pool).await {
            Ok(pending) => self.metrics.outbox_pending.set(pending),
            Err(error) => tracing::debug!(%error, "cannot count pending outbox rows"),
        }
    }

    /// One round: claim, publish, await the reports, mark, commit.
    pub async fn round(&self) -> sqlx::Result<RoundOutcome> {
        let mut tx = self.pool.begin().await?;
        let rows = outbox::claim_batch(&mut tx, self.config.batch_size).await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(RoundOutcome::default());
        }
        let mut pending = Vec::with_capacity(rows.len());
        for row in &rows {
            pending.push((row.id, self.send(row).await));
        }
        let mut sent = Vec::with_capacity(rows.len());
        let mut failed = Vec::new();
        let mut first_error = None;
        for (id, delivery) in pending {
            let result = match delivery {
                Ok(future) => match future.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((error, _))) => Err(error.to_string()),
                    Err(_) => Err("the producer dropped the delivery report".to_string()),
                },
                Err(error) => Err(error.to_string()),
            };
            match result {
                Ok(()) => sent.push(id),
                Err(error) => {
                    failed.push(id);
                    first_error.get_or_insert(error);
                }
            }
        }
        outbox::mark_sent(&mut tx, &sent).await?;
        if let Some(error) = &first_error {
            outbox::mark_failed(&mut tx, &failed, error).await?;
        }
        tx.commit().await?;
        self.metrics.outbox_published.inc_by(sent.len() as u64);
        self.metrics
            .outbox_publish_failures
            .inc_by(failed.len() as u64);
        Ok(RoundOutcome {
            published: sent.len(),
            failed: failed.len(),
            first_error,
        })
    }

    /// Hands `row` to the client, waiting while its local queue is full.
    async fn send(&self, row: &OutboxRow) -> Result<DeliveryFuture, KafkaError> {
        loop {
            let record = FutureRecord::to(&self.config.topic)
                .key(row.order_id.as_str())
                .payload(row.payload.as_slice())
                .headers(record_headers(&row.traceparent, &row.event_type));
            match self.producer.send_result(record) {
                Ok(future) => return Ok(future),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                }
                Err((error, _)) => return Err(error),
            }
        }
    }
}
