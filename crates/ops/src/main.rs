//! `orderflow`: the ops CLI. Parses flags and hands each subcommand to its module.

use std::process::ExitCode;

use clap::Parser;
use orderflow_ops::cli::{Cli, Command};
use orderflow_ops::commands;
use orderflow_runtime::telemetry::init_logging;

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
