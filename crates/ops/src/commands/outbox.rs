//! `orderflow outbox list|retry`: the order service's unsent outbox rows, and parked rows
//! made pending again once their cause is fixed. Talks to the order service's database
//! only; the running relay publishes what `retry` releases.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use orderflow_outbox::database_url::resolve_database_url;
use orderflow_outbox::{OutboxEntry, queries as outbox};
use orderflow_runtime::db;
use sqlx::PgPool;

/// Flags of `orderflow outbox`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Print the order service's unsent outbox rows, oldest first: pending ones (the
    /// relay's next candidate of their order, possibly in backoff after a failed
    /// delivery), waiting ones (behind an earlier unsent row of their order) and parked
    /// ones (failed permanently; their order's later rows wait behind them).
    List(ListArgs),
    /// Make parked rows pending again, with a fresh count of attempts, after fixing what
    /// parked them (the reason is in `list`); the relay publishes them, then their
    /// orders' later events. Prints a JSON summary.
    #[command(
        after_help = "Exit status: 0 every chosen row was parked and is pending again, \
                      1 an id given is not a parked row (the others are retried), or an \
                      error such as an unreachable database."
    )]
    Retry(RetryArgs),
}

/// The order service's database.
#[derive(Debug, Args)]
struct DatabaseArgs {
    /// The order service's PostgreSQL URL [env: PRODUCER_DATABASE_URL, then DATABASE_URL].
    #[arg(long, env = "PRODUCER_DATABASE_URL", hide_env = true)]
    database_url: Option<String>,
}

impl DatabaseArgs {
    async fn connect(&self) -> anyhow::Result<PgPool> {
        let url = resolve_database_url(self.database_url.as_deref()).context(
            "no database: pass --database-url or set PRODUCER_DATABASE_URL or DATABASE_URL",
        )?;
        Ok(db::connect(&url, 2, Duration::from_secs(10)).await?)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum State {
    /// The relay's next candidate of its order.
    Pending,
    /// Behind an earlier unsent row of its order.
    Waiting,
    /// Failed permanently; its order's later rows wait behind it.
    Parked,
}

/// Flags of `orderflow outbox list`.
#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Only rows in this state (both when absent).
    #[arg(long, value_enum)]
    state: Option<State>,
    /// Most rows to print.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

/// Flags of `orderflow outbox retry`.
#[derive(Debug, Args)]
struct RetryArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// Ids of the parked rows to retry (as `list` prints them; comma separated or repeated).
    #[arg(long, value_delimiter = ',', required_unless_present = "all_parked")]
    id: Vec<i64>,
    /// Retry every parked row.
    #[arg(long, conflicts_with = "id")]
    all_parked: bool,
}

/// Runs `orderflow outbox`.
pub async fn run(args: OutboxArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        OutboxCommand::List(args) => list(args).await,
        OutboxCommand::Retry(args) => retry(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    if args.limit < 1 {
        bail!("--limit must be at least 1");
    }
    let pool = args.database.connect().await?;
    let state = args.state.map(|state| match state {
        State::Pending => "pending",
        State::Waiting => "waiting",
        State::Parked => "parked",
    });
    let rows = outbox::list_unsent(&pool, state, args.limit)
        .await
        .map_err(explain)?;
    let mut out = std::io::stdout().lock();
    for row in &rows {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(row)?)?;
        } else {
            writeln!(out, "{}", render_line(row))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn retry(args: RetryArgs) -> anyhow::Result<ExitCode> {
    let pool = args.database.connect().await?;
    let chosen = (!args.all_parked).then_some(args.id.as_slice());
    let retried = outbox::retry_parked(&pool, chosen).await.map_err(explain)?;
    let not_parked: Vec<i64> = args
        .id
        .iter()
        .copied()
        .filter(|id| !retried.contains(id))
        .collect();
    println!(
        "{}",
        serde_json::json!({ "retried": retried, "not_parked": not_parked })
    );
    if not_parked.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("orderflow: rows {not_parked:?} are not parked (see orderflow outbox list)");
        Ok(ExitCode::FAILURE)
    }
}

/// One line per row: id, order, event type, state, attempts, and the last error.
fn render_line(row: &OutboxEntry) -> String {
    let mut line = format!(
        "{} order={} event={} state={} attempts={} created={}",
        row.id,
        row.order_id,
        row.event_type,
        row.state,
        row.attempts,
        row.created_at.to_rfc3339()
    );
    if let Some(error) = &row.last_error {
        line.push_str(&format!(" error={error:?}"));
    }
    line
}

/// A database without the order service's tables gets a line that says so.
fn explain(error: sqlx::Error) -> anyhow::Error {
    let missing = error
        .as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == "42P01" || code == "3F000");
    if missing {
        anyhow::anyhow!(
            "this database has no order service outbox (order_service.outbox): point --database-url at the order service's database"
        )
    } else {
        anyhow::Error::new(error).context("reading the outbox")
    }
}
