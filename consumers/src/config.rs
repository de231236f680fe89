//! Command-line flags of `order-consumer` (each also from the environment) and
//! their cross-field checks.

use std::time::Duration;

use clap::Parser;
use orderflow_runtime::backoff::Backoff;
use orderflow_runtime::kafka::{KafkaArgs, parse_duration};
use orderflow_runtime::ops_server::OpsArgs;
use orderflow_runtime::telemetry::LogArgs;
use orderflow_schemas::{OrderEventDeserializer, RegistryArgs, RegistryClient};

use crate::engine::EngineSettings;
use crate::error::{Error, Result};
use crate::partitions::group_protocol::GroupProtocol;
use crate::scheduling::Ordering;
use crate::store::dedup_retention::DedupRetention;
use crate::worker::decode::EventDecoder;

/// Consumer-group worker: applies order events to the order projection exactly
/// once per event, dead-letters what cannot be processed, commits after success.
#[derive(Debug, Clone, Parser)]
#[command(name = "order-consumer", version)]
pub struct ConsumerArgs {
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
    /// Metrics and health endpoint.
    #[command(flatten)]
    pub ops: OpsArgs,
    /// Topic to consume.
    #[arg(long, env = "CONSUMER_TOPIC", default_value = "orders")]
    pub topic: String,
    /// Consumer group id; every worker of the group shares the work and the dedup table rows.
    #[arg(long, env = "CONSUMER_GROUP", default_value = "order-projection")]
    pub group: String,
    /// Dead-letter topic (same partition count as --topic). Default: <topic>.dlq.
    #[arg(long, env = "DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// PostgreSQL URL of the projection database (migrated at start-up).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// PostgreSQL URL of the consumer's migration role, which owns its tables: start-up
    /// migrates through it, grants the --database-url role row access, and closes it, so
    /// the --database-url role needs no right to create or drop tables
    /// (docs/security.md). Default: migrate through --database-url.
    #[arg(
        long,
        env = "CONSUMER_DATABASE_MIGRATION_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_migration_url: Option<String>,
    /// Schema registry connection.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// How long to keep retrying an unreachable schema registry at start-up (where a
    /// refused certificate or credentials fail at once).
    #[arg(long, env = "SCHEMA_REGISTRY_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub registry_connect_timeout: Duration,
    /// How long a schema id the registry answers 404 for is retried before its
    /// records are dead-lettered (category schema): long enough for a follower
    /// registry node, or one restored from an older backup, to learn a new schema.
    /// 0 dead-letters them at once.
    #[arg(long, env = "SCHEMA_REGISTRY_NOT_FOUND_GRACE", default_value = "60s", value_parser = parse_duration)]
    pub registry_not_found_grace: Duration,
    /// How long a schema id the registry keeps refusing (401/403, a 5xx for that id
    /// while the registry answers other calls, an answer that does not parse) is
    /// retried, from the first refusal, before its records are dead-lettered with
    /// category registry. A registry that does not answer at all is waited for
    /// without limit.
    #[arg(long, env = "SCHEMA_REGISTRY_FAILURE_BUDGET", default_value = "5m", value_parser = parse_duration)]
    pub registry_failure_budget: Duration,
    /// Ordering guarantee: `key` runs different keys of a partition concurrently
    /// (records of one key stay in offset order); `partition` runs one record of a
    /// partition at a time.
    #[arg(long, env = "CONSUMER_ORDERING", value_enum, default_value = "key")]
    pub ordering: Ordering,
    /// Records processed concurrently, across all partitions and keys.
    #[arg(long, env = "CONSUMER_MAX_IN_FLIGHT", default_value_t = 1000)]
    pub max_in_flight: usize,
    /// Records buffered (received, not done) before the engine stops taking records
    /// from librdkafka (which keeps its prefetch, bounded by its queued.max.messages.kbytes);
    /// if it stays full for 2 s, each partition holding at least its share of it (this
    /// number divided by the assigned partitions) is paused until it is down to half
    /// its share and the whole buffer is below this number; the other partitions keep
    /// flowing. A deeper buffer catches up a long backlog faster (more work ready for
    /// the transactions) and costs memory that grows with the record size
    /// (BENCHMARKS.md: 300,000 events at 1.3x the Java baseline's rate with 10,000,
    /// 1.6x with 400,000 at under 200 MiB).
    #[arg(long, env = "CONSUMER_MAX_BUFFERED", default_value_t = 10_000)]
    pub max_buffered: usize,
    /// Most records applied in one database transaction.
    #[arg(long, env = "CONSUMER_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: usize,
    /// Database transactions running at once.
    #[arg(long, env = "CONSUMER_DB_CONCURRENCY", default_value_t = 4)]
    pub db_concurrency: usize,
    /// Attempts for a handler failure of unknown kind specific to one record
    /// before it is dead-lettered as retries-exhausted. Transient failures, and a
    /// failure every record of a batch shares (the database's), retry without limit.
    #[arg(long, env = "CONSUMER_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,
    /// First retry delay ceiling (exponential backoff, full jitter).
    #[arg(long, env = "CONSUMER_RETRY_INITIAL", default_value = "100ms", value_parser = parse_duration)]
    pub retry_initial: Duration,
    /// Retry delay cap.
    #[arg(long, env = "CONSUMER_RETRY_MAX", default_value = "10s", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// Consecutive transient database failures that open the circuit breaker.
    #[arg(long, env = "CONSUMER_BREAKER_THRESHOLD", default_value_t = 5)]
    pub breaker_threshold: u32,
    /// How long a rebalance or a shutdown waits for in-flight records before
    /// committing what is done; must be shorter than --session-timeout.
    #[arg(long, env = "CONSUMER_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Consumer-group protocol: `classic` (cooperative-sticky assignment in the
    /// client) or `consumer` (KIP-848, Kafka 4.0+: the broker assigns partitions and
    /// sets session timeout and heartbeat interval). Rebalances are incremental under both.
    #[arg(long, env = "GROUP_PROTOCOL", value_enum, default_value = "classic")]
    pub group_protocol: GroupProtocol,
    /// Kafka group session timeout (classic protocol; under `consumer` the broker's
    /// group.consumer.session.timeout.ms applies, 45 s by default).
    #[arg(long, env = "CONSUMER_SESSION_TIMEOUT", default_value = "45s", value_parser = parse_duration)]
    pub session_timeout: Duration,
    /// How often done offsets are committed (asynchronously) while running.
    #[arg(long, env = "CONSUMER_COMMIT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub commit_interval: Duration,
    /// How long processed event ids, and the records the group dead-lettered, are
    /// kept for deduplication: `topic` (as long as the topic can replay a record,
    /// retention.ms + segment.ms + 5 min, read again on every cleanup round; nothing
    /// is deleted while it keeps records forever), `forever`, or a duration (at
    /// least that long). A row is deleted only once it is that old and the group
    /// has committed past its offset; start-up refuses a duration shorter than
    /// retention.ms + segment.ms of the topic (Kafka deletes whole segments).
    #[arg(long, env = "CONSUMER_DEDUP_RETENTION", default_value = "topic", value_parser = crate::store::dedup_retention::parse_retention)]
    pub dedup_retention: DedupRetention,
    /// How often the dedup retention cleanup runs.
    #[arg(long, env = "CONSUMER_DEDUP_CLEANUP_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub dedup_cleanup_interval: Duration,
    /// How long a dead-letter write may take before it is retried.
    #[arg(long, env = "CONSUMER_DLQ_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub dlq_timeout: Duration,
    /// How long to keep retrying the database at start-up.
    #[arg(long, env = "CONSUMER_DB_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub db_connect_timeout: Duration,
    /// Exit 0 once the group has read every partition of the topic to its end (this
    /// worker's partitions by its done offsets, the others by the group's committed
    /// offsets) and nothing happened for SECS seconds, printing a JSON summary on stdout.
    #[arg(long, env = "CONSUMER_EXIT_WHEN_IDLE", value_name = "SECS")]
    pub exit_when_idle: Option<u64>,
    /// Benchmarks only: simulated I/O per event, in milliseconds.
    #[arg(long, hide = true, default_value_t = 0)]
    pub bench_effect_delay_ms: u64,
}

impl ConsumerArgs {
    /// The dead-letter topic.
    pub fn dlq_topic(&self) -> String {
        self.dlq_topic
            .clone()
            .unwrap_or_else(|| orderflow_contracts::dead_letter::dlq_topic(&self.topic))
    }

    /// Cross-field checks; the error is one line naming the flags.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| Err(Error::Config(message));
        if self.topic.trim().is_empty() || self.group.trim().is_empty() {
            return fail("--topic and --group must not be empty".into());
        }
        if self.dlq_topic() == self.topic {
            return fail(format!(
                "--dlq-topic must differ from --topic ({})",
                self.topic
            ));
        }
        if let Err(error) = self.registry.settings(self.kafka.config_file.as_ref()) {
            return fail(error.to_string());
        }
        if self.max_in_flight == 0 || self.batch_size == 0 || self.db_concurrency == 0 {
            return fail(
                "--max-in-flight, --batch-size and --db-concurrency must be at least 1".into(),
            );
        }
        if self.max_buffered < self.max_in_flight {
            return fail(format!(
                "--max-buffered ({}) must be at least --max-in-flight ({})",
                self.max_buffered, self.max_in_flight
            ));
        }
        if self.max_attempts == 0 {
            return fail("--max-attempts must be at least 1".into());
        }
        if self.drain_timeout >= self.session_timeout {
            return fail(format!(
                "--drain-timeout ({:?}) must be shorter than --session-timeout ({:?}), or the group evicts a draining worker",
                self.drain_timeout, self.session_timeout
            ));
        }
        if self.retry_initial.is_zero() || self.retry_initial > self.retry_max {
            return fail(format!(
                "--retry-initial ({:?}) must be above zero and at most --retry-max ({:?})",
                self.retry_initial, self.retry_max
            ));
        }
        if let DedupRetention::AtLeast(retention) = self.dedup_retention
            && retention < Duration::from_secs(60)
        {
            return fail(format!(
                "--dedup-retention ({retention:?}) below one minute would forget events that can still be redelivered"
            ));
        }
        if self.commit_interval.is_zero() || self.commit_interval >= self.session_timeout {
            return fail(
                "--commit-interval must be above zero and shorter than --session-timeout".into(),
            );
        }
        let file = self
            .kafka
            .config_file
            .as_ref()
            .map_or(&[][..], |file| file.entries());
        self.group_protocol
            .check_settings(&self.kafka.options, file)
    }

    /// The record decoder: writer schemas through `registry`, with the not-found
    /// grace and the failure budget of the flags, counted in `metrics`.
    pub fn decoder(
        &self,
        registry: RegistryClient,
        metrics: &prometheus::Registry,
    ) -> EventDecoder {
        let deserializer = OrderEventDeserializer::new(registry)
            .with_not_found_grace(self.registry_not_found_grace);
        EventDecoder::new(deserializer)
            .with_failure_budget(self.registry_failure_budget)
            .with_metrics(metrics)
    }

    /// Engine settings from the flags.
    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            kafka: self.kafka.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            dlq_topic: self.dlq_topic(),
            ordering: self.ordering,
            max_in_flight: self.max_in_flight,
            max_buffered: self.max_buffered,
            batch_size: self.batch_size,
            db_concurrency: self.db_concurrency,
            max_attempts: self.max_attempts,
            retry_backoff: Backoff {
                initial: self.retry_initial,
                max: self.retry_max,
                multiplier: 2.0,
            },
            breaker_threshold: self.breaker_threshold,
            drain_timeout: self.drain_timeout,
            group_protocol: self.group_protocol,
            session_timeout: self.session_timeout,
            commit_interval: self.commit_interval,
            dedup_retention: self.dedup_retention,
            dedup_cleanup_interval: self.dedup_cleanup_interval,
            dlq_timeout: self.dlq_timeout,
            exit_when_idle: self.exit_when_idle.map(Duration::from_secs),
            effect_delay: Duration::from_millis(self.bench_effect_delay_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> ConsumerArgs {
        let mut args = vec!["order-consumer", "--database-url", "postgres://u@h/db"];
        args.extend_from_slice(extra);
        ConsumerArgs::try_parse_from(args).expect("parses")
    }

    #[test]
    fn defaults_are_valid() {
        let args = parse(&[]);
        args.validate().unwrap();
        assert_eq!(args.dlq_topic(), "orders.dlq");
        assert_eq!(args.group, "order-projection");
        assert_eq!(args.max_attempts, 5);
        assert_eq!(args.dedup_retention, DedupRetention::Topic);
    }

    #[test]
    fn drain_longer_than_session_is_rejected() {
        let args = parse(&["--drain-timeout", "60s", "--session-timeout", "30s"]);
        let error = args.validate().unwrap_err().to_string();
        assert!(error.contains("--drain-timeout"), "{error}");
        assert!(!error.contains('\n'));
    }

    #[test]
    fn other_cross_field_checks() {
        assert!(
            parse(&["--max-in-flight", "100", "--max-buffered", "10"])
                .validate()
                .is_err()
        );
        assert!(parse(&["--dlq-topic", "orders"]).validate().is_err());
        assert!(parse(&["--max-attempts", "0"]).validate().is_err());
        assert!(parse(&["--dedup-retention", "10s"]).validate().is_err());
    }

    #[test]
    fn broker_owned_option_under_consumer_protocol_is_rejected() {
        let args = parse(&[
            "--group-protocol",
            "consumer",
            "--kafka-option",
            "heartbeat.interval.ms=1000",
        ]);
        let error = args.validate().unwrap_err().to_string();
        assert!(error.contains("heartbeat.interval.ms"), "{error}");
        assert_eq!(parse(&[]).group_protocol, GroupProtocol::Classic);
    }
}
