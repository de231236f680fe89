//! The engine's wiring and its poll loop: receive records, let dispatch hand them
//! to workers, pause and resume partitions as back-pressure decides, have done
//! offsets committed, exit when caught up and idle, and on shutdown release every
//! partition and leave the group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use orderflow_runtime::backoff::Backoff;
use orderflow_runtime::kafka::KafkaArgs;
use orderflow_runtime::ops_server::Readiness;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use self::commits::{CommitScope, Release};
use self::idle_check::IdleCheck;
use self::rebalance::EngineContext;
use self::summary::{ExitReason, Summary};
use crate::dead_letter::{self, DeadLetterWriter};
use crate::error::{Error, Result};
use crate::metrics::ConsumerMetrics;
use crate::partitions::back_pressure::{self, HOLD_BACK_BEFORE_PAUSE};
use crate::partitions::group_protocol::GroupProtocol;
use crate::scheduling::dispatch::{DispatchLimits, dispatch};
use crate::scheduling::{Ordering, Shared};
use crate::store::dead_letter_ledger::PgDeadLetterLedger;
use crate::store::dedup_retention::{self, CommittedOffsets, DedupRetention, TopicConfigs};
use crate::store::dedup_store;
use crate::worker::circuit_breaker::BreakerState;
use crate::worker::decode::EventDecoder;
use crate::worker::effect_batch::PgEffectStore;
use crate::worker::processing::Processor;
use crate::worker::retry::RetryPolicy;

pub(crate) mod commits;
mod idle_check;
pub(crate) mod rebalance;
pub mod summary;

/// How often offsets the broker has not acknowledged are committed again (see
/// [`crate::partitions::Assignment::take_unacknowledged`]).
const UNACKNOWLEDGED_RESEND_INTERVAL: Duration = Duration::from_secs(10);

/// Everything the engine needs to know, independent of how it was configured.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Broker connection and overrides.
    pub kafka: KafkaArgs,
    /// Source topic.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Ordering guarantee.
    pub ordering: Ordering,
    /// Records processed concurrently.
    pub max_in_flight: usize,
    /// Buffered records before partitions pause.
    pub max_buffered: usize,
    /// Records per transaction.
    pub batch_size: usize,
    /// Transactions at once.
    pub db_concurrency: usize,
    /// Attempts for unknown failures.
    pub max_attempts: u32,
    /// Backoff between attempts.
    pub retry_backoff: Backoff,
    /// Consecutive transient failures that open the breaker.
    pub breaker_threshold: u32,
    /// Drain deadline on revoke and shutdown.
    pub drain_timeout: Duration,
    /// Consumer-group protocol.
    pub group_protocol: GroupProtocol,
    /// Group session timeout (classic protocol only).
    pub session_timeout: Duration,
    /// Periodic commit interval.
    pub commit_interval: Duration,
    /// Dedup retention (how long rows are kept; checked against the topic).
    pub dedup_retention: DedupRetention,
    /// Dedup cleanup period.
    pub dedup_cleanup_interval: Duration,
    /// Dead-letter delivery timeout.
    pub dlq_timeout: Duration,
    /// Exit when idle this long (and caught up).
    pub exit_when_idle: Option<Duration>,
    /// Bench only: simulated I/O per event.
    pub effect_delay: Duration,
}

/// Collaborators built by the caller (the binary or a test).
#[derive(Debug)]
pub struct EngineDeps {
    /// Migrated projection database.
    pub pool: PgPool,
    /// Record decoder.
    pub decoder: EventDecoder,
    /// Where the metrics are registered.
    pub registry: prometheus::Registry,
    /// Set ready while consuming.
    pub readiness: Readiness,
}

type EngineConsumer = StreamConsumer<EngineContext>;

fn consumer_config(settings: &EngineSettings) -> ClientConfig {
    let mut config = settings.kafka.client_config();
    config
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // The order service's relay writes in Kafka transactions: never apply an
        // aborted one (librdkafka's default too, stated because it matters).
        .set("isolation.level", "read_committed")
        .set("statistics.interval.ms", "5000")
        .set(
            "client.id",
            format!("order-consumer-{}", std::process::id()),
        );
    settings
        .group_protocol
        .configure(&mut config, settings.session_timeout.as_millis());
    settings.kafka.apply_overrides(&mut config);
    config
}

/// Runs the worker until `token` is cancelled or, with `exit_when_idle`, until
/// caught up and idle; then drains, commits and leaves the group.
pub async fn run(
    settings: EngineSettings,
    deps: EngineDeps,
    token: CancellationToken,
) -> Result<Summary> {
    let metrics = ConsumerMetrics::new(&deps.registry, &settings.group, &settings.topic);
    let shared = Shared::new(
        metrics,
        settings.topic.clone(),
        settings.group.clone(),
        settings.drain_timeout,
    );
    dead_letter::check_topic(&settings.kafka, &settings.topic, &settings.dlq_topic).await?;
    dedup_store::check_single_group(&deps.pool, &settings.group).await?;
    let legacy = dedup_store::LegacyRows::of(&deps.pool, &settings.group)
        .await
        .map_err(|error| crate::error::Error::Database(error.to_string()))?;
    if legacy == dedup_store::LegacyRows::Present {
        tracing::info!(
            group = %settings.group,
            "dedup rows written before they carried the order id remain; each claim also checks those until retention removes them"
        );
    }
    dedup_retention::check_against_topic(
        &settings.kafka,
        &settings.topic,
        settings.dedup_retention,
    )
    .await?;
    let dlq = DeadLetterWriter::new(
        &settings.kafka.client_config(),
        settings.dlq_topic.clone(),
        settings.group.clone(),
        settings.dlq_timeout,
    )?;
    let consumer: Arc<EngineConsumer> = Arc::new(
        consumer_config(&settings).create_with_context(EngineContext::new(Arc::clone(&shared)))?,
    );
    let workers = CancellationToken::new();
    let processor = Arc::new(Processor {
        shared: Arc::clone(&shared),
        effects: Box::new(PgEffectStore::new(deps.pool.clone(), legacy)),
        decoder: Box::new(deps.decoder),
        dlq: Box::new(dlq),
        ledger: Box::new(PgDeadLetterLedger::new(deps.pool.clone())),
        retry: RetryPolicy::new(
            settings.retry_backoff,
            settings.max_attempts,
            settings.breaker_threshold,
            shared.metrics.breaker_state.clone(),
            settings.group.clone(),
        ),
        effect_delay: settings.effect_delay,
        token: workers.clone(),
        resumed: tokio::sync::Semaphore::new(1),
    });
    let retention_token = token.child_token();
    tokio::spawn(dedup_retention::run(
        deps.pool.clone(),
        CommittedOffsets::new(&settings.kafka, &settings.group, &settings.topic)?,
        TopicConfigs::new(&settings.kafka, &settings.topic)?,
        settings.group.clone(),
        settings.dedup_retention,
        settings.dedup_cleanup_interval,
        retention_token.clone(),
    ));

    consumer.subscribe(&[&settings.topic])?;
    deps.readiness.set_ready(true);
    tracing::info!(group = %settings.group, topic = %settings.topic, dlq_topic = %settings.dlq_topic,
        ordering = ?settings.ordering, group_protocol = ?settings.group_protocol,
        max_in_flight = settings.max_in_flight, "consuming");

    let idle_check = settings
        .exit_when_idle
        .map(|idle| IdleCheck::new(&settings, idle))
        .transpose()?;
    let exit_reason = poll_loop(
        &settings, &consumer, &shared, &processor, &token, idle_check,
    )
    .await;

    deps.readiness.set_ready(false);
    shut_down(&consumer, &shared, &workers);
    retention_token.cancel();
    let summary = Summary::collect(&shared, exit_reason);
    drop(processor);
    // Dropping the consumer closes it: it leaves the group (the revoke callback
    // finds nothing left to commit).
    drop(consumer);
    match shared.fatal() {
        Some(reason) => Err(Error::Unrecoverable(reason)),
        None => Ok(summary),
    }
}

async fn poll_loop(
    settings: &EngineSettings,
    consumer: &Arc<EngineConsumer>,
    shared: &Arc<Shared>,
    processor: &Arc<Processor>,
    token: &CancellationToken,
    mut idle_check: Option<IdleCheck>,
) -> ExitReason {
    let mut housekeeping = tokio::time::interval(Duration::from_millis(100));
    let mut last_commit = Instant::now();
    let mut last_resend = Instant::now();
    let mut full_since: Option<Instant> = None;
    loop {
        if shared.fatal().is_some() {
            return ExitReason::Failed;
        }
        dispatch(
            DispatchLimits {
                max_in_flight: settings.max_in_flight,
                batch_size: settings.batch_size,
                db_concurrency: settings.db_concurrency,
            },
            shared,
            |jobs| Arc::clone(processor).run_batch(jobs).boxed(),
        );
        let full = shared.lock().buffered() >= settings.max_buffered;
        full_since = if full {
            full_since.or_else(|| Some(Instant::now()))
        } else {
            None
        };
        let paused = update_pause(settings, consumer, shared, &processor.retry, full_since);
        let held_back = full_since.is_some_and(|at| at.elapsed() >= HOLD_BACK_BEFORE_PAUSE);
        tokio::select! {
            _ = token.cancelled() => return ExitReason::Shutdown,
            // A full buffer first only stops taking records: librdkafka keeps its
            // prefetched records (pausing would drop them and fetch them again).
            // Once the partitions over their share are paused, polling goes on
            // (paused partitions deliver nothing, the others keep flowing). Not
            // before: partitions paused for another reason (the breaker) would let
            // the rest flow unchecked into the full buffer.
            received = consumer.recv(), if !full || (paused && held_back) => match received {
                Ok(message) => {
                    let mut records = vec![message.detach()];
                    let room = settings.max_buffered.saturating_sub(shared.lock().buffered());
                    drain_ready(consumer, settings.batch_size.min(room), &settings.group, &mut records);
                    let mut state = shared.lock();
                    for record in records {
                        state.accept(record, settings.ordering);
                    }
                }
                Err(error) => {
                    log_consumer_error(&settings.group, &error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shared.wake.notified() => {}
            _ = housekeeping.tick() => {
                if last_commit.elapsed() >= settings.commit_interval {
                    commits::commit_async(consumer.as_ref(), shared, CommitScope::Changed);
                    last_commit = Instant::now();
                }
                if last_resend.elapsed() >= UNACKNOWLEDGED_RESEND_INTERVAL {
                    commits::commit_async(consumer.as_ref(), shared, CommitScope::Unacknowledged);
                    last_resend = Instant::now();
                }
                update_gauges(shared);
                if let Some(check) = idle_check.as_mut()
                    && check.poll(shared)
                {
                    tracing::info!(group = %settings.group, "caught up and idle; exiting");
                    return ExitReason::Idle;
                }
            }
        }
    }
}

/// Takes the records librdkafka already holds (up to `limit`: a batch, or the
/// room left in the buffer) without waiting, so a burst from one fetch is
/// dispatched as one batch instead of a transaction per record, and a fetch
/// bigger than the room stays in librdkafka. Records keep the order they
/// arrived in (per-partition order).
fn drain_ready(
    consumer: &EngineConsumer,
    limit: usize,
    group: &str,
    records: &mut Vec<rdkafka::message::OwnedMessage>,
) {
    while records.len() < limit {
        match consumer.recv().now_or_never() {
            Some(Ok(message)) => records.push(message.detach()),
            Some(Err(error)) => {
                log_consumer_error(group, &error);
                return;
            }
            None => return,
        }
    }
}

/// Logs an error the consumer returned instead of a record. A lost broker
/// connection is reported on every poll until librdkafka has reconnected or the
/// cluster moved the partitions (seconds when a broker dies), and librdkafka logs
/// it itself, so it is debug here; anything else is a warning.
fn log_consumer_error(group: &str, error: &KafkaError) {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown) => {
            tracing::debug!(group, %error, "consumer error; librdkafka reconnects")
        }
        _ => tracing::warn!(group, %error, "consumer error"),
    }
}

/// Pauses and resumes partitions as [`back_pressure::decide`] says; returns
/// whether any partition is paused afterwards.
fn update_pause(
    settings: &EngineSettings,
    consumer: &EngineConsumer,
    shared: &Shared,
    retry: &RetryPolicy,
    full_since: Option<Instant>,
) -> bool {
    retry.database_closed_off(); // moves an open breaker to half-open when due
    let breaker = retry.breaker_state();
    let held_back = full_since.is_some_and(|at| at.elapsed() >= HOLD_BACK_BEFORE_PAUSE);
    let mut state = shared.lock();
    let any_paused = state.assignment().paused_count() > 0;
    if breaker == BreakerState::Closed && !held_back && !any_paused {
        return false;
    }
    let buffered = state.buffered_by_partition();
    let loads = state.assignment().loads(&buffered);
    let changes = back_pressure::decide(&loads, settings.max_buffered, breaker, held_back);
    for (partitions, pause) in [(&changes.pause, true), (&changes.resume, false)] {
        if partitions.is_empty() {
            continue;
        }
        let mut tpl = rdkafka::TopicPartitionList::new();
        for partition in partitions {
            tpl.add_partition(&settings.topic, *partition);
        }
        let result = if pause {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        match result {
            Ok(()) => {
                state.assignment_mut().set_paused(partitions, pause);
                tracing::info!(group = %settings.group, ?partitions, ?buffered, ?breaker,
                    action = if pause { "pause" } else { "resume" }, "back-pressure");
            }
            Err(error) => tracing::warn!(%error, ?partitions, "pause/resume failed"),
        }
    }
    let paused_now = state.assignment().paused_count();
    shared.metrics.paused_partitions.set(paused_now as i64);
    paused_now > 0
}

fn update_gauges(shared: &Shared) {
    let state = shared.lock();
    shared.metrics.in_flight.set(state.in_flight() as i64);
    shared.metrics.buffered.set(state.buffered() as i64);
}

/// Stops fetching, releases every partition (drains in-flight work within the
/// drain timeout, commits what is done, forgets them), then stops the workers.
fn shut_down(consumer: &EngineConsumer, shared: &Shared, workers: &CancellationToken) {
    let partitions = shared.lock().assignment().owned();
    commits::release(shared, consumer, &partitions, Release::Shutdown);
    workers.cancel();
}
