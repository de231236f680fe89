//! Flags of `order-producer serve`, and the checks across them done at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use orderflow_runtime::kafka::{KafkaArgs, parse_duration};
use orderflow_runtime::ops_server::OpsArgs;
use orderflow_runtime::registry::RegistryArgs;

use crate::order_service::service_error::{ServiceError, ServiceResult};
use crate::producer_settings::ProducerSettings;

/// Environment variable consulted for the database URL when neither `--database-url`
/// nor `PRODUCER_DATABASE_URL` is set.
pub const FALLBACK_DATABASE_URL_ENV: &str = "DATABASE_URL";

/// `order-producer serve`: the HTTP order service, its outbox and the outbox relay.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address the order API listens on (port 0 picks a free port).
    #[arg(long, env = "ORDER_API_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PostgreSQL URL of the service's database (its tables in the schema `order_service`,
    /// migrated at start-up; the consumer may share the database) [env:
    /// PRODUCER_DATABASE_URL, then DATABASE_URL].
    #[arg(long, env = "PRODUCER_DATABASE_URL", hide_env = true)]
    pub database_url: Option<String>,
    /// Largest request body the order API accepts, in bytes (413 beyond).
    #[arg(long, env = "ORDER_API_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// How long to keep retrying an unreachable database at start-up.
    #[arg(long, env = "PRODUCER_DATABASE_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub database_connect_timeout: Duration,
    /// Largest number of database connections (API requests and the relay share them).
    #[arg(long, env = "PRODUCER_DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    /// Topic the relay publishes order events to; values use the subject `<topic>-value`.
    #[arg(long, env = "ORDERS_TOPIC", default_value = "orders")]
    pub topic: String,
    /// Schema registry connection; the schema is registered at start-up.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// How long to keep retrying an unreachable schema registry at start-up.
    #[arg(long, env = "SCHEMA_REGISTRY_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub registry_connect_timeout: Duration,
    /// Value of the `producer` field of every event.
    #[arg(long, env = "PRODUCER_NAME", default_value = "order-service")]
    pub producer_name: String,
    /// Most outbox rows the relay publishes per round.
    #[arg(long, env = "OUTBOX_BATCH_SIZE", default_value_t = 500)]
    pub relay_batch_size: u32,
    /// How long the relay sleeps when the outbox is empty (a write wakes it earlier).
    #[arg(long, env = "OUTBOX_POLL_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub relay_poll_interval: Duration,
    /// Attempts after which an outbox row whose delivery fails permanently (a record too
    /// large for the topic, an invalid record) is parked instead of retried.
    #[arg(long, env = "OUTBOX_MAX_ATTEMPTS", default_value_t = 5)]
    pub relay_max_attempts: u32,
    /// How long sent outbox rows are kept before housekeeping deletes them.
    #[arg(long, env = "OUTBOX_RETENTION", default_value = "24h", value_parser = parse_duration)]
    pub outbox_retention: Duration,
    /// How often housekeeping deletes old outbox rows and expired idempotency keys.
    #[arg(long, env = "HOUSEKEEPING_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub housekeeping_interval: Duration,
    /// Operations endpoint (/metrics, /healthz, /readyz).
    #[command(flatten)]
    pub ops: OpsArgs,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Producer throughput settings of the relay.
    #[command(flatten)]
    pub producer: ProducerSettings,
}

/// Default of `--max-body-bytes`: well above the largest valid order (100 lines within
/// the field limits is about 15 KiB of JSON).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Default address of the order service's operations endpoint.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9101";

impl ServeArgs {
    /// Defaults for tests and embedding: API on `listen`, no metrics endpoint.
    pub fn new(
        listen: SocketAddr,
        database_url: &str,
        brokers: &str,
        registry_url: &str,
        topic: &str,
    ) -> Self {
        Self {
            listen,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            database_url: Some(database_url.to_string()),
            database_connect_timeout: Duration::from_secs(30),
            database_max_connections: 10,
            topic: topic.to_string(),
            registry: RegistryArgs::for_url(registry_url),
            registry_connect_timeout: Duration::from_secs(30),
            producer_name: "order-service".into(),
            relay_batch_size: 500,
            relay_poll_interval: Duration::from_millis(500),
            relay_max_attempts: 5,
            outbox_retention: Duration::from_secs(24 * 60 * 60),
            housekeeping_interval: Duration::from_secs(10 * 60),
            ops: OpsArgs {
                metrics_addr: String::new(),
            },
            kafka: KafkaArgs::for_brokers(brokers),
            producer: ProducerSettings::default(),
        }
    }

    /// The database URL: `--database-url` / `PRODUCER_DATABASE_URL`, else `DATABASE_URL`.
    pub fn resolved_database_url(&self) -> ServiceResult<String> {
        self.database_url
            .clone()
            .filter(|url| !url.trim().is_empty())
            .or_else(|| {
                std::env::var(FALLBACK_DATABASE_URL_ENV)
                    .ok()
                    .filter(|url| !url.trim().is_empty())
            })
            .ok_or_else(|| {
                ServiceError::Config(
                    "no database: pass --database-url or set PRODUCER_DATABASE_URL or DATABASE_URL"
                        .into(),
                )
            })
    }

    /// Checks each flag and the combinations; the error says which flag to change.
    pub fn validate(&self) -> ServiceResult<()> {
        let fail = |message: String| Err(ServiceError::Config(message));
        self.resolved_database_url()?;
        if self.topic.trim().is_empty() {
            return fail("--topic must not be empty".into());
        }
        if self.producer_name.trim().is_empty() {
            return fail("--producer-name must not be empty".into());
        }
        if self.max_body_bytes < 1024 {
            return fail("--max-body-bytes must be at least 1024".into());
        }
        if self.relay_batch_size == 0 {
            return fail("--relay-batch-size must be at least 1".into());
        }
        if self.relay_max_attempts == 0 {
            return fail("--relay-max-attempts must be at least 1".into());
        }
        if self.housekeeping_interval.is_zero() {
            return fail("--housekeeping-interval must be above 0".into());
        }
        if self.relay_poll_interval.is_zero() {
            return fail("--relay-poll-interval must be above 0".into());
        }
        if self.database_max_connections < 2 {
            return fail(
                "--database-max-connections must be at least 2 (the relay holds one while the API serves)"
                    .into(),
            );
        }
        if let Err(error) = self.registry.settings(self.kafka.config_file.as_ref()) {
            return fail(error.to_string());
        }
        self.producer.validate().map_err(ServiceError::Config)?;
        self.ops.address()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs::new(
            "127.0.0.1:0".parse().unwrap(),
            "postgres://u:p@127.0.0.1/db",
            "127.0.0.1:1",
            "http://127.0.0.1:1",
            "orders",
        )
    }

    #[test]
    fn defaults_are_valid_and_bad_flags_are_named() {
        assert!(args().validate().is_ok());
        let mut bad = args();
        bad.relay_batch_size = 0;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("--relay-batch-size")
        );
        let mut bad = args();
        bad.topic = " ".into();
        assert!(bad.validate().unwrap_err().to_string().contains("--topic"));
        let mut bad = args();
        bad.ops.metrics_addr = "nonsense".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("--metrics-addr")
        );
    }
}
