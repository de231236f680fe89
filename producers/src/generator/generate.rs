//! The `generate` run: connects to the broker and the registry, writes lifecycle events
//! (plus the requested duplicates and poison records) at the requested rate, waits for
//! every delivery report and returns the [`Summary`].

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use orderflow_runtime::ops_server::{OpsServer, Readiness};
use orderflow_schemas::{EVENT_TYPES, OrderEventSerializer};
use rand::rngs::{SmallRng, StdRng};
use rand::{Rng, SeedableRng};
use rdkafka::producer::{BaseRecord, Producer, PurgeConfig};
use tokio_util::sync::CancellationToken;

use crate::generator::delivery::{
    DeliveryTracker, OrderProducer, event_type_index, send_with_backpressure,
};
use crate::generator::error::{ProducerError, Result};
use crate::generator::generate_args::GenerateArgs;
use crate::generator::lifecycle::LifecycleGenerator;
use crate::generator::poison::{PoisonKind, poison_record};
use crate::generator::progress;
use crate::generator::summary::Summary;
use crate::metrics::ProducerMetrics;
use crate::publish_span;
use crate::topic_check;
use crate::trace_context::{new_traceparent, write_traceparent};
use orderflow_runtime::telemetry::StoredTraceContext;
use orderflow_runtime::telemetry::span_context::TraceContext;

pub use orderflow_contracts::record::{
    CONTENT_TYPE, CONTENT_TYPE_HEADER, EVENT_TYPE_HEADER, record_headers,
};

/// Random seeds stay below 2^53 so the summary's JSON number survives tools that read
/// numbers as doubles (jq, JavaScript).
const MAX_RANDOM_SEED: u64 = 1 << 53;

/// Salt separating the stream of duplicate/poison decisions from the event stream, so the
/// same seed gives the same events whatever the ratios.
const DECISION_SEED_SALT: u64 = 0x5eed_dec1_5105_0001;

/// Runs `generate` as the binary does: metrics endpoint, then [`generate`]. `registry`
/// may already hold the process's own families (the span export counters); the
/// producer's are added to it and the endpoint serves them all.
pub async fn run_command(
    args: &GenerateArgs,
    registry: prometheus::Registry,
    token: CancellationToken,
) -> Result<Summary> {
    args.validate()?;
    let metrics = ProducerMetrics::register(&registry)
        .map_err(|error| ProducerError::Config(format!("metrics: {error}")))?;
    let readiness = Readiness::default();
    let server = match args.metrics_address()? {
        Some(address) => Some(
            OpsServer::new(address, registry)
                .with_readiness(readiness.clone())
                .spawn(token.child_token())
                .await?,
        ),
        None => None,
    };
    let summary = generate(args, &metrics, Some(&readiness), token.clone()).await;
    readiness.set_ready(false);
    if let Some((_, handle)) = server {
        handle.abort();
    }
    summary
}

/// Connects, writes `args.count` lifecycle events (and extras) and waits for their delivery
/// reports. Stops early when `token` is cancelled, still flushing what is in flight.
/// Delivery failures do not make this fail: they are counted in the summary (see
/// [`Summary::check_delivered`]).
pub async fn generate(
    args: &GenerateArgs,
    metrics: &ProducerMetrics,
    readiness: Option<&Readiness>,
    token: CancellationToken,
) -> Result<Summary> {
    args.validate()?;
    let (producer, serializer) = tokio::select! {
        connected = connect(args, metrics) => connected?,
        () = token.cancelled() => return Err(ProducerError::Interrupted),
    };
    if let Some(readiness) = readiness {
        readiness.set_ready(true);
    }

    let seed = args
        .seed
        .unwrap_or_else(|| rand::rng().random_range(0..MAX_RANDOM_SEED));
    let sent = Arc::new(AtomicU64::new(0));
    let progress_token = token.child_token();
    let progress = progress::spawn_if_terminal(
        producer.clone(),
        sent.clone(),
        args.count,
        progress_token.clone(),
    );
    tracing::info!(topic = %args.topic, count = args.count, rate = args.rate, seed, "generating");

    let started = Instant::now();
    let mut run = Run::new(args, seed, &producer, &serializer, sent, token);
    let written = run.write_all().await;
    let mut summary = run.summary;
    finish_deliveries(&producer, args.flush_timeout).await;
    progress_token.cancel();
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    written?;

    let tracker = producer.context();
    summary.acked = tracker.acked();
    // Anything without a report by now (should not happen after purge) counts as failed.
    summary.failed = summary.sent - summary.acked.min(summary.sent);
    summary.first_error = tracker.first_error();
    summary.elapsed_seconds = started.elapsed().as_secs_f64();
    summary.events_per_second = summary.sent as f64 / summary.elapsed_seconds.max(1e-9);
    tracing::info!(
        sent = summary.sent,
        acked = summary.acked,
        failed = summary.failed,
        events_per_second = summary.events_per_second.round(),
        "done"
    );
    Ok(summary)
}

/// Start-up: waits for the broker, checks the topic, registers the schema (each with
/// its own retry budget for a dependency that is still starting).
async fn connect(
    args: &GenerateArgs,
    metrics: &ProducerMetrics,
) -> Result<(OrderProducer, OrderEventSerializer)> {
    args.kafka.wait_for_brokers().await?;
    let producer: OrderProducer = args
        .producer
        .client_config(&args.kafka)
        .create_with_context(DeliveryTracker::new(&args.topic, metrics))?;
    let partitions = topic_check::partition_count(&producer, &args.topic)
        .await?
        .ok_or_else(|| {
            ProducerError::Config(topic_check::missing_topic_message(
                &args.topic,
                args.kafka.brokers(),
            ))
        })?;
    tracing::debug!(topic = %args.topic, partitions, "topic found");
    let registry = args.registry.client(args.kafka.config_file.as_ref())?;
    let serializer = OrderEventSerializer::with_startup_timeout(
        &registry,
        &args.topic,
        args.registry_connect_timeout,
    )
    .await?;
    Ok((producer, serializer))
}

/// Waits up to `timeout` for every report; then drops what is left (reported as failed).
async fn finish_deliveries(producer: &OrderProducer, timeout: Duration) {
    let flushing = producer.clone();
    let flushed = tokio::task::spawn_blocking(move || {
        let flushed = flushing.flush(timeout);
        if flushed.is_err() {
            // Purged records get a failed delivery report, so they are counted.
            flushing.purge(PurgeConfig::default().queue().inflight());
            let _ = flushing.flush(Duration::from_secs(2));
        }
        flushed
    })
    .await;
    match flushed {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(
            %error,
            in_flight = producer.in_flight_count(),
            "records still in flight after the flush timeout were dropped and count as failed"
        ),
        Err(error) => tracing::error!(%error, "flush task failed"),
    }
}

/// State of one run's write loop.
struct Run<'a> {
    args: &'a GenerateArgs,
    seed: u64,
    producer: &'a OrderProducer,
    serializer: &'a OrderEventSerializer,
    sent: Arc<AtomicU64>,
    token: CancellationToken,
    /// Paces sends to `--rate`; `None` when unlimited.
    limiter: Option<DefaultDirectRateLimiter>,
    summary: Summary,
}

/// A limiter releasing `per_second` records per second, or `None` (0: unlimited). Its
/// burst is a fiftieth of a second of rate, so a sleep wakes up to a small batch rather
/// than a single record, and an idle spell never banks more than that.
fn pacing(per_second: u32) -> Option<DefaultDirectRateLimiter> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second / 50).unwrap_or(NonZeroU32::MIN);
    Some(RateLimiter::direct(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl<'a> Run<'a> {
    fn new(
        args: &'a GenerateArgs,
        seed: u64,
        producer: &'a OrderProducer,
        serializer: &'a OrderEventSerializer,
        sent: Arc<AtomicU64>,
        token: CancellationToken,
    ) -> Self {
        let summary = Summary {
            topic: args.topic.clone(),
            seed,
            poison_by_kind: PoisonKind::ALL
                .iter()
                .map(|kind| (kind.as_str().to_string(), 0))
                .collect(),
            by_event_type: EVENT_TYPES
                .iter()
                .map(|event_type| (event_type.to_string(), 0))
                .collect::<BTreeMap<_, _>>(),
            ..Summary::default()
        };
        Self {
            args,
            seed,
            producer,
            serializer,
            sent,
            token,
            limiter: pacing(args.rate),
            summary,
        }
    }

    /// The write loop. Returns early (Ok) when cancelled; errors only when the client
    /// refuses a record outright.
    async fn write_all(&mut self) -> Result<()> {
        let args = self.args;
        let mut lifecycle = LifecycleGenerator::new(
            usize::try_from(args.orders_open()).unwrap_or(usize::MAX),
            self.seed,
            &args.producer_name,
        );
        let mut decisions = StdRng::seed_from_u64(self.seed ^ DECISION_SEED_SALT);
        // Trace ids are fresh on every run, even with the same seed.
        let mut traces = SmallRng::from_os_rng();
        let mut value = Vec::with_capacity(512);
        let mut traceparent = String::with_capacity(64);

        for _ in 0..args.count {
            if self.token.is_cancelled() {
                self.summary.interrupted = true;
                break;
            }
            let event = lifecycle.next_event();
            let event_type = event.event_type();
            self.serializer.serialize_into(&event, &mut value);
            write_traceparent(&mut traces, &mut traceparent);
            if !self
                .send(&event.order_id, &value, &traceparent, event_type)
                .await?
            {
                break;
            }
            *self
                .summary
                .by_event_type
                .get_mut(event_type)
                .expect("every event type is pre-filled") += 1;

            if args.duplicate_ratio > 0.0 && decisions.random_bool(args.duplicate_ratio) {
                // A client retry: the same key, bytes and headers again.
                if !self
                    .send(&event.order_id, &value, &traceparent, event_type)
                    .await?
                {
                    break;
                }
                self.summary.duplicates += 1;
            }
            if args.poison_ratio > 0.0 && decisions.random_bool(args.poison_ratio) {
                let poison = poison_record(
                    self.summary.poison,
                    self.seed,
                    &args.producer_name,
                    self.serializer,
                    &mut decisions,
                );
                let poison_trace = new_traceparent(&mut traces);
                if !self
                    .send(&poison.key, &poison.value, &poison_trace, poison.event_type)
                    .await?
                {
                    break;
                }
                self.summary.poison += 1;
                *self
                    .summary
                    .poison_by_kind
                    .get_mut(poison.kind.as_str())
                    .expect("every poison kind is pre-filled") += 1;
            }
            // Lets other tasks (metrics endpoint, signals) run when the loop never waits.
            tokio::task::consume_budget().await;
        }
        self.summary.orders_created = lifecycle.orders_created();
        if self.token.is_cancelled() && self.summary.events() < args.count {
            self.summary.interrupted = true;
        }
        Ok(())
    }

    /// Waits for the rate limiter, then hands one record to the client. Returns false
    /// when cancelled while waiting (nothing was sent).
    async fn send(
        &mut self,
        key: &str,
        value: &[u8],
        traceparent: &str,
        event_type: &'static str,
    ) -> Result<bool> {
        if let Some(limiter) = &self.limiter {
            tokio::select! {
                () = limiter.until_ready() => {}
                () = self.token.cancelled() => return Ok(false),
            }
        }
        // With span export on, a publish span per record, whose context the record
        // carries; otherwise the fresh traceparent as before, at no cost.
        let root = orderflow_runtime::telemetry::is_exporting()
            .then(|| publish_span::publish_span(&self.args.topic, key, TraceContext::new));
        let headers = match &root {
            Some(root) => {
                let fallback = StoredTraceContext {
                    traceparent: traceparent.to_string(),
                    tracestate: None,
                };
                let carried = publish_span::carried_context(root, fallback);
                record_headers(
                    &carried.traceparent,
                    carried.tracestate.as_deref(),
                    event_type,
                )
            }
            None => record_headers(traceparent, None, event_type),
        };
        let tag = self.producer.context().tag(event_type_index(event_type));
        let record = BaseRecord::with_opaque_to(&self.args.topic, tag)
            .key(key)
            .payload(value)
            .headers(headers);
        send_with_backpressure(self.producer, record).await?;
        self.summary.sent += 1;
        self.sent.store(self.summary.sent, Ordering::Relaxed);
        Ok(true)
    }
}

#[cfg(test)]
mod pacing_tests {
    use super::*;

    #[test]
    fn rate_zero_is_unlimited() {
        assert!(pacing(0).is_none());
    }

    #[test]
    fn an_idle_limiter_releases_no_more_than_its_burst() {
        let limiter = pacing(1_000).expect("limited");
        let released = std::iter::from_fn(|| limiter.check().ok())
            .take(1_000)
            .count();
        assert_eq!(
            released, 20,
            "a fiftieth of a second of rate at once, no more"
        );
        let slow = pacing(10).expect("limited");
        assert!(slow.check().is_ok());
        assert!(
            slow.check().is_err(),
            "a burst of at least one record, and no more"
        );
    }
}
