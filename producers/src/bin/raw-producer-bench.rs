//! Baseline for `scripts/bench-producer.sh`: sends pre-encoded order events with the same
//! producer settings, headers and delivery tracking as `order-producer generate`, but
//! without generating or encoding anything per record, so the ratio of the two rates is
//! the cost of generation. `--api future` measures rdkafka's FutureProducer instead of
//! the threaded producer the generator uses.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use order_producer::generator::delivery::{
    DeliveryTracker, OrderProducer, event_type_index, send_with_backpressure,
};
use order_producer::generator::generate_args::DEFAULT_ORDERS_OPEN;
use order_producer::generator::lifecycle::LifecycleGenerator;
use order_producer::metrics::ProducerMetrics;
use order_producer::producer_settings::ProducerSettings;
use order_producer::trace_context::new_traceparent;
use orderflow_contracts::record::record_headers;
use orderflow_runtime::kafka::KafkaArgs;
use orderflow_schemas::OrderEventSerializer;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseRecord, FutureProducer, FutureRecord, Producer};

/// Which rdkafka producer API to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Api {
    /// ThreadedProducer with a delivery context (what the generator uses).
    Threaded,
    /// FutureProducer, one delivery future per record.
    Future,
}

/// Raw producer baseline.
#[derive(Debug, Parser)]
#[command(name = "raw-producer-bench")]
struct Args {
    /// Topic to write to.
    #[arg(long)]
    topic: String,
    /// Records to send (0: only create the topic).
    #[arg(long, default_value_t = 200_000)]
    count: u64,
    /// Create the topic with this many partitions first.
    #[arg(long)]
    create_partitions: Option<i32>,
    /// Producer API.
    #[arg(long, value_enum, default_value_t = Api::Threaded)]
    api: Api,
    /// Kafka connection.
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Producer settings (the generator's defaults unless overridden).
    #[command(flatten)]
    producer: ProducerSettings,
}

/// Distinct pre-encoded records cycled through (real generated events, so sizes and
/// compressibility match the generator's).
const POOL: usize = 4_096;

struct Prepared {
    key: String,
    value: Vec<u8>,
    traceparent: String,
    event_type: &'static str,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.kafka.wait_for_brokers().await?;
    if let Some(partitions) = args.create_partitions {
        create_topic(&args.kafka, &args.topic, partitions).await?;
    }
    if args.count == 0 {
        return Ok(());
    }
    let pool = prepare_pool();
    let config = args.producer.client_config(&args.kafka);
    // The clock starts once the client has its connection and the topic's metadata,
    // as `generate` starts it after its start-up topic check.
    let (acked, failed, started) = match args.api {
        Api::Threaded => {
            let metrics = ProducerMetrics::register(&prometheus::Registry::new())?;
            let producer: OrderProducer =
                config.create_with_context(DeliveryTracker::new(&args.topic, &metrics))?;
            producer
                .client()
                .fetch_metadata(Some(&args.topic), Duration::from_secs(10))?;
            let started = Instant::now();
            for i in 0..args.count {
                let record = &pool[i as usize % POOL];
                let tag = producer.context().tag(event_type_index(record.event_type));
                let base = BaseRecord::with_opaque_to(&args.topic, tag)
                    .key(&record.key)
                    .payload(&record.value)
                    .headers(record_headers(&record.traceparent, None, record.event_type));
                send_with_backpressure(&producer, base).await?;
            }
            let flushing = producer.clone();
            tokio::task::spawn_blocking(move || flushing.flush(Duration::from_secs(120))).await??;
            (
                producer.context().acked(),
                producer.context().failed(),
                started,
            )
        }
        Api::Future => {
            let producer: FutureProducer = config.create()?;
            producer
                .client()
                .fetch_metadata(Some(&args.topic), Duration::from_secs(10))?;
            let started = Instant::now();
            let mut pending = VecDeque::new();
            let (mut acked, mut failed) = (0u64, 0u64);
            for i in 0..args.count {
                let record = &pool[i as usize % POOL];
                let mut future_record = FutureRecord::to(&args.topic)
                    .key(&record.key)
                    .payload(&record.value)
                    .headers(record_headers(&record.traceparent, None, record.event_type));
                let delivery = loop {
                    match producer.send_result(future_record) {
                        Ok(delivery) => break delivery,
                        Err((_, returned)) => {
                            future_record = returned;
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                    }
                };
                pending.push_back(delivery);
                if pending.len() >= 100_000 {
                    tally(
                        pending.pop_front().expect("not empty").await,
                        &mut acked,
                        &mut failed,
                    );
                }
            }
            for delivery in pending {
                tally(delivery.await, &mut acked, &mut failed);
            }
            (acked, failed, started)
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "api": format!("{:?}", args.api).to_lowercase(),
        "sent": args.count,
        "acked": acked,
        "failed": failed,
        "value_bytes_avg": pool.iter().map(|r| r.value.len()).sum::<usize>() / POOL,
        "elapsed_seconds": elapsed,
        "events_per_second": args.count as f64 / elapsed,
    });
    println!("{report}");
    if failed > 0 || acked != args.count {
        bail!("{failed} failed, {acked} of {} acked", args.count);
    }
    Ok(())
}

fn tally<T, E>(result: Result<Result<T, E>, impl Sized>, acked: &mut u64, failed: &mut u64) {
    match result {
        Ok(Ok(_)) => *acked += 1,
        _ => *failed += 1,
    }
}

/// The first events `generate --seed 1` writes (same orders open at once, so the same
/// keys, sizes and partition spread), encoded once (schema id 1 is only a label here).
fn prepare_pool() -> Vec<Prepared> {
    let serializer = OrderEventSerializer::from_schema_id(1, "bench-value");
    let orders_open = usize::try_from(DEFAULT_ORDERS_OPEN).expect("small");
    let mut lifecycle = LifecycleGenerator::new(orders_open, 1, "order-producer");
    let mut rng = SmallRng::seed_from_u64(1);
    (0..POOL)
        .map(|_| {
            let event = lifecycle.next_event();
            Prepared {
                value: serializer.serialize(&event),
                traceparent: new_traceparent(&mut rng),
                event_type: event.event_type(),
                key: event.order_id,
            }
        })
        .collect()
}

async fn create_topic(kafka: &KafkaArgs, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .context("create topic")?;
    for result in results {
        if let Err((name, code)) = result {
            bail!("create topic {name}: {code}");
        }
    }
    // Wait until metadata shows the partitions, so the first sends do not wait on it.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))?;
        if metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.partitions().len() == partitions as usize)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {topic} has no {partitions} partitions after 15 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
