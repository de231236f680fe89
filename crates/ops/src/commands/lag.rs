//! `orderflow lag [--group G] [--json] [--watch]` and `orderflow lag serve`: flags, and
//! the glue between them and the lag engine.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use orderflow_lag::compute::ResetPolicy;
use orderflow_lag::serve::ServeConfig;
use orderflow_lag::{EngineConfig, LagEngine};
use orderflow_runtime::kafka::{KafkaArgs, parse_duration};
use orderflow_runtime::shutdown::Shutdown;

/// Flags of `orderflow lag`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LagArgs {
    #[command(subcommand)]
    command: Option<LagCommand>,
    #[command(flatten)]
    show: ShowArgs,
}

#[derive(Debug, Subcommand)]
enum LagCommand {
    /// Poll in the background and serve /metrics (Prometheus), /api/groups,
    /// /api/history and the live dashboard on one address.
    Serve(ServeArgs),
}

/// Flags of the one-shot (or --watch) table.
#[derive(Debug, Args)]
struct ShowArgs {
    /// Print JSON (one snapshot per line with --watch) instead of the table.
    #[arg(long)]
    json: bool,
    /// Refresh every --interval until interrupted; rates and status need this (a
    /// single read has no window to judge progress over).
    #[arg(long)]
    watch: bool,
    /// Time between two reads with --watch.
    #[arg(long, env = "LAG_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Flags of `orderflow lag serve`.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Address of the metrics, API and dashboard server.
    #[arg(long, env = "LAG_LISTEN", default_value = "127.0.0.1:9300")]
    listen: SocketAddr,
    /// Time between the starts of two poll cycles.
    #[arg(long, env = "LAG_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// How much history the dashboard's charts keep in memory.
    #[arg(long, env = "LAG_HISTORY", default_value = "1h", value_parser = parse_duration)]
    history: Duration,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
}

/// Where a group that never committed a partition would start.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum NoCommitReset {
    /// Count every record from the log start as lag (auto.offset.reset=earliest).
    Earliest,
    /// Count nothing until the group commits (auto.offset.reset=latest).
    Latest,
}

/// Flags of the lag engine, shared by both modes.
#[derive(Debug, Args)]
struct EngineArgs {
    /// Only this group (repeatable; env: comma-separated). Default: every consumer group.
    #[arg(long = "group", env = "LAG_GROUPS", value_delimiter = ',')]
    groups: Vec<String>,
    /// Group whose consumers read with isolation.level=read_committed: its lag is
    /// measured against the last stable offset instead of the high watermark
    /// (repeatable; env: comma-separated). Kafka does not tell a group's isolation.
    #[arg(
        long = "read-committed-group",
        env = "LAG_READ_COMMITTED_GROUPS",
        value_delimiter = ','
    )]
    read_committed_groups: Vec<String>,
    /// Lag of partitions a group never committed, following its auto.offset.reset.
    #[arg(
        long,
        env = "LAG_NO_COMMIT_RESET",
        value_enum,
        default_value = "earliest"
    )]
    no_commit_reset: NoCommitReset,
    /// Sliding window for rates and status (STOPPED means no progress for this long).
    #[arg(long, env = "LAG_WINDOW", default_value = "60s", value_parser = parse_duration)]
    window: Duration,
    /// Timeout of each Kafka request.
    #[arg(long, env = "LAG_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Groups read concurrently, with TLS or SASL only (on a plaintext cluster all
    /// groups are read in one batched OffsetFetch per coordinator).
    #[arg(long, env = "LAG_CONCURRENCY", default_value_t = 16)]
    concurrency: usize,
    /// With TLS or SASL only: most per-group OffsetFetch clients kept open between polls
    /// (each holds a connection to the bootstrap broker and one to the group's
    /// coordinator); with more groups, those read longest ago are closed and reopened
    /// when needed.
    #[arg(long, env = "LAG_GROUP_CLIENTS", default_value_t = 64)]
    group_clients: usize,
}

impl EngineArgs {
    fn config(&self) -> EngineConfig {
        EngineConfig {
            groups: self.groups.clone(),
            read_committed_groups: self
                .read_committed_groups
                .iter()
                .cloned()
                .collect::<HashSet<_>>(),
            reset_policy: match self.no_commit_reset {
                NoCommitReset::Earliest => ResetPolicy::Earliest,
                NoCommitReset::Latest => ResetPolicy::Latest,
            },
            window: self.window,
            request_timeout: self.request_timeout,
            timestamp_timeout: self.request_timeout.min(Duration::from_secs(2)),
            concurrency: self.concurrency,
            group_clients: self.group_clients,
        }
    }
}

/// Runs `orderflow lag`.
pub async fn run(args: LagArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(LagCommand::Serve(serve)) => run_serve(serve).await,
        None => run_show(args.show).await,
    }
}

async fn connect(kafka: &KafkaArgs, engine: &EngineArgs) -> anyhow::Result<LagEngine> {
    kafka
        .wait_for_brokers()
        .await
        .with_context(|| format!("cannot reach Kafka at {}", kafka.brokers()))?;
    Ok(LagEngine::new(&kafka.client_config(), engine.config())?)
}

async fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let engine_config = args.engine.config();
    engine_config.validate(args.interval)?;
    let shutdown = Shutdown::install();
    let engine = connect(&args.kafka, &args.engine).await?;
    let config = ServeConfig {
        listen: args.listen,
        interval: args.interval,
        history: args.history,
    };
    orderflow_lag::serve::run(engine, config, shutdown.token()).await?;
    Ok(ExitCode::SUCCESS)
}

async fn run_show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    if args.watch {
        args.engine.config().validate(args.interval)?;
    }
    let shutdown = Shutdown::install();
    let token = shutdown.token();
    let mut engine = connect(&args.kafka, &args.engine).await?;
    loop {
        let snapshot = engine.poll().await?;
        if args.json {
            println!("{}", serde_json::to_string(&snapshot)?);
        } else {
            if args.watch {
                // Clear the screen between refreshes, like watch(1).
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", orderflow_lag::table::render(&snapshot));
        }
        if !args.watch {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = token.cancelled() => return Ok(ExitCode::SUCCESS),
            _ = tokio::time::sleep(args.interval) => {}
        }
    }
}
