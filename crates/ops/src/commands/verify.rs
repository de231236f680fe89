//! `orderflow verify`: reads the source topic, the dead-letter topic (both with the shared
//! bounded reader, from the start to the end offsets taken at start), the consumer's database and the
//! group's committed offsets, and checks the exactly-once ledger
//! ([`crate::verify::check`]). Shares nothing with the consumer but the schema types.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use orderflow_contracts::dead_letter::{DeadLetterHeaders, dlq_topic};
use orderflow_runtime::bounded_read::{
    BoundedReader, ReadScope, committed_and_end_offsets, settle_ends_behind_markers,
};
use orderflow_runtime::kafka::{KafkaArgs, parse_duration};
use orderflow_schemas::OrderEventDeserializer;
use orderflow_schemas::RegistryArgs;
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message};
use sqlx::Row;
use sqlx::postgres::PgPoolOptions;

use crate::verify::{Acknowledged, AppliedRow, DeadLetter, Observed, SourceRecord, check};

/// Group id of the topic readers; they assign partitions and never commit.
const READER_GROUP: &str = "orderflow-verify";

/// Flags of `orderflow verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Kafka connection.
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Schema registry, to decode the source records.
    #[command(flatten)]
    registry: RegistryArgs,
    /// Source topic the consumer group read.
    #[arg(long, env = "CONSUMER_TOPIC", default_value = "orders")]
    topic: String,
    /// Dead-letter topic [default: <topic>.dlq].
    #[arg(long, env = "DLQ_TOPIC")]
    dlq_topic: Option<String>,
    /// Consumer group whose work is checked.
    #[arg(long, env = "CONSUMER_GROUP", default_value = "order-projection")]
    group: String,
    /// PostgreSQL URL of the consumer's database (processed_events, orders).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// How long a partition may deliver nothing before its end offset is reached.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    stall_timeout: Duration,
    /// JSON lines of the changes the order API acknowledged with a 2xx (`{"order_id",
    /// "event_id", "event_type"}` each, as the chaos harness's HTTP workload writes them): each
    /// must be in the topic exactly once.
    #[arg(long, value_name = "FILE")]
    http_log: Option<PathBuf>,
}

/// Prints the JSON summary on stdout and one line per violation on stderr; exit 1 on any.
pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // A bad log file is the caller's mistake: say so before reading any topic.
    let acknowledged = match &args.http_log {
        Some(path) => read_http_log(path)?,
        None => Vec::new(),
    };
    let dlq_topic = args
        .dlq_topic
        .clone()
        .unwrap_or_else(|| dlq_topic(&args.topic));
    let base = args.kafka.client_config();

    let source = read_topic(&base, &args.topic, args.stall_timeout).await?;
    let mut offsets = {
        let (base, topic, group) = (base.clone(), args.topic.clone(), args.group.clone());
        tokio::task::spawn_blocking(move || committed_offsets(&base, &topic, &group)).await??
    };
    // The relay writes in transactions: commit markers after a group's last record
    // leave it short of the log end although it read everything.
    settle_ends_behind_markers(&mut offsets, source.iter().map(|r| (r.partition, r.offset)));
    let dead_letters = read_topic(&base, &dlq_topic, args.stall_timeout)
        .await?
        .into_iter()
        .filter(|r| r.dead_letter.source_topic.as_deref() == Some(args.topic.as_str()))
        .map(|r| dead_letter(&r))
        .collect::<Vec<_>>();

    let deserializer = OrderEventDeserializer::new(
        args.registry
            .client(args.kafka.config_file.as_ref())
            .context("schema registry settings")?,
    );
    let mut observed = Observed {
        dead_letters,
        offsets,
        acknowledged,
        ..Observed::default()
    };
    for record in source {
        let classified = classify(&deserializer, record.value.as_deref()).await?;
        observed
            .source
            .insert((record.partition, record.offset), classified);
    }

    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&args.database_url)
        .await
        .context("connect to the consumer's database")?;
    observed.applied =
        sqlx::query("SELECT event_id FROM processed_events WHERE consumer_group = $1")
            .bind(&args.group)
            .fetch_all(&pool)
            .await
            .context("read processed_events")?
            .into_iter()
            .map(|row| {
                row.try_get::<String, _>("event_id")
                    .map(|event_id| AppliedRow { event_id })
            })
            .collect::<Result<_, _>>()?;
    observed.projection = sqlx::query("SELECT order_id, events_applied FROM orders")
        .fetch_all(&pool)
        .await
        .context("read orders")?
        .into_iter()
        .map(|row| {
            Ok::<_, sqlx::Error>((
                row.try_get::<String, _>("order_id")?,
                i64::from(row.try_get::<i32, _>("events_applied")?),
            ))
        })
        .collect::<Result<HashMap<_, _>, _>>()?;

    let (summary, violations) = check(&observed);
    println!("{}", serde_json::to_string(&summary)?);
    for violation in &violations {
        eprintln!("violation: {violation}");
    }
    Ok(if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The acknowledged changes of `path`, one JSON object a line (blank lines skipped).
fn read_http_log(path: &Path) -> anyhow::Result<Vec<Acknowledged>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read --http-log {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("--http-log {} line {}", path.display(), n + 1))
        })
        .collect()
}

/// A record as read, owned: what the verifier needs of it.
struct Raw {
    partition: i32,
    offset: i64,
    value: Option<Vec<u8>>,
    dead_letter: DeadLetterHeaders,
}

fn raw(message: &BorrowedMessage<'_>) -> Raw {
    Raw {
        partition: message.partition(),
        offset: message.offset(),
        value: message.payload().map(<[u8]>::to_vec),
        dead_letter: message
            .headers()
            .map(DeadLetterHeaders::from_kafka)
            .unwrap_or_default(),
    }
}

fn dead_letter(record: &Raw) -> DeadLetter {
    DeadLetter {
        source: record.dead_letter.source_position(),
        category: record.dead_letter.category.clone(),
        message: record.dead_letter.message.clone(),
    }
}

/// Poison unless the schema types decode and validate it. A registry that cannot be
/// reached is an error, not poison.
async fn classify(
    deserializer: &OrderEventDeserializer,
    value: Option<&[u8]>,
) -> anyhow::Result<SourceRecord> {
    let Some(value) = value else {
        return Ok(SourceRecord::Poison {
            why: "no value".into(),
        });
    };
    match deserializer.deserialize(value).await {
        Ok(event) => match event.validate() {
            Ok(()) => Ok(SourceRecord::Event {
                event_id: event.event_id.to_string(),
                event_type: event.event_type().to_string(),
                order_id: event.order_id,
            }),
            Err(error) => Ok(SourceRecord::Poison {
                why: error.to_string(),
            }),
        },
        Err(error) if error.is_transient() => Err(anyhow!(error)).context("decode a record"),
        Err(error) => Ok(SourceRecord::Poison {
            why: error.to_string(),
        }),
    }
}

/// Every record of `topic` from the log start to the end offsets taken now.
async fn read_topic(base: &ClientConfig, topic: &str, stall: Duration) -> anyhow::Result<Vec<Raw>> {
    let reader = BoundedReader::open(base, READER_GROUP, topic, &ReadScope::default(), stall, raw)
        .with_context(|| format!("open a reader of {topic}"))?;
    reader
        .collect()
        .await
        .with_context(|| format!("read {topic}"))
}

/// Per partition of `topic`: the offset `group` committed and the log end.
fn committed_offsets(
    base: &ClientConfig,
    topic: &str,
    group: &str,
) -> anyhow::Result<BTreeMap<i32, (Option<i64>, i64)>> {
    committed_and_end_offsets(base, topic, group)
        .with_context(|| format!("committed offsets of group {group} on {topic}"))
}
