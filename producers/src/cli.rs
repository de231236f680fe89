//! The `order-producer` command line, as clap's command model. The binary parses it; the
//! configuration reference (docs/configuration.md) is generated from it, so both read the
//! same definitions.

use clap::{CommandFactory, Parser, Subcommand};
use orderflow_runtime::telemetry::LogArgs;

use crate::GenerateArgs;
use crate::order_service::{ServeArgs, serve_args::DEFAULT_METRICS_ADDR};

/// Writes order events to Kafka.
#[derive(Debug, Parser)]
#[command(
    name = "order-producer",
    version,
    about,
    after_help = "Exit status: 0 when every record was acknowledged, 1 when some were not \
                  (the JSON summary is still printed), 2 on bad flags or an unreachable \
                  broker or registry, 130 when stopped by a signal before sending."
)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate realistic order lifecycles (with optional duplicates and poison records)
    /// and print a JSON summary on stdout.
    Generate(Box<GenerateArgs>),
    /// Serve the HTTP order API; every change is written with its event to the outbox
    /// table in one transaction, and the relay publishes the outbox to Kafka.
    Serve(Box<ServeArgs>),
    /// Print the order API's OpenAPI document (JSON), as `serve` answers it at
    /// GET /openapi.json.
    Openapi,
}

/// The command model the binary parses: [`Cli`] with the order service's own metrics
/// port as `serve`'s default (the shared flag's default is the generator's).
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("serve", |serve| {
        serve.mut_arg("metrics_addr", |arg| {
            arg.default_value(DEFAULT_METRICS_ADDR)
        })
    })
}
