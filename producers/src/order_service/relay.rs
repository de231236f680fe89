//! The outbox relay: publishes unsent outbox rows and marks each one sent as soon as the
//! broker acknowledges it.
//!
//! One round: claim a batch of publishable rows with a lease (one statement that commits
//! at once, see `sql/claim_outbox_batch.sql`), hand them all to the idempotent producer in
//! id order, and record the delivery reports as they arrive: the acknowledged rows are
//! marked sent at once (every report already in is recorded in one statement), the failed
//! ones get their backoff or are parked. A round waits for its reports at most
//! `--relay-round-wait`; the reports still missing then (a slow or leaderless partition)
//! are recorded by a task of their own when they come, while the next rounds publish the
//! other orders. No transaction, lock or pooled connection is held while a record is in
//! flight.
//!
//! Order per order id: a batch holds only the *oldest* unsent row of each order, so an
//! order's next event is published only after the previous one was acknowledged and marked
//! sent. A failed delivery therefore never lets a later event of the same order overtake
//! it, and several relays on one database stay correct without a leader (a row another
//! relay has claimed is skipped until its lease ends, and the rows behind it are not
//! eligible while it is unsent). The lease outlasts the producer's delivery timeout, so a
//! row is never claimed again while its first delivery may still land. The price: an
//! order's consecutive events leave one round apart (a round is a few milliseconds when
//! the outbox is busy).
//!
//! A failed row waits out its own backoff (`next_attempt_at`), holding back only its own
//! order. A row whose delivery fails permanently (a record too large for the topic, an
//! invalid record) is parked after `--relay-max-attempts` attempts: it is never tried
//! again until `orderflow outbox retry` says so, its order's later events stay behind it,
//! and every other order flows on. The relay is unhealthy (`/relayz` answers 503, see
//! [`relay_health`](super::relay_health)) after [`UNHEALTHY_AFTER_FAILED_ROUNDS`] rounds
//! in a row that published nothing because of database or broker failures; the API's
//! `/readyz` follows the database only, so writes go on while Kafka is away. After a fatal error of the idempotent producer the relay
//! builds a new producer.
//!
//! Delivery is at least once: a crash between the broker's ack and its record leaves the
//! row claimed until its lease ends, then publishes it again; consumers deduplicate on
//! `event_id`.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use orderflow_contracts::produce_error::ProduceFailure;
use orderflow_runtime::backoff::Backoff;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::metrics::OrderServiceMetrics;
use crate::order_service::relay_health::RelayHealth;
use crate::publish_span;
use orderflow_contracts::record::record_headers;
use orderflow_outbox::{OutboxRow, queries as outbox};
use orderflow_runtime::telemetry::StoredTraceContext;
use orderflow_runtime::telemetry::span_context;

/// How long to wait before retrying a send when librdkafka's local queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(2);

/// How often the pending and parked gauges are counted: a count of the unsent rows
/// after every round would scan the backlog hundreds of times a second.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// How often the relay promotes orders whose oldest unsent row waits behind nothing
/// (see `orderflow_outbox::queries::sweep_stranded`): such rows come only from hand
/// repairs or older binaries, so seldom is enough.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// Failed rounds in a row after which the relay reports itself unhealthy.
pub const UNHEALTHY_AFTER_FAILED_ROUNDS: u32 = 3;

/// Backoff after a round with failed deliveries or a database error, and of each
/// failed row before its next attempt.
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
    /// Delay between rounds after a failure, and of a failed row before its next attempt.
    pub backoff: Backoff,
    /// Attempts after which a row that fails permanently is parked.
    pub max_attempts: u32,
    /// Longest a round waits for its delivery reports; later ones are recorded as they come.
    pub round_wait: Duration,
    /// How long a claimed row is left to this relay: longer than the producer's delivery
    /// timeout, so that no relay publishes it again while its delivery may still succeed.
    pub lease: Duration,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundOutcome {
    /// Rows acknowledged and marked sent.
    pub published: usize,
    /// Rows whose delivery failed; they stay pending and are retried after their backoff.
    pub failed: usize,
    /// Rows parked after their last attempt failed permanently.
    pub parked: usize,
    /// The first delivery error of the round.
    pub first_error: Option<String>,
    /// The producer hit a fatal error and must be replaced.
    pub fatal: bool,
    /// Rows whose reports had not come when the round stopped waiting; they are
    /// recorded when they come, and stay claimed until then.
    pub in_flight: usize,
}

/// Whether a delivery error is the record's own fault (retrying cannot help) or the
/// broker's, the network's or the destination's (it may, or an operator's fix will).
fn is_permanent(error: &KafkaError) -> bool {
    ProduceFailure::of(error) == ProduceFailure::Record
}

fn is_fatal(error: &KafkaError) -> bool {
    ProduceFailure::of(error) == ProduceFailure::Fatal
}

/// The relay task's parts.
pub struct Relay {
    producer_config: ClientConfig,
    producer: FutureProducer,
    config: RelayConfig,
    recorder: Recorder,
    /// Tasks recording the reports a round stopped waiting for.
    late_reports: JoinSet<()>,
    wake: Arc<Notify>,
}

impl Relay {
    /// A relay publishing from `pool`'s outbox with `producer` (built from
    /// `producer_config`, which builds its replacement after a fatal error); `wake` cuts
    /// the poll sleep short; `health` follows the relay's.
    pub fn new(
        pool: PgPool,
        producer_config: ClientConfig,
        producer: FutureProducer,
        config: RelayConfig,
        metrics: OrderServiceMetrics,
        wake: Arc<Notify>,
        health: RelayHealth,
    ) -> Self {
        let recorder = Recorder {
            pool,
            backoff: config.backoff,
            max_attempts: config.max_attempts,
            metrics,
            health,
        };
        Self {
            producer_config,
            producer,
            config,
            recorder,
            late_reports: JoinSet::new(),
            wake,
        }
    }

    /// Runs rounds until `token` is cancelled. A round in progress is finished first
    /// (its delivery reports awaited and recorded), so a clean stop loses nothing.
    pub async fn run(mut self, token: CancellationToken) {
        tracing::info!(topic = %self.config.topic, batch_size = self.config.batch_size, "outbox relay started");
        let mut failed_rounds: u32 = 0;
        let mut last_gauges: Option<tokio::time::Instant> = None;
        let mut last_sweep: Option<tokio::time::Instant> = None;
        while !token.is_cancelled() {
            let mut last_error = None;
            let pause = match self.round().await {
                Ok(outcome) => {
                    if outcome.parked > 0 {
                        tracing::error!(
                            parked = outcome.parked,
                            error = outcome.first_error.as_deref().unwrap_or("unknown"),
                            "outbox rows parked after permanent delivery failures; their orders' later events wait behind them"
                        );
                    }
                    if outcome.fatal {
                        self.replace_producer();
                    }
                    if outcome.failed > 0 && outcome.published == 0 {
                        failed_rounds = failed_rounds.saturating_add(1);
                        last_error.clone_from(&outcome.first_error);
                        let delay = self.config.backoff.delay(failed_rounds);
                        tracing::warn!(
                            failed = outcome.failed,
                            error = outcome.first_error.as_deref().unwrap_or("unknown"),
                            retry_in = ?delay,
                            "outbox deliveries failed; the rows stay unsent and are retried"
                        );
                        Some(delay)
                    } else {
                        if failed_rounds > 0 {
                            tracing::info!("outbox deliveries succeed again");
                        }
                        failed_rounds = 0;
                        // Publishing made the next event of those orders eligible: look again at once.
                        (outcome == RoundOutcome::default()).then_some(self.config.poll_interval)
                    }
                }
                Err(error) => {
                    failed_rounds = failed_rounds.saturating_add(1);
                    last_error = Some(format!("database: {error}"));
                    let delay = self.config.backoff.delay(failed_rounds);
                    tracing::warn!(%error, retry_in = ?delay, "outbox relay round failed on the database");
                    Some(delay)
                }
            };
            self.set_health(failed_rounds < UNHEALTHY_AFTER_FAILED_ROUNDS, last_error);
            if last_gauges.is_none_or(|at| at.elapsed() >= GAUGE_INTERVAL) {
                self.refresh_gauges().await;
                last_gauges = Some(tokio::time::Instant::now());
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) {
                self.sweep().await;
                last_sweep = Some(tokio::time::Instant::now());
            }
            if let Some(pause) = pause {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = self.wake.notified(), if failed_rounds == 0 => {}
                    () = token.cancelled() => {}
                }
            }
        }
        self.await_late_reports().await;
        tracing::info!("outbox relay stopped");
    }

    /// At shutdown, records the reports still in flight for at most one round's wait;
    /// rows whose reports never came keep their lease and are published again after it.
    async fn await_late_reports(&mut self) {
        let waited = tokio::time::timeout(self.config.round_wait, async {
            while self.late_reports.join_next().await.is_some() {}
        })
        .await;
        if waited.is_err() {
            tracing::warn!(
                tasks = self.late_reports.len(),
                "outbox deliveries still in flight at shutdown; their rows are published again when their lease ends"
            );
        }
    }

    fn set_health(&self, healthy: bool, error: Option<String>) {
        let health = &self.recorder.health;
        if healthy != health.report().0 {
            if healthy {
                tracing::info!("outbox relay healthy again");
            } else {
                tracing::error!(
                    failed_rounds = UNHEALTHY_AFTER_FAILED_ROUNDS,
                    error = error.as_deref().unwrap_or("unknown"),
                    "outbox relay cannot publish; the API goes on taking writes"
                );
            }
        }
        health.set_failing(!healthy, error);
    }

    fn replace_producer(&mut self) {
        match self.producer_config.create() {
            Ok(producer) => {
                tracing::warn!("the relay's producer hit a fatal error; replaced it");
                self.producer = producer;
            }
            Err(error) => {
                tracing::error!(%error, "the relay's producer hit a fatal error and cannot be replaced");
            }
        }
    }

    async fn sweep(&self) {
        match outbox::sweep_stranded(&self.recorder.pool).await {
            Ok(promoted) if !promoted.is_empty() => tracing::warn!(
                rows = promoted.len(),
                first_id = promoted[0],
                "outbox rows waited behind no unsent row of their order; made them pending"
            ),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "cannot sweep stranded outbox rows"),
        }
    }

    async fn refresh_gauges(&self) {
        match outbox::count_unsent(&self.recorder.pool).await {
            Ok(unsent) => {
                let metrics = &self.recorder.metrics;
                metrics.outbox_pending.set(unsent.pending);
                metrics.outbox_parked.set(unsent.parked);
                let age = self.recorder.health.counted(&unsent, chrono::Utc::now());
                metrics.outbox_oldest_unsent_age.set(age);
            }
            Err(error) => tracing::debug!(%error, "cannot count unsent outbox rows"),
        }
    }

    /// One round: claim, publish, record each report as it arrives, for at most
    /// `round_wait`; the reports still missing then are recorded by a task of their own.
    pub async fn round(&mut self) -> sqlx::Result<RoundOutcome> {
        while self.late_reports.try_join_next().is_some() {}
        let started = tokio::time::Instant::now();
        let rows = outbox::claim_batch(
            &self.recorder.pool,
            self.config.batch_size,
            self.config.lease,
        )
        .await?;
        let claimed = started.elapsed();
        let claimed_rows = rows.len();
        let mut reports = FuturesUnordered::new();
        for row in rows {
            // A publish span per row, continuing the request's trace stored with the row;
            // the record carries the span's context. It ends with the delivery report.
            let stored = StoredTraceContext {
                traceparent: row.traceparent.clone(),
                tracestate: row.tracestate.clone(),
            };
            let span = publish_span::publish_span(&self.config.topic, &row.order_id);
            span_context::set_parent(&span, &stored.context());
            let carried = publish_span::carried_context(&span, stored);
            let delivery = self.send(&row, &carried).await;
            reports.push(async move { (row, settle(delivery, &span).await) });
        }
        let sent = started.elapsed();
        let mut records = 0;
        let mut outcome = RoundOutcome::default();
        let deadline = tokio::time::sleep(self.config.round_wait);
        tokio::pin!(deadline);
        loop {
            let first = tokio::select! {
                report = reports.next() => match report {
                    Some(report) => report,
                    None => break,
                },
                () = &mut deadline => break,
            };
            let mut arrived = vec![first];
            while let Some(Some(report)) = reports.next().now_or_never() {
                arrived.push(report);
            }
            self.recorder.record(arrived, &mut outcome).await?;
            records += 1;
        }
        if claimed_rows > 0 {
            tracing::debug!(
                rows = claimed_rows,
                claim = ?claimed,
                send = ?(sent - claimed),
                reports = ?(started.elapsed() - sent),
                records,
                "outbox round"
            );
        }
        outcome.in_flight = reports.len();
        if !reports.is_empty() {
            tracing::debug!(
                in_flight = reports.len(),
                "outbox round stopped waiting; the remaining reports are recorded as they come"
            );
            let recorder = self.recorder.clone();
            self.late_reports.spawn(async move {
                let mut late = RoundOutcome::default();
                while let Some(report) = reports.next().await {
                    if let Err(error) = recorder.record(vec![report], &mut late).await {
                        tracing::warn!(%error, "cannot record a late outbox delivery report; the row is published again when its lease ends");
                    }
                }
                if late.parked > 0 || late.failed > 0 {
                    tracing::warn!(
                        published = late.published,
                        failed = late.failed,
                        parked = late.parked,
                        error = late.first_error.as_deref().unwrap_or("unknown"),
                        "late outbox deliveries failed"
                    );
                }
            });
        }
        Ok(outcome)
    }

    /// Hands `row` to the client, waiting while its local queue is full.
    async fn send(
        &self,
        row: &OutboxRow,
        carried: &StoredTraceContext,
    ) -> Result<DeliveryFuture, KafkaError> {
        loop {
            let record = FutureRecord::to(&self.config.topic)
                .key(row.order_id.as_str())
                .payload(row.payload.as_slice())
                .headers(record_headers(
                    &carried.traceparent,
                    carried.tracestate.as_deref(),
                    &row.event_type,
                ));
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

/// What became of one delivery: `Err(None)` when the producer dropped the report.
type Settled = Result<(), Option<KafkaError>>;

async fn settle(delivery: Result<DeliveryFuture, KafkaError>, span: &tracing::Span) -> Settled {
    let settled = match delivery {
        Ok(future) => match future.await {
            Ok(Ok(delivered)) => {
                publish_span::record_delivered(span, delivered.partition, delivered.offset);
                Ok(())
            }
            Ok(Err((error, _))) => Err(Some(error)),
            Err(_) => Err(None),
        },
        Err(error) => Err(Some(error)),
    };
    if let Err(error) = &settled {
        let reason = error.as_ref().map_or_else(
            || "the producer dropped the delivery report".to_string(),
            ToString::to_string,
        );
        publish_span::record_failed(span, &reason);
    }
    settled
}

/// Writes delivery reports to the outbox and the metrics; shared by a round and the task
/// that records its late reports.
#[derive(Clone)]
struct Recorder {
    pool: PgPool,
    backoff: Backoff,
    max_attempts: u32,
    metrics: OrderServiceMetrics,
    health: RelayHealth,
}

impl Recorder {
    /// Records `reports`: the acknowledged rows marked sent in one statement, each failed
    /// one given its backoff or parked. Adds them to `outcome`.
    async fn record(
        &self,
        reports: Vec<(OutboxRow, Settled)>,
        outcome: &mut RoundOutcome,
    ) -> sqlx::Result<()> {
        let mut sent = Vec::with_capacity(reports.len());
        let mut sent_orders = Vec::with_capacity(reports.len());
        let (mut failed, mut parked) = (0, 0);
        for (row, settled) in reports {
            let error = match settled {
                Ok(()) => {
                    sent.push(row.id);
                    sent_orders.push(row.order_id);
                    continue;
                }
                Err(error) => error,
            };
            let message = error.as_ref().map_or_else(
                || "the producer dropped the delivery report".to_string(),
                ToString::to_string,
            );
            outcome.fatal |= error.as_ref().is_some_and(is_fatal);
            let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
            if error.as_ref().is_some_and(is_permanent) && attempts >= self.max_attempts {
                outbox::park(&self.pool, row.id, &message).await?;
                parked += 1;
            } else {
                let retry_in = self.backoff.delay(attempts);
                outbox::mark_failed(&self.pool, row.id, &message, retry_in).await?;
                failed += 1;
            }
            outcome.first_error.get_or_insert(message);
        }
        outbox::mark_sent(&self.pool, &sent, &sent_orders).await?;
        if !sent.is_empty() {
            let now = chrono::Utc::now();
            self.health.sent(now);
            self.metrics
                .outbox_last_send
                .set(now.timestamp_millis() as f64 / 1000.0);
        }
        outcome.published += sent.len();
        outcome.failed += failed;
        outcome.parked += parked;
        self.metrics.outbox_published.inc_by(sent.len() as u64);
        self.metrics
            .outbox_publish_failures
            .inc_by((failed + parked) as u64);
        self.metrics.outbox_parked_rows.inc_by(parked as u64);
        Ok(())
    }
}
