//! `orderflow dlq list|redrive`: flags, and the glue between them and the dead-letter
//! library (bounded reader, selection, redrive planning and producing).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use orderflow_runtime::kafka::{KafkaArgs, parse_duration};
use orderflow_runtime::shutdown::Shutdown;

use crate::dead_letter::listing::{record_json, render_line};
use crate::dead_letter::rate_pacer::parse_rate;
use crate::dead_letter::{
    AllowedTopics, Cursors, DlqReader, ListSummary, ReadScope, RedriveOptions, RedriveSummary,
    Redriver, Selection, parse_category,
};

/// Exit status of `redrive` when a delivery failed.
const EXIT_DELIVERY_FAILED: u8 = 1;
/// Exit status of `redrive` when a signal stopped it (the summary is still printed).
const EXIT_INTERRUPTED: u8 = 130;

/// Flags of `orderflow dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Print the records of a dead-letter topic, one line each (or JSON lines), then
    /// counts by error category and source topic. Reads by assignment up to the end
    /// offsets taken at start; joins no group and commits nothing.
    List(ListArgs),
    /// Replay chosen dead-letter records to their source topic (the dlq-source-topic
    /// header, which must name the DLQ's own source topic, its name without .dlq, or a
    /// topic given with --allow-topic): same key, original bytes, original headers
    /// without dlq-* bookkeeping, plus dlq-redrive-count. Records at --max-redrives stay
    /// in the DLQ. Resumable and once per record: a cursor committed under the group
    /// orderflow-dlq-redrive-cursor (.CATEGORY with --category) as replays are
    /// acknowledged makes a re-run continue after the last record handled; --again
    /// replays handled records too. Also commits, per DLQ partition, the end of the
    /// prefix it replayed under orderflow-dlq-redrive (the lag exporter's DLQ count drops
    /// by it). Prints a JSON summary on stdout (counts per category and target
    /// partition included, also with --dry-run), one line per skipped, refused or failed
    /// record on stderr, and progress when stderr is a terminal.
    #[command(
        after_help = "Exit status: 0 every selected record was replayed or skipped, \
                      1 a delivery failed, a record named a topic outside the allow-list \
                      (or an error such as a missing topic or an unreachable broker), \
                      130 interrupted by a signal (a re-run continues where it stopped)."
    )]
    Redrive(RedriveArgs),
}

/// Which records: shared by `list` and `redrive`.
#[derive(Debug, Args)]
struct SelectArgs {
    /// The dead-letter topic to read.
    #[arg(long, env = "DLQ_TOPIC", default_value = "orders.dlq")]
    topic: String,
    /// Only this partition of the DLQ topic.
    #[arg(long)]
    partition: Option<i32>,
    /// Only DLQ offsets at or after this one (per partition; pair with --partition).
    #[arg(long)]
    from_offset: Option<i64>,
    /// Only DLQ offsets at or before this one (inclusive, per partition).
    #[arg(long)]
    to_offset: Option<i64>,
    /// Only records of this error category (deserialization, schema, validation,
    /// processing, retries-exhausted).
    #[arg(long, value_parser = parse_category)]
    category: Option<String>,
    /// Give up when a partition delivers nothing for this long before its end offset.
    #[arg(long, env = "DLQ_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    read_timeout: Duration,
    #[command(flatten)]
    kafka: KafkaArgs,
}

impl SelectArgs {
    fn selection(&self) -> Selection {
        Selection {
            partition: self.partition,
            from_offset: self.from_offset,
            to_offset: self.to_offset,
            category: self.category.clone(),
        }
    }

    /// Checks the flags, then opens the bounded reader; no partition is read before its
    /// `resume_from` offset.
    fn open_reader(&self, resume_from: BTreeMap<i32, i64>) -> anyhow::Result<DlqReader> {
        let scope = ReadScope {
            partition: self.partition,
            from_offset: self.from_offset,
            to_offset: self.to_offset,
            resume_from,
            ..ReadScope::default()
        };
        let reader = DlqReader::open(
            &self.kafka.client_config(),
            &self.topic,
            &scope,
            self.read_timeout,
        )?;
        Ok(reader)
    }

    /// Checks the flags and waits for the brokers.
    async fn checked_selection(&self) -> anyhow::Result<Selection> {
        let selection = self.selection();
        selection.validate()?;
        self.kafka.wait_for_brokers().await?;
        Ok(selection)
    }
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Stop after this many listed records.
    #[arg(long)]
    limit: Option<u64>,
    /// One JSON object per record, then a {"summary": ...} line, instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RedriveArgs {
    #[command(flatten)]
    select: SelectArgs,
    /// Records replayed per second, at most.
    #[arg(long, env = "DLQ_REDRIVE_RATE", default_value = "50", value_parser = parse_rate)]
    rate: f64,
    /// Skip records already replayed this many times (their dlq-redrive-count), so a
    /// record that keeps failing is not replayed forever.
    #[arg(long, env = "DLQ_MAX_REDRIVES", default_value_t = 3)]
    max_redrives: u32,
    /// Show what would be replayed, with counts per category and target partition;
    /// produce nothing and move no cursor.
    #[arg(long)]
    dry_run: bool,
    /// Replay records an earlier redrive already handled too (ignore the cursor).
    #[arg(long)]
    again: bool,
    /// A topic replays may be written to besides the DLQ's own source topic (its name
    /// without .dlq); repeat for more. A record naming any other topic is refused.
    #[arg(long = "allow-topic", env = "DLQ_ALLOW_TOPICS", value_delimiter = ',')]
    allow_topics: Vec<String>,
    /// How long the producer may try to deliver one record before it counts as failed.
    #[arg(long, env = "DLQ_DELIVERY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    delivery_timeout: Duration,
}

/// Runs `orderflow dlq`.
pub async fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DlqCommand::List(args) => list(args).await,
        DlqCommand::Redrive(args) => redrive(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let selection = args.select.checked_selection().await?;
    let mut reader = args.select.open_reader(BTreeMap::new())?;
    let mut summary = ListSummary::default();
    let mut out = std::io::stdout().lock();
    while args.limit.is_none_or(|limit| summary.listed < limit) {
        let Some(record) = reader.next().await? else {
            break;
        };
        if !selection.matches(&record) {
            continue;
        }
        summary.add(&record);
        if args.json {
            writeln!(out, "{}", record_json(&record))?;
        } else {
            writeln!(out, "{}", render_line(&record))?;
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::json!({ "summary": summary }))?;
    } else {
        writeln!(out, "{}", summary.render_text())?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn redrive(args: RedriveArgs) -> anyhow::Result<ExitCode> {
    let shutdown = Shutdown::install();
    let allowed = AllowedTopics::for_dlq(&args.select.topic, &args.allow_topics)?;
    let selection = args.select.checked_selection().await?;
    let base = args.select.kafka.client_config();
    let cursors = Cursors::load(&base, &args.select.topic)?;
    let category = args.select.category.clone();
    let resume_from = if args.again {
        BTreeMap::new()
    } else {
        cursors_start(&cursors, category.as_deref())
    };
    let mut reader = args.select.open_reader(resume_from)?;
    let options = RedriveOptions {
        rate: args.rate,
        max_redrives: args.max_redrives,
        dry_run: args.dry_run,
        delivery_timeout: args.delivery_timeout,
        allowed,
        again: args.again,
        category,
    };
    let redriver = Redriver::new(&base, options, cursors)?;
    let terminal = std::io::stderr().is_terminal();
    let mut report = |line: String| {
        if terminal {
            // Clear the progress line first.
            eprint!("\r\x1b[2K");
        }
        eprintln!("orderflow dlq: {line}");
    };
    let mut progress = |summary: &RedriveSummary, read: u64, total: u64| {
        if terminal {
            let done = summary.redriven + summary.would_redrive;
            eprint!(
                "\r\x1b[2Kread {read}/{total}, redriven {done}, failed {}",
                summary.failed
            );
        }
    };
    let summary = redriver
        .run(
            &mut reader,
            &selection,
            &shutdown.token(),
            &mut report,
            &mut progress,
        )
        .await
        .with_context(|| format!("redrive from {}", args.select.topic))?;
    if terminal {
        eprintln!("\r\x1b[2K{}", summary.render_text());
    }
    println!("{}", serde_json::to_string(&summary)?);
    Ok(if summary.has_failures() {
        ExitCode::from(EXIT_DELIVERY_FAILED)
    } else if summary.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Where each partition is read from: past what earlier runs of this selection handled.
fn cursors_start(cursors: &Cursors, category: Option<&str>) -> BTreeMap<i32, i64> {
    let partitions = cursors
        .all
        .keys()
        .chain(cursors.by_category.values().flat_map(BTreeMap::keys));
    partitions
        .filter_map(|p| cursors.start(category, *p).map(|o| (*p, o)))
        .collect()
}
