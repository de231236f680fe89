//! The independent verifier: reads the source topic, its DLQ, the consumer's tables and
//! the group's committed offsets, decodes with its own decoder ([`decode`]) and judges
//! with its own model of the projection ([`model`]). `orderflow verify` is the first
//! opinion (it shares the schema types with the consumer); this is the second. It also
//! checks that each order's events are in the topic in the order the order service
//! committed them ([`commit_order`]).

pub mod commit_order;
pub mod decode;
pub mod model;
pub mod read;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use orderflow_runtime::bounded_read::settle_ends_behind_markers;
use sqlx::postgres::PgPoolOptions;

use model::Observed;
pub use model::{DlqDuplicates, Ledger, Verdict};

// The DLQ contract's header names: a contract, not the consumer's code, so the
// independent verifier shares them (and only them).
use orderflow_contracts::dead_letter::headers::{SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC};

/// What to verify.
#[derive(Debug, Clone)]
pub struct Target {
    /// Bootstrap brokers.
    pub brokers: String,
    /// Schema registry (ccompat base URL).
    pub registry: String,
    /// Source topic.
    pub topic: String,
    /// Dead-letter topic.
    pub dlq_topic: String,
    /// Consumer group.
    pub group: String,
    /// The consumer's database.
    pub database_url: String,
    /// How long a partition may deliver nothing before its end is reached.
    pub stall_timeout: Duration,
}

/// Reads everything and judges it.
pub async fn verify(target: &Target, dlq_duplicates: DlqDuplicates) -> anyhow::Result<Verdict> {
    let source = read::read_topic(&target.brokers, &target.topic, target.stall_timeout).await?;
    let letters =
        read::read_topic(&target.brokers, &target.dlq_topic, target.stall_timeout).await?;
    // Blocking librdkafka calls (metadata, watermarks, committed offsets): off the runtime.
    let (brokers, topic, group) = (
        target.brokers.clone(),
        target.topic.clone(),
        target.group.clone(),
    );
    let mut offsets =
        tokio::task::spawn_blocking(move || read::committed_offsets(&brokers, &topic, &group))
            .await??;
    // Commit markers after a group's last record: still at the end.
    settle_ends_behind_markers(&mut offsets, source.iter().map(|r| (r.partition, r.offset)));

    let mut observed = Observed {
        offsets,
        ..Observed::default()
    };
    let mut decoder = decode::Decoder::new(&target.registry);
    let mut first_record_ms = HashMap::new();
    for record in source {
        let decoded = decoder.decode(record.value.as_deref()).await?;
        // A partition is read in offset order, and an event's copies share its key.
        if let (model::Decoded::Event(event), Some(ms)) = (&decoded, record.timestamp_ms) {
            first_record_ms.entry(event.event_id.clone()).or_insert(ms);
        }
        observed
            .source
            .insert((record.partition, record.offset), decoded);
    }
    observed.dead_letters = letters
        .iter()
        .filter(|r| r.header(SOURCE_TOPIC).as_deref() == Some(target.topic.as_str()))
        .map(|r| {
            let partition = r.header(SOURCE_PARTITION)?.parse().ok()?;
            let offset = r.header(SOURCE_OFFSET)?.parse().ok()?;
            Some((partition, offset))
        })
        .collect();

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&target.database_url)
        .await
        .context("connect to the consumer's database")?;
    observed.applied = read::applied(&pool, &target.group, &target.topic).await?;
    observed.projection = read::projection(&pool).await?;
    let committed = read::committed_events(&pool).await?;
    pool.close().await;
    let mut verdict = model::check(&observed, dlq_duplicates);
    verdict.first_record_ms = first_record_ms;
    verdict
        .violations
        .extend(commit_order::check(&observed.source, &committed));
    Ok(verdict)
}
