//! `orderflow`: the ops CLI. Parses flags and hands each subcommand to its module.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use orderflow_runtime::telemetry::{LogArgs, init_logging};

/// Operate an orderflow pipeline: topics as code, schema registration, consumer lag,
/// dead-letter records and the order service's outbox.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register Avro schema files with a Confluent-compatible schema registry.
    Registry(commands::registry::RegistryArgs),
    /// Apply or diff topics.yaml against the cluster.
    Topics(commands::topics::TopicsArgs),
    /// Show consumer lag, or serve the lag exporter and dashboard.
    Lag(Box<commands::lag::LagArgs>),
    /// List dead-letter records, or replay chosen ones to their source topic.
    Dlq(commands::dlq::DlqArgs),
    /// List the order service's unsent outbox rows, or retry parked ones.
    Outbox(commands::outbox::OutboxArgs),
    /// Check a consumer group's exactly-once ledger: every valid event of the topic
    /// applied once or dead-lettered, every poison record in the DLQ with its reason,
    /// the projection's counts matching, offsets committed to the log end. Prints a
    /// JSON summary; one line per violation on stderr.
    #[command(after_help = "Exit status: 0 every check held, 1 a violation or an error.")]
    Verify(Box<commands::verify::VerifyArgs>),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let outcome = match cli.command {
        Command::Registry(args) => commands::registry::run(args).await,
        Command::Topics(args) => commands::topics::run(args).await,
        Command::Lag(args) => commands::lag::run(*args).await,
        Command::Dlq(args) => commands::dlq::run(args).await,
        Command::Outbox(args) => commands::outbox::run(args).await,
        Command::Verify(args) => commands::verify::run(*args).await,
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            // One line saying what failed and what to fix; the chain gives the cause.
            eprintln!("orderflow: {err:#}");
            ExitCode::FAILURE
        }
    }
}
