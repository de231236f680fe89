//! The `orderflow` command line: the flags of every subcommand, as clap's command model.
//! The binary parses it; the configuration reference (docs/configuration.md) is generated
//! from it, so both read the same definitions.

use clap::{Parser, Subcommand};
use orderflow_runtime::telemetry::LogArgs;

use crate::commands;

/// Operate an orderflow pipeline: topics as code, schema registration, consumer lag,
/// dead-letter records and the order service's outbox.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about, long_about = None)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `orderflow`.
#[derive(Debug, Subcommand)]
pub enum Command {
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
