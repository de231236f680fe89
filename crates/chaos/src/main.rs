//! `orderflow-chaos`: parse flags, run.

use std::process::ExitCode;

use clap::Parser;
use orderflow_chaos::args::{Cli, Commands};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
                .unwrap_or_else(|_| "warn,orderflow_chaos=info,librdkafka=off,rdkafka=off".into()),
        )
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Commands::Run(args) => orderflow_chaos::run::run(args).await,
        Commands::Verify(args) => orderflow_chaos::run::verify(args).await,
        Commands::RelayDelay(args) => {
            orderflow_chaos::relay_delay::relay_delay(&args.brokers, &args.topic, &args.created_csv)
                .await
                .map(|line| {
                    println!("{line}");
                    true
                })
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("orderflow-chaos: {error:#}");
            ExitCode::from(2)
        }
    }
}
