//! `order-producer`: parse flags, run, print the summary, exit.

use std::process::ExitCode;

use clap::FromArgMatches;
use order_producer::ProducerError;
use order_producer::cli::{Cli, Command, command};
use order_producer::order_service::{self, ServeArgs};
use orderflow_runtime::shutdown::Shutdown;
use orderflow_runtime::telemetry::{Telemetry, init_telemetry};

/// Parses the command line; a usage error is one line on stderr and exit code 2.
fn parse_cli() -> Result<Cli, ExitCode> {
    match command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => Ok(cli),
        Err(error) if error.use_stderr() => {
            let rendered = error.to_string();
            let first = rendered.lines().next().unwrap_or_default();
            let reason = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("order-producer: {reason} (see --help)");
            Err(ExitCode::from(2))
        }
        // --help and --version.
        Err(error) => error.exit(),
    }
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // service.name by role unless OTEL_SERVICE_NAME says otherwise: the order service and
    // the load generator show up as two services in a trace.
    let service_name = match cli.command {
        Command::Serve(_) => "order-service",
        Command::Generate(_) => "order-generator",
        Command::Openapi => "order-producer",
    };
    let telemetry = match init_telemetry(&cli.log, service_name) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("order-producer: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("order-producer: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let args = match cli.command {
            Command::Generate(args) => args,
            Command::Serve(args) => return serve(&args, &telemetry).await,
            Command::Openapi => {
                print!("{}", order_service::http::openapi::document_json());
                return ExitCode::SUCCESS;
            }
        };
        let shutdown = Shutdown::install();
        // The span export counters sit beside generate's own on its /metrics.
        let registry = prometheus::Registry::new();
        if let Err(error) = telemetry.register_metrics(&registry) {
            eprintln!("order-producer: {error}");
            return ExitCode::from(2);
        }
        match order_producer::run_command(&args, registry, shutdown.token()).await {
            Ok(summary) => {
                println!("{}", summary.to_json());
                match summary.check_delivered() {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => {
                        eprintln!("order-producer: {error}");
                        ExitCode::FAILURE
                    }
                }
            }
            Err(ProducerError::Interrupted) => {
                eprintln!("order-producer: {}", ProducerError::Interrupted);
                ExitCode::from(130)
            }
            Err(error) => {
                eprintln!("order-producer: {error}");
                ExitCode::from(2)
            }
        }
    })
}

/// Runs the order service until SIGINT/SIGTERM.
async fn serve(args: &ServeArgs, telemetry: &Telemetry) -> ExitCode {
    let shutdown = Shutdown::install();
    let registry = prometheus::Registry::new();
    if let Err(error) = telemetry.register_metrics(&registry) {
        eprintln!("order-producer: {error}");
        return ExitCode::from(2);
    }
    match order_service::start(args, &registry, shutdown.token()).await {
        Ok(service) => {
            service.wait().await;
            ExitCode::SUCCESS
        }
        Err(order_service::ServiceError::Interrupted) => {
            eprintln!(
                "order-producer: {}",
                order_service::ServiceError::Interrupted
            );
            ExitCode::from(130)
        }
        Err(error) => {
            eprintln!("order-producer: {error}");
            ExitCode::from(2)
        }
    }
}
