//! `consumer-bench seed`: a topic of order lifecycles (created, paid, shipped), with
//! optional extra copies of events spread over the orders by a key distribution (the
//! skew curves: redelivered copies keep every event valid, so the work is the same
//! kind for every contender) and optional padding (the record-size curve).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::ValueEnum;
use orderflow_schemas::{
    LineItem, OrderCreated, OrderEvent, OrderEventSerializer, OrderPaid, OrderPayload,
    OrderShipped, RegistryClient,
};
use rand::Rng;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// How the extra copies are spread over the orders.
#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub enum Skew {
    /// Every order equally likely.
    Uniform,
    /// Zipf with exponent 1.2 over the orders (a few hot orders, a long tail).
    Zipf,
    /// All extra copies on one order.
    Hot,
}

/// What to write.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Bootstrap brokers.
    pub brokers: &'a str,
    /// Topic to create and fill (and TOPIC.dlq).
    pub topic: &'a str,
    /// Partitions of both topics.
    pub partitions: i32,
    /// Order lifecycles of 3 events.
    pub orders: usize,
    /// Extra copies of already written events, after each step.
    pub extra: usize,
    /// Who gets the extra copies.
    pub skew: Skew,
    /// Bytes of padding in each event (the producer field).
    pub padding: usize,
    /// Schema registry.
    pub registry_url: &'a str,
}

/// Creates the topics, writes the events and returns how many were written.
pub async fn seed(plan: &Plan<'_>) -> anyhow::Result<usize> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", plan.brokers)
        .create()?;
    let dlq = orderflow_contracts::dead_letter::dlq_topic(plan.topic);
    let topics = [
        NewTopic::new(plan.topic, plan.partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&dlq, plan.partitions, TopicReplication::Fixed(1)),
    ];
    for result in admin.create_topics(&topics, &AdminOptions::new()).await? {
        result.map_err(|(t, e)| anyhow::anyhow!("create {t}: {e}"))?;
    }
    let registry = RegistryClient::new(plan.registry_url)?;
    let serializer = OrderEventSerializer::new(&registry, plan.topic)
        .await
        .context("register schema")?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", plan.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.num.messages", "5000")
        .create()?;
    wait_for_leaders(&producer, plan.topic, plan.partitions).await?;
    let producer_name = format!("bench{}", "x".repeat(plan.padding));
    let picker = Picker::new(plan.skew, plan.orders);
    let mut rng = StdRng::seed_from_u64(42);
    let mut written = 0;
    // Step by step over all orders, so every order's events are spread out; each
    // step's copies repeat events of steps already written, so a copy never comes
    // before its original.
    let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::with_capacity(3); plan.orders];
    for step in 0..3 {
        let mut batch: Vec<(usize, Vec<u8>)> = Vec::with_capacity(plan.orders);
        for (i, events) in sent.iter_mut().enumerate() {
            let value = serializer.serialize(&event(&order_id(i), step, &producer_name));
            events.push(value.clone());
            batch.push((i, value));
        }
        for _ in 0..plan.extra / 3 + usize::from(step < plan.extra % 3) {
            let i = picker.pick(&mut rng);
            let copy = rng.random_range(0..=step);
            batch.push((i, sent[i][copy].clone()));
        }
        written += send_all(&producer, plan.topic, &batch).await?;
    }
    Ok(written)
}

async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    batch: &[(usize, Vec<u8>)],
) -> anyhow::Result<usize> {
    let mut pending = Vec::with_capacity(batch.len());
    for (i, value) in batch {
        let key = order_id(*i);
        let record = FutureRecord::to(topic).key(&key).payload(value);
        pending.push(producer.send_result(record).map_err(|(e, _)| e)?);
    }
    for delivery in pending {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    Ok(batch.len())
}

fn order_id(i: usize) -> String {
    format!("bench-{i}")
}

/// Draws an order index by the skew: a cumulative table for Zipf, searched by bisection.
struct Picker {
    skew: Skew,
    orders: usize,
    cumulative: Vec<f64>,
}

impl Picker {
    fn new(skew: Skew, orders: usize) -> Self {
        let mut cumulative = Vec::new();
        if skew == Skew::Zipf {
            let mut sum = 0.0;
            for rank in 1..=orders {
                sum += 1.0 / (rank as f64).powf(1.2);
                cumulative.push(sum);
            }
        }
        Self {
            skew,
            orders,
            cumulative,
        }
    }

    fn pick(&self, rng: &mut StdRng) -> usize {
        match self.skew {
            Skew::Uniform => rng.random_range(0..self.orders),
            Skew::Hot => 0,
            Skew::Zipf => {
                let total = self.cumulative.last().copied().unwrap_or(0.0);
                let x = rng.random::<f64>() * total;
                self.cumulative
                    .partition_point(|&c| c < x)
                    .min(self.orders - 1)
            }
        }
    }
}

/// Waits until the producer's metadata shows every partition of the new topic with
/// a leader: right after CreateTopics a send can otherwise fail with "unknown
/// partition".
async fn wait_for_leaders(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let ready = metadata.topics().iter().any(|t| {
            t.name() == topic
                && t.error().is_none()
                && t.partitions().len() == usize::try_from(partitions).unwrap_or(0)
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {topic} has no leader for all {partitions} partitions after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn event(order_id: &str, step: usize, producer: &str) -> OrderEvent {
    let payload = match step {
        0 => OrderPayload::Created(OrderCreated {
            customer_id: "c".into(),
            items: vec![LineItem {
                sku: "s".into(),
                quantity: 2,
                unit_price_cents: 500,
            }],
            currency: "EUR".into(),
            total_cents: 1_000,
        }),
        1 => OrderPayload::Paid(OrderPaid {
            payment_id: "p".into(),
            amount_cents: 1_000,
        }),
        _ => OrderPayload::Shipped(OrderShipped {
            carrier: "c".into(),
            tracking_number: "t".into(),
        }),
    };
    OrderEvent::new(order_id, producer, payload)
}
