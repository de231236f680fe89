//! Benchmark helpers for scripts/bench-consumer.sh: seed a topic with order
//! lifecycles, and what the engine is compared with: plain consumption (no
//! processing), the naive consumer (one transaction and one synchronous commit
//! per record) and PostgreSQL applying the same events alone (pg_limit.rs).

mod pg_limit;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use order_consumer::MIGRATOR;
use order_consumer::store::dedup_store::{self, ProcessedEvent};
use order_consumer::store::projection;
use order_consumer::worker::decode::EventDecoder;
use orderflow_runtime::kafka::parse_option;
use orderflow_schemas::{
    LineItem, OrderCreated, OrderEvent, OrderEventDeserializer, OrderEventSerializer, OrderPaid,
    OrderPayload, OrderShipped, RegistryClient,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message};
use sqlx::{Connection, Executor, PgConnection, PgPool};

#[derive(Debug, Parser)]
struct Args {
    /// Bootstrap brokers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Extra librdkafka setting for the bench's consumers (repeatable), so they can
    /// run with the same fetch settings as the engine.
    #[arg(long = "kafka-option", env = "KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_option)]
    options: Vec<(String, String)>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create TOPIC and TOPIC.dlq and fill TOPIC with ORDERS lifecycles (3 events each).
    Seed {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: i32,
        #[arg(long)]
        orders: usize,
        #[arg(long, env = "SCHEMA_REGISTRY_URL")]
        registry_url: String,
    },
    /// Create a fresh database on the admin URL's server, migrate it, print its URL.
    FreshDb {
        #[arg(long, env = "DATABASE_URL")]
        admin_url: String,
        #[arg(long)]
        name: String,
    },
    /// Drop every database whose name starts with PREFIX (a run's fresh databases).
    DropDbs {
        #[arg(long, env = "DATABASE_URL")]
        admin_url: String,
        #[arg(long)]
        prefix: String,
    },
    /// Read COUNT records with no processing; print records/s.
    Plain {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        count: usize,
    },
    /// Per record: decode, one transaction (dedup + effect), one synchronous commit.
    Naive {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        database_url: String,
        #[arg(long, env = "SCHEMA_REGISTRY_URL")]
        registry_url: String,
    },
    /// The physical limit: read and decode COUNT records into a staging table of a
    /// fresh database (not timed), then time PostgreSQL alone applying them with the
    /// consumer's SQL, batch by batch; print records/s.
    PgLimit {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        count: usize,
        /// A fresh, migrated database (`consumer-bench fresh-db`).
        #[arg(long)]
        database_url: String,
        #[arg(long, env = "SCHEMA_REGISTRY_URL")]
        registry_url: String,
        /// Most events per transaction; the engine's --batch-size default.
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
        /// Transactions at once; the engine's --db-concurrency default.
        #[arg(long, default_value_t = 4)]
        sessions: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Seed {
            topic,
            partitions,
            orders,
            registry_url,
        } => seed(&args.brokers, &topic, partitions, orders, &registry_url).await,
        Command::FreshDb { admin_url, name } => {
            let mut admin = PgConnection::connect(&admin_url).await?;
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await?;
            let url = match admin_url.rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => bail!("admin URL has no database part"),
            };
            MIGRATOR.run(&PgPool::connect(&url).await?).await?;
            println!("{url}");
            Ok(())
        }
        Command::DropDbs { admin_url, prefix } => {
            let mut admin = PgConnection::connect(&admin_url).await?;
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
            )
            .bind(&prefix)
            .fetch_all(&mut admin)
            .await?;
            for name in names {
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE \"{name}\" WITH (FORCE)"
                    )))
                    .await?;
            }
            Ok(())
        }
        Command::Plain { topic, count } => {
            let consumer = consumer(&args.brokers, &args.options, &topic)?;
            let mut first = None;
            for _ in 0..count {
                consumer.recv().await?;
                first.get_or_insert_with(Instant::now);
            }
            report("plain", count, first);
            Ok(())
        }
        Command::Naive {
            topic,
            count,
            database_url,
            registry_url,
        } => {
            let consumer = consumer(&args.brokers, &args.options, &topic)?;
            naive(consumer, &topic, count, &database_url, &registry_url).await
        }
        Command::PgLimit {
            topic,
            count,
            database_url,
            registry_url,
            batch_size,
            sessions,
        } => {
            let consumer = consumer(&args.brokers, &args.options, &topic)?;
            let settings = pg_limit::Settings {
                topic: &topic,
                count,
                database_url: &database_url,
                registry_url: &registry_url,
                batch_size,
                sessions,
            };
            pg_limit::run(consumer, &settings).await
        }
    }
}

fn report(name: &str, count: usize, first: Option<Instant>) {
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64()).max(1e-9);
    println!(
        "{{\"mode\":\"{name}\",\"records\":{count},\"active_secs\":{secs:.3},\"records_per_sec\":{:.0}}}",
        count as f64 / secs
    );
}

fn consumer(
    brokers: &str,
    options: &[(String, String)],
    topic: &str,
) -> anyhow::Result<StreamConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("bench-{}", uuid::Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    for (key, value) in options {
        config.set(key, value);
    }
    let consumer: StreamConsumer = config.create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

async fn naive(
    consumer: StreamConsumer,
    topic: &str,
    count: usize,
    database_url: &str,
    registry_url: &str,
) -> anyhow::Result<()> {
    let pool = PgPool::connect(database_url).await?;
    let decoder = EventDecoder::new(OrderEventDeserializer::new(RegistryClient::new(
        registry_url,
    )?));
    let mut first = None;
    for _ in 0..count {
        let message = consumer.recv().await?;
        first.get_or_insert_with(Instant::now);
        let event = decoder
            .decode(message.key(), message.payload())
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut tx = pool.begin().await?;
        let ids = vec![event.event_id.clone()];
        if dedup_store::already_processed(&mut tx, "naive", &ids)
            .await?
            .is_empty()
        {
            let orders =
                projection::lock_orders(&mut tx, std::slice::from_ref(&event.order_id)).await?;
            let row = projection::apply(orders.get(&event.order_id), &event)
                .map_err(anyhow::Error::msg)?;
            let processed = ProcessedEvent {
                event_id: event.event_id.clone(),
                topic: topic.to_owned(),
                partition: message.partition(),
                offset: message.offset(),
            };
            dedup_store::insert_processed(&mut tx, "naive", &[processed]).await?;
            let read_applied = orders.get(&event.order_id).map(|o| o.events_applied);
            if !projection::store_orders(&mut tx, &[&row], |_| read_applied).await? {
                anyhow::bail!("order {} written concurrently", event.order_id);
            }
        }
        tx.commit().await?;
        consumer.commit_message(&message, CommitMode::Sync)?;
    }
    report("naive", count, first);
    Ok(())
}

async fn seed(
    brokers: &str,
    topic: &str,
    partitions: i32,
    orders: usize,
    registry_url: &str,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let dlq = format!("{topic}.dlq");
    let topics = [
        NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
        NewTopic::new(&dlq, partitions, TopicReplication::Fixed(1)),
    ];
    for result in admin.create_topics(&topics, &AdminOptions::new()).await? {
        result.map_err(|(t, e)| anyhow::anyhow!("create {t}: {e}"))?;
    }
    let registry = RegistryClient::new(registry_url)?;
    let serializer = OrderEventSerializer::new(&registry, topic)
        .await
        .context("register schema")?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.num.messages", "5000")
        .create()?;
    wait_for_leaders(&producer, topic, partitions).await?;
    // Round-robin over orders so every order's three events are spread out.
    for step in 0..3 {
        let mut pending = Vec::with_capacity(orders);
        for i in 0..orders {
            let order_id = format!("bench-{i}");
            let event = event(&order_id, step);
            let value = serializer.serialize(&event);
            let record = FutureRecord::to(topic).key(&order_id).payload(&value);
            pending.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        for delivery in pending {
            delivery.await?.map_err(|(e, _)| e)?;
        }
    }
    println!("{}", orders * 3);
    Ok(())
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

fn event(order_id: &str, step: usize) -> OrderEvent {
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
    OrderEvent::new(order_id, "bench", payload)
}
