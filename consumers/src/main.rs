//! `order-consumer`: parse flags, build the pieces, run the engine.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use order_consumer::{ConsumerArgs, EngineDeps, MIGRATOR};
use orderflow_runtime::db_migration::{self, MigrationTarget};
use orderflow_runtime::ops_server::{OpsServer, Readiness};
use orderflow_runtime::shutdown::Shutdown;
use orderflow_runtime::telemetry::Telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let args = ConsumerArgs::parse();
    let telemetry = match orderflow_runtime::telemetry::init_telemetry(&args.log, "order-consumer")
    {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("order-consumer: {error}");
            return ExitCode::FAILURE;
        }
    };
    match run(args, &telemetry).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("order-consumer: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ConsumerArgs, telemetry: &Telemetry) -> anyhow::Result<()> {
    args.validate()?;
    let shutdown = Shutdown::install();
    let token = shutdown.token();
    let metrics_addr = args.ops.address()?;

    let pool_size = (args.db_concurrency + 2) as u32;
    let pool =
        orderflow_runtime::db::connect(&args.database_url, pool_size, args.db_connect_timeout)
            .await?;
    let target = MigrationTarget {
        migration_url: args.database_migration_url.as_deref(),
        schema: "public",
        connect_deadline: args.db_connect_timeout,
    };
    db_migration::migrate(&MIGRATOR, &pool, target)
        .await
        .context("migrating the consumer database")?;
    let registry = args.registry.client(args.kafka.config_file.as_ref())?;
    registry
        .check_with_retry(args.registry_connect_timeout)
        .await?;
    args.kafka.wait_for_brokers().await?;

    let metrics = prometheus::Registry::new();
    telemetry.register_metrics(&metrics)?;
    let readiness = Readiness::default();
    if let Some(addr) = metrics_addr {
        let (bound, _) = OpsServer::new(addr, metrics.clone())
            .with_readiness(readiness.clone())
            .spawn(token.child_token())
            .await?;
        tracing::info!(%bound, "metrics and health endpoint listening");
    }

    let deps = EngineDeps {
        pool,
        decoder: args.decoder(registry, &metrics),
        registry: metrics,
        readiness,
    };
    let summary = order_consumer::run(args.engine_settings(), deps, token).await?;
    if args.exit_when_idle.is_some() {
        println!("{}", summary.to_json());
    }
    Ok(())
}
