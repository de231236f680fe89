//! Benchmark helpers for scripts/bench-consumer.sh: seed a topic with order
//! lifecycles, and what the engine is compared with: plain consumption (no
//! processing), the naive consumer (one transaction and one synchronous commit
//! per record) and PostgreSQL applying the same events alone (pg_limit.rs).

mod fill_dedup;
mod pg_limit;
mod seed;

use std::time::Instant;

use anyhow::bail;
use clap::{Parser, Subcommand};
use order_consumer::MIGRATOR;
use order_consumer::store::dedup_store::{self, ProcessedEvent};
use order_consumer::store::projection;
use order_consumer::worker::decode::EventDecoder;
use orderflow_runtime::kafka::parse_option;
use orderflow_schemas::{OrderEventDeserializer, RegistryClient};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
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
    /// Create TOPIC and TOPIC.dlq and fill TOPIC with ORDERS lifecycles (3 events
    /// each) plus EXTRA copies of written events spread by SKEW; print the count.
    Seed {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: i32,
        #[arg(long)]
        orders: usize,
        /// Extra copies of already written events (redeliveries), spread by --skew.
        #[arg(long, default_value_t = 0)]
        extra: usize,
        /// Which orders get the extra copies.
        #[arg(long, value_enum, default_value = "uniform")]
        skew: seed::Skew,
        /// Bytes of padding in every event (the record-size curve).
        #[arg(long, default_value_t = 0)]
        padding: usize,
        #[arg(long, env = "SCHEMA_REGISTRY_URL")]
        registry_url: String,
    },
    /// Fill the dedup table of a fresh database with COUNT rows of GROUP
    /// (generate_series, in slices of a million), as a long retention leaves them.
    FillDedup {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        count: u64,
        /// The group the rows belong to (the group of the runs that follow).
        #[arg(long)]
        group: String,
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
            extra,
            skew,
            padding,
            registry_url,
        } => {
            let plan = seed::Plan {
                brokers: &args.brokers,
                topic: &topic,
                partitions,
                orders,
                extra,
                skew,
                padding,
                registry_url: &registry_url,
            };
            println!("{}", seed::seed(&plan).await?);
            Ok(())
        }
        Command::FillDedup {
            database_url,
            count,
            group,
        } => fill_dedup::run(&database_url, count, &group).await,
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
        let keys = vec![(event.order_id.clone(), event.event_id.clone())];
        if dedup_store::already_processed(&mut tx, "naive", &keys)
            .await?
            .is_empty()
        {
            let orders =
                projection::lock_orders(&mut tx, std::slice::from_ref(&event.order_id)).await?;
            let row = projection::apply(orders.get(&event.order_id), &event)
                .map_err(anyhow::Error::msg)?;
            let processed = ProcessedEvent {
                order_id: event.order_id.clone(),
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
