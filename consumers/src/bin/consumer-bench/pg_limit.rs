//! `consumer-bench pg-limit`: the physical limit of the exactly-once consumer on
//! this PostgreSQL server. The seeded events are read once, decoded and loaded
//! into a staging table (not timed); then PostgreSQL alone applies them with the
//! consumer's own statements (consumers/sql/), batch after batch inside a PL/pgSQL
//! procedure: no Kafka, no decoding, no client round trip at all while timed.
//!
//! It is a fair limit because it keeps everything the engine's database work
//! consists of and removes only what is not database work: the same four
//! statements per transaction (dedup check, order lock, dedup insert, order
//! upsert), the same batch size (at most one event per order, at most
//! `--batch-size` events), one commit (one WAL flush) per batch, and as many
//! sessions in parallel as the engine's `--db-concurrency`, each on its own orders.

use std::time::Instant;

use anyhow::{Context, bail};
use futures::future::try_join_all;
use order_consumer::store::projection::{Effect, ProjectionEvent};
use order_consumer::worker::decode::EventDecoder;
use orderflow_schemas::{OrderEventDeserializer, RegistryClient};
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;
use sqlx::{Connection, PgConnection, PgPool, Row};

/// The consumer's statements, passed to the procedure verbatim.
const SELECT_PROCESSED: &str = include_str!("../../../sql/select_processed.sql");
const LOCK_ORDERS: &str = include_str!("../../../sql/lock_orders.sql");
const INSERT_PROCESSED: &str = include_str!("../../../sql/insert_processed.sql");
const UPSERT_ORDERS: &str = include_str!("../../../sql/upsert_orders.sql");

/// Dedup group the procedure writes under.
const GROUP: &str = "pg-limit";

/// How the limit run is set up.
#[derive(Debug)]
pub struct Settings<'a> {
    /// Topic holding the seeded events.
    pub topic: &'a str,
    /// How many records to read from it.
    pub count: usize,
    /// A fresh, migrated database.
    pub database_url: &'a str,
    /// Registry for decoding.
    pub registry_url: &'a str,
    /// Most events per transaction (the engine's --batch-size).
    pub batch_size: usize,
    /// Transactions at once (the engine's --db-concurrency).
    pub sessions: usize,
}

/// A decoded event with its source position and arrival order.
struct StagedEvent {
    seq: i64,
    event: ProjectionEvent,
    partition: i32,
    offset: i64,
}

/// Reads and decodes the events, stages them, times the procedure, checks that
/// every event was applied once, and prints one JSON line.
pub async fn run(consumer: StreamConsumer, settings: &Settings<'_>) -> anyhow::Result<()> {
    if settings.batch_size == 0 || settings.sessions == 0 {
        bail!("--batch-size and --sessions must be at least 1");
    }
    let events = read_events(&consumer, settings).await?;
    drop(consumer);

    let pool = PgPool::connect(settings.database_url).await?;
    sqlx::raw_sql(include_str!("pg_limit_setup.sql"))
        .execute(&pool)
        .await
        .context("create the staging table and procedure")?;
    stage(&pool, settings, &events).await?;
    let batches: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT DISTINCT session, batch_no FROM pg_limit_events) b",
    )
    .fetch_one(&pool)
    .await?;

    let mut sessions = Vec::with_capacity(settings.sessions);
    for _ in 0..settings.sessions {
        sessions.push(PgConnection::connect(settings.database_url).await?);
    }
    let start = Instant::now();
    try_join_all(
        sessions
            .iter_mut()
            .enumerate()
            .map(|(session, connection)| {
                sqlx::query("CALL pg_limit_apply($1, $2, $3, $4, $5, $6)")
                    .bind(GROUP)
                    .bind(i32::try_from(session).unwrap_or(i32::MAX))
                    .bind(SELECT_PROCESSED)
                    .bind(LOCK_ORDERS)
                    .bind(INSERT_PROCESSED)
                    .bind(UPSERT_ORDERS)
                    .execute(connection)
            }),
    )
    .await
    .context("CALL pg_limit_apply")?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);

    verify(&pool, events.len()).await?;
    println!(
        "{{\"mode\":\"pg-limit\",\"records\":{},\"active_secs\":{secs:.3},\"records_per_sec\":{:.0},\"sessions\":{},\"batch_size\":{},\"transactions\":{batches}}}",
        events.len(),
        events.len() as f64 / secs,
        settings.sessions,
        settings.batch_size,
    );
    Ok(())
}

async fn read_events(
    consumer: &StreamConsumer,
    settings: &Settings<'_>,
) -> anyhow::Result<Vec<StagedEvent>> {
    let decoder = EventDecoder::new(OrderEventDeserializer::new(RegistryClient::new(
        settings.registry_url,
    )?));
    let mut events = Vec::with_capacity(settings.count);
    for seq in 0..settings.count {
        let message = consumer.recv().await?;
        let event = decoder
            .decode(message.key(), message.payload())
            .await
            .map_err(|e| {
                anyhow::anyhow!("decode {}/{}: {e:?}", message.partition(), message.offset())
            })?;
        events.push(StagedEvent {
            seq: i64::try_from(seq)?,
            event,
            partition: message.partition(),
            offset: message.offset(),
        });
    }
    Ok(events)
}

/// One INSERT of all events (pg_limit_load.sql), then statistics for the planner.
async fn stage(
    pool: &PgPool,
    settings: &Settings<'_>,
    events: &[StagedEvent],
) -> anyhow::Result<()> {
    let created: Vec<_> = events
        .iter()
        .map(|e| match &e.event.effect {
            Effect::Created {
                customer_id,
                currency,
                total_cents,
                item_count,
            } => Some((
                customer_id.clone(),
                currency.clone(),
                *total_cents,
                *item_count,
            )),
            _ => None,
        })
        .collect();
    let paid: Vec<Option<i64>> = events
        .iter()
        .map(|e| match e.event.effect {
            Effect::Paid { amount_cents } => Some(amount_cents),
            _ => None,
        })
        .collect();
    let of_created = |f: fn(&(String, String, i64, i32)) -> Option<String>| {
        created
            .iter()
            .map(|c| c.as_ref().and_then(f))
            .collect::<Vec<_>>()
    };
    sqlx::query(include_str!("pg_limit_load.sql"))
        .bind(events.iter().map(|e| e.seq).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.event.event_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| e.event.order_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| e.event.occurred_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| kind(&e.event.effect))
                .collect::<Vec<_>>(),
        )
        .bind(of_created(|c| Some(c.0.clone())))
        .bind(of_created(|c| Some(c.1.clone())))
        .bind(
            created
                .iter()
                .map(|c| c.as_ref().map(|c| c.2))
                .collect::<Vec<_>>(),
        )
        .bind(
            created
                .iter()
                .map(|c| c.as_ref().map(|c| c.3))
                .collect::<Vec<_>>(),
        )
        .bind(paid)
        .bind(vec![settings.topic.to_owned(); events.len()])
        .bind(events.iter().map(|e| e.partition).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.offset).collect::<Vec<_>>())
        .bind(i64::try_from(settings.sessions)?)
        .bind(i64::try_from(settings.batch_size)?)
        .execute(pool)
        .await
        .context("load the staging table")?;
    sqlx::raw_sql("ANALYZE pg_limit_events")
        .execute(pool)
        .await?;
    Ok(())
}

fn kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::Created { .. } => "created",
        Effect::Paid { .. } => "paid",
        Effect::Shipped => "shipped",
        Effect::Cancelled => "cancelled",
    }
}

/// Every event has its dedup row and counts once in its order.
async fn verify(pool: &PgPool, expected: usize) -> anyhow::Result<()> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM processed_events WHERE consumer_group = $1) AS processed,
                (SELECT coalesce(sum(events_applied), 0) FROM orders) AS applied",
    )
    .bind(GROUP)
    .fetch_one(pool)
    .await?;
    let processed: i64 = row.try_get("processed")?;
    let applied: i64 = row.try_get("applied")?;
    let expected = i64::try_from(expected)?;
    if processed != expected || applied != expected {
        bail!("expected {expected} events applied once; dedup rows {processed}, applied {applied}");
    }
    Ok(())
}
