//! `orderflow topics diff|apply`: flags, and the glue between topics.yaml and the cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use orderflow_runtime::kafka::KafkaArgs;

use crate::topics::{
    DesiredTopic, PlanOptions, PlanSource, ReplicationFactor, ResolveOptions, TopicsAdmin,
    TopicsError, TopicsFile, plan_json, render_plan,
};

/// Exit status when the file and the cluster match (diff) or apply succeeded.
const EXIT_OK: u8 = 0;
/// Exit status of `diff` when the cluster differs from the file.
const EXIT_DRIFT: u8 = 1;
/// Exit status of any error: bad file, unreachable broker, a refused or failed change.
const EXIT_ERROR: u8 = 2;

/// Flags of `orderflow topics`.
#[derive(Debug, Args)]
#[command(after_help = "Exit status: diff 0 = no drift, 1 = drift, 2 = error; \
                        apply 0 = applied or nothing to do, 2 = error or a refused change.")]
pub struct TopicsArgs {
    #[command(subcommand)]
    command: TopicsCommand,
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Show how the cluster differs from the topics file, without changing anything.
    #[command(
        after_help = "Exit status: 0 no drift, 1 drift found, 2 error (invalid file, \
                            unreachable brokers, a request the broker rejected)."
    )]
    Diff(DiffArgs),
    /// Make the cluster match the topics file: create missing topics, raise partition
    /// counts (a DLQ's with its source's; a keyed topic's only with --allow-key-moves),
    /// set the configs the file names with IncrementalAlterConfigs (only those keys;
    /// AlterConfigs on brokers without it). Never deletes topics and never lowers a
    /// partition count; running it twice changes nothing the second time.
    #[command(
        after_help = "Exit status: 0 applied (or nothing to do), 2 error (invalid file, \
                            unreachable brokers, a change Kafka cannot make such as fewer \
                            partitions, a change the broker rejected)."
    )]
    Apply(ApplyArgs),
}

/// Flags shared by `diff` and `apply`.
#[derive(Debug, Args)]
struct TargetArgs {
    /// The topics file.
    #[arg(
        long,
        short = 'f',
        env = "ORDERFLOW_TOPICS_FILE",
        default_value = "topics.yaml"
    )]
    file: PathBuf,
    /// Environment whose overrides apply (a key under `environments:` in the file).
    #[arg(long, env = "ORDERFLOW_ENV", default_value = "local")]
    env: String,
    /// Replication factor for every topic, overriding the file (e.g. 1 on a one-broker
    /// test cluster).
    #[arg(long, env = "ORDERFLOW_REPLICATION_FACTOR", value_parser = parse_replication_factor)]
    replication_factor: Option<ReplicationFactor>,
    /// Raise the partition count of topics whose records are keyed (the plan lists the
    /// keys that change partition). Records of a moving key already in its old
    /// partition are read after its new ones by lagging consumers: drain the consumers
    /// and stop the producers first.
    #[arg(long, env = "ORDERFLOW_ALLOW_KEY_MOVES")]
    allow_key_moves: bool,
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[derive(Debug, Args)]
struct DiffArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Print the drift as JSON (`drift`, `changes`, `refusals`) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    target: TargetArgs,
}

/// Runs `orderflow topics`. Errors are printed here, as one line, so they exit with 2
/// (1 means drift for `diff`).
pub async fn run(args: TopicsArgs) -> anyhow::Result<ExitCode> {
    let outcome = match args.command {
        TopicsCommand::Diff(args) => diff(args).await,
        TopicsCommand::Apply(args) => apply(args).await,
    };
    Ok(ExitCode::from(outcome.unwrap_or_else(|err| {
        eprintln!("orderflow topics: {err}");
        EXIT_ERROR
    })))
}

async fn diff(args: DiffArgs) -> Result<u8, TopicsError> {
    let target = &args.target;
    let desired = load(target)?;
    let admin = TopicsAdmin::connect(&target.kafka).await?;
    let plan = admin.plan(&desired, options(target)).await?;
    let source = source(target);
    if args.json {
        println!("{:#}", plan_json(&plan, source));
    } else {
        print!("{}", render_plan(&plan, source));
    }
    Ok(if plan.is_empty() { EXIT_OK } else { EXIT_DRIFT })
}

async fn apply(args: ApplyArgs) -> Result<u8, TopicsError> {
    let target = &args.target;
    let desired = load(target)?;
    let admin = TopicsAdmin::connect(&target.kafka).await?;
    let plan = admin.plan(&desired, options(target)).await?;
    if plan.is_empty() {
        println!(
            "no changes: {} already matches {} (env {})",
            target.kafka.brokers(),
            target.file.display(),
            target.env
        );
        return Ok(EXIT_OK);
    }
    let outcome = admin.apply(&plan).await?;
    for change in &outcome.applied {
        println!("applied {change}");
    }
    for (topic, api) in &outcome.config_api {
        println!("configs of {topic} set with {api}");
    }
    let applied = outcome.applied.len();
    outcome.into_result()?;
    println!("{applied} change(s) applied");
    Ok(EXIT_OK)
}

fn load(target: &TargetArgs) -> Result<Vec<DesiredTopic>, TopicsError> {
    let file = TopicsFile::load(&target.file)?;
    file.resolve(
        &target.file,
        &ResolveOptions {
            environment: target.env.clone(),
            replication_factor: target.replication_factor,
        },
    )
}

fn options(target: &TargetArgs) -> PlanOptions {
    PlanOptions {
        allow_key_moves: target.allow_key_moves,
    }
}

fn source(target: &TargetArgs) -> PlanSource<'_> {
    PlanSource {
        file: &target.file,
        environment: &target.env,
        brokers: target.kafka.brokers(),
    }
}

fn parse_replication_factor(raw: &str) -> Result<ReplicationFactor, String> {
    let value: i64 = raw
        .parse()
        .map_err(|_| format!("expected a whole number, got {raw:?}"))?;
    ReplicationFactor::try_from(value)
}
