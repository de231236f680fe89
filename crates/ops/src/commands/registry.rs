//! `orderflow registry`: serve the development schema registry, or register a schema
//! file with any Confluent-compatible registry. The work happens in `orderflow_registry`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use orderflow_registry::client::{RegistryClient, read_schema_file};
use orderflow_registry::server;
use orderflow_runtime::db;
use orderflow_runtime::shutdown::Shutdown;

/// Flags of `orderflow registry`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Serve the Confluent-compatible REST API (plus /metrics, /healthz, /readyz),
    /// storing schemas in PostgreSQL.
    Serve(ServeArgs),
    /// Register an Avro schema file under a subject and print its id as JSON.
    Register(RegisterArgs),
}

/// Flags of `orderflow registry serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address of the REST API and of /metrics, /healthz and /readyz.
    #[arg(long, env = "SCHEMA_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// PostgreSQL URL of the registry's database (the tables are created at start-up).
    /// Falls back to the DATABASE_URL environment variable.
    #[arg(long, env = "REGISTRY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Seconds to keep retrying PostgreSQL at start-up before giving up.
    #[arg(long, env = "REGISTRY_CONNECT_TIMEOUT_SECS", default_value_t = 30)]
    connect_timeout_secs: u64,
    /// Maximum PostgreSQL connections.
    #[arg(long, env = "REGISTRY_MAX_CONNECTIONS", default_value_t = 10)]
    max_connections: u32,
}

/// Flags of `orderflow registry register`.
#[derive(Debug, clap::Args)]
struct RegisterArgs {
    /// Base URL of the schema registry.
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    url: String,
    /// Subject to register under, e.g. orders-value (`<topic>-value`).
    #[arg(long)]
    subject: String,
    /// Avro schema file (.avsc); it is parsed locally before anything is sent.
    #[arg(long)]
    schema: PathBuf,
    /// Seconds to keep retrying while the registry is unreachable or failing.
    #[arg(long, env = "SCHEMA_REGISTRY_WAIT_SECS", default_value_t = 30)]
    wait_secs: u64,
}

/// Runs `orderflow registry`.
pub async fn run(args: RegistryArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RegistryCommand::Serve(args) => serve(args).await,
        RegistryCommand::Register(args) => register(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let url = args
        .database_url
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|url| !url.trim().is_empty())
        .context("no database: pass --database-url or set REGISTRY_DATABASE_URL or DATABASE_URL")?;
    let shutdown = Shutdown::install();
    let token = shutdown.token();
    let timeout = Duration::from_secs(args.connect_timeout_secs);
    let pool = tokio::select! {
        pool = db::connect(&url, args.max_connections, timeout) => {
            pool.context("schema registry cannot start")?
        }
        _ = token.cancelled() => return Ok(ExitCode::from(130)),
    };
    let running = server::start(pool.clone(), args.listen, token.child_token())
        .await
        .context("schema registry cannot start")?;
    running.stopped().await;
    pool.close().await;
    tracing::info!("schema registry stopped");
    Ok(ExitCode::SUCCESS)
}

async fn register(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    // A broken file fails here, before any network call.
    let schema = read_schema_file(&args.schema)?;
    let client = RegistryClient::new(&args.url)?;
    let id = client
        .register_within(&args.subject, &schema, Duration::from_secs(args.wait_secs))
        .await?;
    println!(
        "{}",
        serde_json::json!({ "subject": args.subject, "id": id, "file": args.schema })
    );
    Ok(ExitCode::SUCCESS)
}
