//! `orderflow registry register`: register an Avro schema file with any Confluent-compatible
//! registry (Confluent's, or Apicurio's `/apis/ccompat/v7`); `orderflow registry check`:
//! whether this build's reader reads every branch of a candidate writer schema. The calls go through the same
//! cached client the producers and consumers use, `orderflow_schemas::RegistryClient`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use orderflow_schemas::RegistryError;

/// Flags of `orderflow registry`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// Register an Avro schema file under a subject and print its id as JSON.
    #[command(
        after_help = "Exit status: 0 registered (or already registered: same id), \
                            1 error (unreadable or invalid file, a schema the subject's \
                            compatibility rule refuses, an unreachable registry)."
    )]
    Register(RegisterArgs),
    /// Check that this build's reader can read every branch of a candidate writer schema
    /// (a file, or the latest version of a subject) and print the verdict as JSON: the
    /// step a producer team runs in its CI before registering a new version.
    #[command(
        after_help = "Exit status: 0 readable, 2 not readable (each problem on stderr, one a \
                            line), 1 error (unreadable file, unreachable registry)."
    )]
    Check(CheckArgs),
}

/// Flags of `orderflow registry check`.
#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// Schema registry connection, for --subject.
    #[command(flatten)]
    registry: orderflow_schemas::RegistryArgs,
    /// Candidate writer schema file (.avsc); no network call.
    #[arg(long, conflicts_with = "subject", required_unless_present = "subject")]
    schema: Option<PathBuf>,
    /// Subject whose latest registered version is the candidate, e.g. orders-value.
    #[arg(long)]
    subject: Option<String>,
}

/// Flags of `orderflow registry register`.
#[derive(Debug, clap::Args)]
struct RegisterArgs {
    /// Schema registry connection (Apicurio Registry: its `/apis/ccompat/v7` API).
    #[command(flatten)]
    registry: orderflow_schemas::RegistryArgs,
    /// Subject to register under, e.g. orders-value (`<topic>-value`).
    #[arg(long)]
    subject: String,
    /// Avro schema file (.avsc); it is parsed locally before anything is sent.
    #[arg(long)]
    schema: PathBuf,
    /// Seconds to keep retrying while the registry is unreachable or failing (5xx).
    #[arg(long, env = "SCHEMA_REGISTRY_WAIT_SECS", default_value_t = 30)]
    wait_secs: u64,
}

/// Runs `orderflow registry`.
pub async fn run(args: RegistryArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        RegistryCommand::Register(args) => register(args).await,
        RegistryCommand::Check(args) => check(args).await,
    }
}

/// Exit status of a candidate this reader cannot read.
const NOT_READABLE: u8 = 2;

async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let (candidate, schema) = match (&args.schema, &args.subject) {
        (Some(path), _) => {
            let text = read_schema_file(path)?;
            let schema = apache_avro::Schema::parse_str(&text)?;
            (serde_json::json!({ "file": path }), schema)
        }
        (None, Some(subject)) => {
            let client = args.registry.client(None)?;
            let (id, schema) = client.latest_schema(subject).await?;
            (serde_json::json!({ "subject": subject, "id": id }), schema)
        }
        (None, None) => anyhow::bail!("give --schema FILE or --subject SUBJECT"),
    };
    let problems = orderflow_schemas::reader_problems(&schema);
    println!(
        "{}",
        serde_json::json!({
            "candidate": candidate,
            "readable": problems.is_empty(),
            "problems": problems,
        })
    );
    for problem in &problems {
        eprintln!("not readable: {problem}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(NOT_READABLE)
    })
}

async fn register(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    // A broken file fails here, before any network call.
    let schema = read_schema_file(&args.schema)?;
    let client = args.registry.client(None)?;
    let id = client
        .register_with_retry(&args.subject, &schema, Duration::from_secs(args.wait_secs))
        .await
        .map_err(|error| match error {
            RegistryError::Rejected {
                status: 409,
                message,
                ..
            } => anyhow!(
                "schema file {} is incompatible with subject {} at {} (HTTP 409): {}",
                args.schema.display(),
                args.subject,
                client.url(),
                one_line(&message)
            ),
            other => anyhow::Error::new(other),
        })?;
    println!(
        "{}",
        serde_json::json!({ "subject": args.subject, "id": id, "file": args.schema })
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads `path` and checks that it parses as Avro.
fn read_schema_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read schema file {}", path.display()))?;
    apache_avro::Schema::parse_str(&text).map_err(|error| {
        anyhow!(
            "schema file {} is not a valid Avro schema: {error}",
            path.display()
        )
    })?;
    Ok(text)
}

/// The registry's explanation on one line (the CLI promises a one-line error).
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
