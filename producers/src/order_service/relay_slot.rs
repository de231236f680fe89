//! Publishing one slot: the owner's loop, with the slot's transactional producer
//! (`transactional.id = <prefix>-<topic>-<slot>`).
//!
//! Each turn reads the slot's next unsent rows in id order, publishes them all in one
//! Kafka transaction (every record in flight at once), commits it, then marks the rows
//! sent. An order's rows share its slot and leave in id order within and across
//! transactions, so several events of one order may be in flight together.
//!
//! - `init_transactions` fences every earlier producer of the slot: a previous owner
//!   that is paused or cut off cannot commit what it had in flight (its open
//!   transaction is aborted, its later sends fail), so no stale record becomes visible
//!   after a newer one. Readers must use `isolation.level=read_committed`.
//! - A commit whose record in the database fails (PostgreSQL away) is kept in memory and
//!   written again before anything else; those rows are not read, so not sent, again.
//!   Only an owner that dies between the commit and the record leaves rows a successor
//!   sends a second time (consumers deduplicate on `event_id`).
//! - A turn waits for its acknowledgements at most `round_wait`. A row whose report
//!   failed or did not come (a leaderless partition, a record too large) makes the
//!   transaction abort; the row gets its own backoff, and its order's later rows wait
//!   behind it while the rest of the slot flows on in the next transaction. A row that
//!   fails permanently `max_attempts` times is parked.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use orderflow_contracts::produce_error::ProduceFailure;
use orderflow_contracts::record::record_headers;
use orderflow_outbox::{OutboxRow, queries as outbox};
use orderflow_runtime::telemetry::StoredTraceContext;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::OrderServiceMetrics;
use crate::order_service::relay::{RelayConfig, UNHEALTHY_AFTER_FAILED_ROUNDS};
use crate::order_service::relay_health::RelayHealth;
use crate::publish_span;

/// How long to wait before retrying a send when librdkafka's local queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(2);

/// What every slot of one relay shares.
pub(crate) struct SlotContext {
    /// The relay's database connections.
    pub(crate) pool: sqlx::PgPool,
    /// The producer settings every slot's producer starts from.
    pub(crate) producer_config: ClientConfig,
    /// The relay's settings.
    pub(crate) config: RelayConfig,
    /// Counters and gauges.
    pub(crate) metrics: OrderServiceMetrics,
    /// The relay's health, fed by every slot's turns.
    pub(crate) health: RelayHealth,
    /// By slot, bumped when the API wrote rows of the slot: its idle owner looks again
    /// at once.
    pub(crate) written: Vec<watch::Sender<u64>>,
    /// Turns that failed in a row, by slot (a slot's success removes it): the relay is
    /// failing while any slot has failed [`UNHEALTHY_AFTER_FAILED_ROUNDS`] turns in a
    /// row, so idle slots that read nothing cannot hide a slot that cannot publish.
    pub(crate) failed_turns: Mutex<BTreeMap<i16, u32>>,
}

/// Why a slot's loop ended.
#[derive(Debug)]
pub(crate) enum SlotEnd {
    /// Its token was cancelled (shutdown, or the slot was given up).
    Stopped,
    /// Another producer of the slot fenced this one: another relay owns it now.
    Fenced(String),
}

/// What one transaction did.
enum Turn {
    /// Committed: these rows are in Kafka.
    Committed(Vec<i64>),
    /// Aborted; the failed rows and their errors.
    Aborted(Vec<(OutboxRow, String, bool)>),
    /// The producer cannot go on: fenced (`true`) or broken.
    Broken(String, bool),
}

/// The slot's producer, if started: dropped off the runtime's workers, since dropping
/// a client waits for its threads to end.
struct SlotProducer(Option<FutureProducer>);

impl SlotProducer {
    fn close(producer: FutureProducer) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(producer))),
            Err(_) => drop(producer),
        }
    }
}

impl Drop for SlotProducer {
    fn drop(&mut self) {
        if let Some(producer) = self.0.take() {
            Self::close(producer);
        }
    }
}

/// The transactional id of `slot`'s producer.
pub(crate) fn transactional_id(prefix: &str, topic: &str, slot: i16) -> String {
    format!("{prefix}-{topic}-{slot}")
}

/// Publishes `slot` until `token` is cancelled or another owner fences this one.
pub(crate) async fn publish_slot(
    slot: i16,
    context: Arc<SlotContext>,
    token: CancellationToken,
) -> SlotEnd {
    let config = &context.config;
    let mut written = context.written[slot as usize].subscribe();
    let mut unrecorded: Vec<i64> = Vec::new();
    let mut failures: u32 = 0;
    let mut producer = SlotProducer(None);
    while !token.is_cancelled() {
        let pause = if producer.0.is_none() {
            match start_producer(&context, slot, &token).await {
                Ok(started) => {
                    producer.0 = Some(started);
                    None
                }
                Err(Turn::Broken(error, true)) => return SlotEnd::Fenced(error),
                Err(_) => Some(config.backoff.delay(1)),
            }
        } else if !unrecorded.is_empty() {
            match record_sent(&context, &unrecorded).await {
                Ok(()) => {
                    unrecorded.clear();
                    context.turn_succeeded(slot);
                    None
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    context.turn_failed(slot, &format!("database: {error}"));
                    Some(config.backoff.delay(failures))
                }
            }
        } else {
            // Seen before the claim reads, so a write that commits while the claim runs
            // (and finds nothing) still wakes the wait below.
            written.borrow_and_update();
            match outbox::claim_slot(&context.pool, slot, &unrecorded, config.batch_size).await {
                Err(error) => {
                    failures = failures.saturating_add(1);
                    context.turn_failed(slot, &format!("database: {error}"));
                    Some(config.backoff.delay(failures))
                }
                Ok(rows) if rows.is_empty() => {
                    failures = 0;
                    context.turn_succeeded(slot);
                    tokio::select! {
                        () = tokio::time::sleep(config.poll_interval) => {}
                        _ = written.changed() => {}
                        () = token.cancelled() => {}
                    }
                    None
                }
                Ok(rows) => {
                    let Some(current) = producer.0.as_ref() else {
                        continue;
                    };
                    match publish(current, &context, rows).await {
                        Turn::Committed(ids) => {
                            failures = 0;
                            context.turn_succeeded(slot);
                            unrecorded = ids;
                            None
                        }
                        Turn::Aborted(failed) => {
                            failures = failures.saturating_add(1);
                            record_failed(&context, slot, failed).await;
                            Some(config.backoff.delay(failures).min(config.round_wait))
                        }
                        Turn::Broken(error, fenced) => {
                            if fenced {
                                return SlotEnd::Fenced(error);
                            }
                            tracing::warn!(slot, %error, "the slot's producer hit a fatal error; replacing it");
                            context.turn_failed(slot, &error);
                            if let Some(broken) = producer.0.take() {
                                SlotProducer::close(broken);
                            }
                            failures = failures.saturating_add(1);
                            Some(config.backoff.delay(failures))
                        }
                    }
                }
            }
        };
        if let Some(pause) = pause {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = token.cancelled() => {}
            }
        }
    }
    // A clean stop records what Kafka already has, so a successor does not send it again.
    if !unrecorded.is_empty()
        && let Err(error) = record_sent(&context, &unrecorded).await
    {
        tracing::warn!(slot, %error, rows = unrecorded.len(), "cannot record published outbox rows at stop; the slot's next owner sends them again");
    }
    SlotEnd::Stopped
}

impl SlotContext {
    /// Counts a failed turn of `slot`; `error` is the relay's last error.
    pub(crate) fn turn_failed(&self, slot: i16, error: &str) {
        let failing = {
            let mut failed = self.failed_turns.lock().unwrap_or_else(|e| e.into_inner());
            let count = failed.entry(slot).or_insert(0);
            *count = count.saturating_add(1);
            failed.values().any(|&n| n >= UNHEALTHY_AFTER_FAILED_ROUNDS)
        };
        self.health.set_failing(failing, Some(error.to_string()));
    }

    /// `slot` works (published, recorded, or had nothing to publish), or is no longer
    /// this relay's: the relay is healthy again once no slot keeps failing.
    pub(crate) fn turn_succeeded(&self, slot: i16) {
        let failing = {
            let mut failed = self.failed_turns.lock().unwrap_or_else(|e| e.into_inner());
            if failed.remove(&slot).is_none() {
                return;
            }
            failed.values().any(|&n| n >= UNHEALTHY_AFTER_FAILED_ROUNDS)
        };
        if !failing {
            self.health.set_failing(false, None);
        }
    }
}

/// A producer for `slot`, its transactions initialised (which fences any earlier one).
async fn start_producer(
    context: &SlotContext,
    slot: i16,
    token: &CancellationToken,
) -> Result<FutureProducer, Turn> {
    let config = &context.config;
    let mut producer_config = context.producer_config.clone();
    producer_config.set(
        "transactional.id",
        transactional_id(&config.transactional_id_prefix, &config.topic, slot),
    );
    if token.is_cancelled() {
        // Given up meanwhile: initialising now could fence the slot's next owner.
        return Err(Turn::Broken("slot given up".into(), false));
    }
    // Creating a client starts its threads and initialising waits for the coordinator:
    // both block, and a relay starts up to 64 of them at once, which must not starve
    // the API's tasks.
    let timeout = config.transaction_timeout;
    let initialised = tokio::task::spawn_blocking(move || {
        let producer: FutureProducer = producer_config.create()?;
        producer.init_transactions(timeout)?;
        Ok::<_, KafkaError>(producer)
    })
    .await;
    match initialised {
        Ok(Ok(producer)) => Ok(producer),
        Ok(Err(error)) => {
            let fenced = is_fenced(&error);
            tracing::warn!(slot, %error, "cannot initialise the slot's transactions");
            context.turn_failed(slot, &format!("kafka: {error}"));
            Err(Turn::Broken(error.to_string(), fenced))
        }
        Err(join) => Err(Turn::Broken(join.to_string(), false)),
    }
}

/// Publishes `rows` in one transaction.
async fn publish(producer: &FutureProducer, context: &SlotContext, rows: Vec<OutboxRow>) -> Turn {
    let config = &context.config;
    if let Err(error) = producer.begin_transaction() {
        return Turn::Broken(error.to_string(), is_fenced(&error));
    }
    // Every report waits until one shared deadline, so a turn never outlasts
    // `round_wait` and the rows that were acknowledged in time are told apart.
    let deadline = tokio::time::Instant::now() + config.round_wait;
    let mut reports = Vec::with_capacity(rows.len());
    for row in &rows {
        // A publish span per row, continuing the request's trace stored with the row;
        // the record carries the span's context. It ends with the delivery report.
        let stored = StoredTraceContext {
            traceparent: row.traceparent.clone(),
            tracestate: row.tracestate.clone(),
        };
        let root = publish_span::publish_span(&config.topic, &row.order_id, || stored.context());
        let carried = publish_span::carried_context(&root, stored);
        let delivery = send(producer, &config.topic, row, &carried).await;
        reports.push(tokio::time::timeout_at(
            deadline,
            settle(delivery, root.span),
        ));
    }
    let settled = join_all(reports).await;
    let failed: Vec<(OutboxRow, String, bool)> = rows
        .iter()
        .zip(settled)
        .filter_map(|(row, settled)| {
            let error = match settled {
                Ok(Ok(())) => return None,
                Ok(Err(error)) => error,
                Err(_) => {
                    let message = format!(
                        "no acknowledgement within {:?} (--relay-round-wait)",
                        config.round_wait
                    );
                    return Some((row.clone(), message, false));
                }
            };
            let permanent = error
                .as_ref()
                .is_some_and(|e| ProduceFailure::of(e) == ProduceFailure::Record);
            let message = error.map_or_else(
                || "the producer dropped the delivery report".to_string(),
                |e| e.to_string(),
            );
            Some((row.clone(), message, permanent))
        })
        .collect();
    if failed.is_empty() {
        let committing = producer.clone();
        let timeout = config.transaction_timeout;
        let committed =
            tokio::task::spawn_blocking(move || committing.commit_transaction(timeout)).await;
        return match committed {
            Ok(Ok(())) => {
                observe_commit_to_ack(context, &rows);
                Turn::Committed(rows.iter().map(|row| row.id).collect())
            }
            Ok(Err(error)) => {
                let broken = Turn::Broken(format!("kafka: {error}"), is_fenced(&error));
                if is_fatal(&error) || !abort(producer, context).await {
                    broken
                } else {
                    Turn::Aborted(Vec::new())
                }
            }
            Err(join) => Turn::Broken(join.to_string(), false),
        };
    }
    if abort(producer, context).await {
        Turn::Aborted(failed)
    } else {
        Turn::Broken("cannot abort the slot's transaction".into(), false)
    }
}

/// Records, per row, how long after its write its transaction committed (readers with
/// `read_committed` see it from then on). Rows are written on PostgreSQL's clock: on
/// another host the figure includes the clocks' difference.
fn observe_commit_to_ack(context: &SlotContext, rows: &[OutboxRow]) {
    let now = chrono::Utc::now();
    for row in rows {
        let delay = (now - row.created_at)
            .num_microseconds()
            .unwrap_or(0)
            .max(0);
        context
            .metrics
            .outbox_commit_to_ack
            .observe(delay as f64 / 1e6);
    }
}

/// Aborts the open transaction; `false` when the producer must be replaced.
async fn abort(producer: &FutureProducer, context: &SlotContext) -> bool {
    let aborting = producer.clone();
    let timeout = context.config.transaction_timeout;
    matches!(
        tokio::task::spawn_blocking(move || aborting.abort_transaction(timeout)).await,
        Ok(Ok(()))
    )
}

fn is_fenced(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
                | RDKafkaErrorCode::TransactionCoordinatorFenced
        )
    )
}

fn is_fatal(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(error) => error.is_fatal(),
        other => ProduceFailure::of(other) == ProduceFailure::Fatal,
    }
}

/// Marks `ids` sent, with the metrics and health that go with it.
async fn record_sent(context: &SlotContext, ids: &[i64]) -> sqlx::Result<()> {
    outbox::mark_sent(&context.pool, ids).await?;
    let now = chrono::Utc::now();
    context.health.sent(now);
    context
        .metrics
        .outbox_last_send
        .set(now.timestamp_millis() as f64 / 1000.0);
    context.metrics.outbox_published.inc_by(ids.len() as u64);
    Ok(())
}

/// Gives each failed row its backoff, or parks it after its last permanent failure.
async fn record_failed(context: &SlotContext, slot: i16, failed: Vec<(OutboxRow, String, bool)>) {
    let config = &context.config;
    let mut first_error = None;
    let mut parked = 0_u64;
    for (row, message, permanent) in &failed {
        let attempts = u32::try_from(row.attempts).unwrap_or(0).saturating_add(1);
        let recorded = if *permanent && attempts >= config.max_attempts {
            parked += 1;
            outbox::park(&context.pool, row.id, message).await
        } else {
            outbox::mark_failed(
                &context.pool,
                row.id,
                message,
                config.backoff.delay(attempts),
            )
            .await
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, id = row.id, "cannot record a failed outbox delivery");
        }
        first_error.get_or_insert_with(|| message.clone());
    }
    let failures = failed.len() as u64;
    context.metrics.outbox_publish_failures.inc_by(failures);
    context.metrics.outbox_parked_rows.inc_by(parked);
    let error = first_error.unwrap_or_else(|| "the transaction's commit failed".into());
    if parked > 0 {
        tracing::error!(parked, %error, "outbox rows parked after permanent delivery failures; their orders' later events wait behind them");
    }
    tracing::warn!(failed = failures, %error, "outbox deliveries failed; the transaction was aborted and the rows are retried");
    context.turn_failed(slot, &error);
}

/// Hands `row` to the client, waiting while its local queue is full.
async fn send(
    producer: &FutureProducer,
    topic: &str,
    row: &OutboxRow,
    carried: &StoredTraceContext,
) -> Result<DeliveryFuture, KafkaError> {
    loop {
        let record = FutureRecord::to(topic)
            .key(row.order_id.as_str())
            .payload(row.payload.as_slice())
            .headers(record_headers(
                &carried.traceparent,
                carried.tracestate.as_deref(),
                &row.event_type,
            ));
        match producer.send_result(record) {
            Ok(future) => return Ok(future),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(QUEUE_FULL_PAUSE).await;
            }
            Err((error, _)) => return Err(error),
        }
    }
}

/// What became of one delivery: `Err(None)` when the producer dropped the report.
type Settled = Result<(), Option<KafkaError>>;

async fn settle(delivery: Result<DeliveryFuture, KafkaError>, span: tracing::Span) -> Settled {
    let settled = match delivery {
        Ok(future) => match future.await {
            Ok(Ok(delivered)) => {
                publish_span::record_delivered(&span, delivered.partition, delivered.offset);
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
        publish_span::record_failed(&span, &reason);
    }
    settled
}
