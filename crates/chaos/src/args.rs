//! Flags of `orderflow-chaos`.

use std::path::PathBuf;
use std::time::Duration;

use orderflow_runtime::kafka::parse_duration;

/// Chaos runs and the independent verifier.
#[derive(Debug, clap::Parser)]
#[command(name = "orderflow-chaos", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Commands,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Commands {
    /// Run scenarios on a 3-broker cluster and a private PostgreSQL; exit 1 on a violation.
    Run(RunArgs),
    /// Verify one topic, group and database with the independent verifier.
    Verify(VerifyArgs),
    /// The relay's end-to-end delay (scripts/bench-order-api.sh).
    RelayDelay(RelayDelayArgs),
}

/// Flags of `orderflow-chaos relay-delay`.
#[derive(Debug, clap::Args)]
pub struct RelayDelayArgs {
    /// Bootstrap brokers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// The topic the relay published to (LogAppendTime).
    #[arg(long)]
    pub topic: String,
    /// `order_id,epoch_seconds` of every outbox row, one a line.
    #[arg(long)]
    pub created_csv: PathBuf,
}

/// Flags of `orderflow-chaos run` (those of scripts/chaos.sh, plus a few).
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Events of the generator per scenario.
    #[arg(long, env = "CHAOS_EVENTS", default_value_t = 100_000)]
    pub events: u64,
    /// Scenarios, comma-separated: a (kill workers), b (kill partition leaders), c (stop
    /// PostgreSQL), d (scale 1 -> 4 -> 1), e (kill the order service), f (all at once),
    /// g (a trickle under a database failure), h (workers churning while the breaker is
    /// open), i (two order services on one database, kill -9 of one), j (every broker
    /// killed for 30 s), k (PostgreSQL stopped while the relay waits for acknowledgements).
    #[arg(
        long,
        env = "CHAOS_SCENARIOS",
        default_value = "a,b,c",
        value_delimiter = ','
    )]
    pub scenarios: Vec<char>,
    /// Group protocol of the workers: classic or consumer (KIP-848).
    #[arg(long, env = "CHAOS_GROUP_PROTOCOL", default_value = "classic", value_parser = ["classic", "consumer"])]
    pub group_protocol: String,
    /// Workers to start with (1 in d and f).
    #[arg(long, env = "CHAOS_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// Records per second of the generator [default: events / 40, at least 250].
    #[arg(long, env = "CHAOS_RATE")]
    pub rate: Option<u64>,
    /// Use the running cluster of `scripts/kafka-cluster.sh --dir D` (scenario b kills
    /// and restarts its nodes) instead of starting one.
    #[arg(long, env = "CHAOS_CLUSTER_DIR")]
    pub cluster_dir: Option<PathBuf>,
    /// Longest wait for the outbox, then the lag, to reach 0, in seconds.
    #[arg(long, env = "CHAOS_DRAIN_TIMEOUT", default_value_t = 300)]
    pub drain_timeout: u64,
    /// Where orderflow, order-producer and order-consumer are.
    #[arg(long, env = "CHAOS_BIN_DIR")]
    pub bin_dir: PathBuf,
    /// The repository (for scripts/kafka-cluster.sh and scripts/apicurio.sh).
    #[arg(long, env = "CHAOS_ROOT", default_value = ".")]
    pub root: PathBuf,
    /// The run's directory [default: <root>/.scratch/chaos-<time>-<pid>].
    #[arg(long, env = "CHAOS_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Schema registry (ccompat base URL); a private Apicurio when not set.
    #[arg(long, env = "SCHEMA_REGISTRY_URL")]
    pub schema_registry_url: Option<String>,
    /// One poison record in a live order's key lane every N orders of the HTTP workload
    /// in scenarios a to f (0: none; g and h always use 5).
    #[arg(long, env = "CHAOS_LANE_POISON", default_value_t = 0)]
    pub lane_poison: u64,
    /// `--max-buffered` (and `--max-in-flight`) of the workers [default: theirs; 1000 in h].
    #[arg(long, env = "CHAOS_MAX_BUFFERED")]
    pub max_buffered: Option<usize>,
    /// Most resident memory (VmRSS, sampled each second) a worker may reach, in MiB; above
    /// it the scenario fails.
    #[arg(long, env = "CHAOS_RSS_BOUND_MIB", default_value_t = 256)]
    pub rss_bound_mib: u64,
    /// Where the JSON report goes [default: <work dir>/report.json].
    #[arg(long, env = "CHAOS_REPORT")]
    pub report: Option<PathBuf>,
}

/// Flags of `orderflow-chaos verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Bootstrap brokers.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Schema registry (ccompat base URL).
    #[arg(
        long,
        env = "SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081/apis/ccompat/v7"
    )]
    pub schema_registry_url: String,
    /// Source topic.
    #[arg(long, env = "CONSUMER_TOPIC", default_value = "orders")]
    pub topic: String,
    /// Dead-letter topic [default: <topic>.dlq].
    #[arg(long, env = "DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// Consumer group.
    #[arg(long, env = "CONSUMER_GROUP", default_value = "order-projection")]
    pub group: String,
    /// The consumer's database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The run's fault was the documented crash window: DLQ duplicates are counted and
    /// named, not violations.
    #[arg(long)]
    pub crash_window: bool,
    /// How long a partition may deliver nothing before its end offset is reached.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub stall_timeout: Duration,
}
