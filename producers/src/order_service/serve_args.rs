//! Flags of `order-producer serve`, and the checks across them done at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use orderflow_runtime::kafka::{KafkaArgs, parse_duration};
use orderflow_runtime::ops_server::OpsArgs;
use orderflow_schemas::RegistryArgs;

use crate::order_service::http::api_tokens::{API_TOKENS_ENV, ApiTokens, SecretString};
use crate::order_service::http::load_limits::LoadLimits;
use crate::order_service::service_error::{ServiceError, ServiceResult};
use crate::producer_settings::ProducerSettings;
use orderflow_outbox::database_url::resolve_database_url;

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
    /// PostgreSQL URL of the service's migration role, which owns its schema: start-up
    /// migrates through it, grants the --database-url role row access to the tables, and
    /// closes it. The --database-url role then needs no right to create or drop tables
    /// (docs/security.md). Default: migrate through --database-url.
    #[arg(
        long,
        env = "PRODUCER_DATABASE_MIGRATION_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_migration_url: Option<String>,
    /// Largest request body the order API accepts, in bytes (413 beyond).
    #[arg(long, env = "ORDER_API_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// File of API bearer tokens, one a line as `name:token` (`#` starts a comment). The
    /// name is the client: its orders and idempotency keys are its own (other clients
    /// get 404), and logs and metrics name it; several tokens may share a name
    /// (rotation). A token carries at least 128 bits (32 hex digits; `openssl rand -hex
    /// 32`); weaker tokens, the example token and bare `token` lines stop start-up. With
    /// tokens, every /orders request needs `Authorization: Bearer <token>`; without,
    /// requests act as the client `default`. Tokens are required when --listen is not a
    /// loopback address.
    #[arg(long, env = "ORDER_API_TOKENS_FILE", value_name = "PATH")]
    pub api_tokens_file: Option<PathBuf>,
    /// API bearer tokens, comma separated, as in --api-tokens-file. Prefer the environment
    /// variable or the file: a command line is visible to every user of the machine.
    #[arg(long, env = API_TOKENS_ENV, hide_env_values = true, value_name = "TOKENS")]
    pub api_tokens: Option<SecretString>,
    /// Serve without authentication even when --listen is not a loopback address (only
    /// behind a proxy or network that authenticates callers itself).
    #[arg(long, env = "ORDER_API_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Requests a second each client may send on average (fractions allowed: 0.5 is one
    /// every 2 s); a client is a token's name, or the peer address without
    /// authentication. 0 turns rate limiting off.
    #[arg(long, env = "ORDER_API_RATE_LIMIT_PER_SECOND", default_value_t = 100.0)]
    pub rate_limit_per_second: f64,
    /// Requests a client may send at once before the per-second rate applies (429 with
    /// Retry-After beyond). 0 turns rate limiting off.
    #[arg(long, env = "ORDER_API_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,
    /// Longest a request may take before it is abandoned and answered 503 (0: no limit).
    #[arg(long, env = "ORDER_API_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Most /orders requests served at once; beyond it a request is answered 503 with
    /// Retry-After at once instead of queueing (0: no limit).
    #[arg(long, env = "ORDER_API_MAX_CONCURRENT_REQUESTS", default_value_t = 256)]
    pub max_concurrent_requests: usize,
    /// How long to keep retrying an unreachable database at start-up.
    #[arg(long, env = "PRODUCER_DATABASE_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub database_connect_timeout: Duration,
    /// Largest number of database connections of the API (the relay has 3 of its own).
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
    /// Most outbox rows the relay publishes per Kafka transaction (per slot).
    #[arg(long, env = "OUTBOX_BATCH_SIZE", default_value_t = 500)]
    pub relay_batch_size: u32,
    /// How long the relay sleeps when the outbox is empty (a write wakes it earlier).
    #[arg(long, env = "OUTBOX_POLL_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub relay_poll_interval: Duration,
    /// Attempts after which an outbox row whose delivery fails permanently (a record too
    /// large for the topic, an invalid record) is parked instead of retried.
    #[arg(long, env = "OUTBOX_MAX_ATTEMPTS", default_value_t = 5)]
    pub relay_max_attempts: u32,
    /// Longest a relay transaction waits for its acknowledgements; rows not acknowledged
    /// by then (a slow or leaderless partition) back off, holding back only their orders.
    #[arg(long, env = "OUTBOX_ROUND_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub relay_round_wait: Duration,
    /// How long the relay's slot-ownership session may stay idle before PostgreSQL ends
    /// it: a relay that stopped without dying (a long pause) loses its slots after this,
    /// and another relay takes them over. The relay touches it every second.
    #[arg(long, env = "OUTBOX_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub relay_session_timeout: Duration,
    /// Prefix of the relay's transactional ids, `<prefix>-<topic>-<slot>`: one producer
    /// per outbox slot. Relays sharing a database and topic must use the same prefix.
    #[arg(
        long,
        env = "OUTBOX_TRANSACTIONAL_ID_PREFIX",
        default_value = "orderflow-relay"
    )]
    pub relay_transactional_id_prefix: String,
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

/// Highest `--rate-limit-per-second`: one request a microsecond, far beyond what one
/// instance serves (a smaller refill period could not be represented).
pub const MAX_RATE_LIMIT_PER_SECOND: f64 = 1_000_000.0;

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
            api_tokens_file: None,
            api_tokens: None,
            allow_unauthenticated: false,
            rate_limit_per_second: 100.0,
            rate_limit_burst: 200,
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 256,
            database_url: Some(database_url.to_string()),
            database_migration_url: None,
            database_connect_timeout: Duration::from_secs(30),
            database_max_connections: 10,
            topic: topic.to_string(),
            registry: RegistryArgs::for_url(registry_url),
            registry_connect_timeout: Duration::from_secs(30),
            producer_name: "order-service".into(),
            relay_batch_size: 500,
            relay_poll_interval: Duration::from_millis(500),
            relay_max_attempts: 5,
            relay_round_wait: Duration::from_secs(5),
            relay_session_timeout: Duration::from_secs(10),
            relay_transactional_id_prefix: "orderflow-relay".into(),
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
        resolve_database_url(self.database_url.as_deref()).ok_or_else(|| {
            ServiceError::Config(
                "no database: pass --database-url or set PRODUCER_DATABASE_URL or DATABASE_URL"
                    .into(),
            )
        })
    }

    /// The API tokens of --api-tokens-file and --api-tokens / ORDERFLOW_API_TOKENS.
    pub fn api_tokens(&self) -> ServiceResult<ApiTokens> {
        ApiTokens::load(
            self.api_tokens_file.as_deref(),
            self.api_tokens.as_ref().map(SecretString::expose),
        )
        .map_err(|error| ServiceError::Config(error.to_string()))
    }

    /// The request timeout and concurrency limit (0 is no limit).
    pub fn load_limits(&self) -> LoadLimits {
        LoadLimits {
            request_timeout: Some(self.request_timeout).filter(|timeout| !timeout.is_zero()),
            max_concurrent_requests: Some(self.max_concurrent_requests).filter(|max| *max > 0),
        }
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
        let tokens = self.api_tokens()?;
        if tokens.is_empty() && !self.listen.ip().is_loopback() && !self.allow_unauthenticated {
            return fail(format!(
                "--listen {} is reachable beyond this machine, so the API needs tokens: pass \
                 --api-tokens-file or set {API_TOKENS_ENV} (or pass --allow-unauthenticated)",
                self.listen
            ));
        }
        if !(0.0..=MAX_RATE_LIMIT_PER_SECOND).contains(&self.rate_limit_per_second) {
            return fail(format!(
                "--rate-limit-per-second must be 0 (off) to {MAX_RATE_LIMIT_PER_SECOND}"
            ));
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
        if self.relay_round_wait.is_zero() {
            return fail("--relay-round-wait must be above 0".into());
        }
        if self.relay_session_timeout < Duration::from_secs(3) {
            return fail(
                "--relay-session-timeout must be at least 3s: the relay touches its session every second"
                    .into(),
            );
        }
        if self.relay_transactional_id_prefix.trim().is_empty() {
            return fail("--relay-transactional-id-prefix must not be empty".into());
        }
        if self.relay_poll_interval.is_zero() {
            return fail("--relay-poll-interval must be above 0".into());
        }
        if self.database_max_connections < 1 {
            return fail("--database-max-connections must be at least 1".into());
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
        bad.rate_limit_per_second = -1.0;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("--rate-limit-per-second")
        );
        let mut bad = args();
        bad.ops.metrics_addr = "nonsense".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("--metrics-addr")
        );
    }

    #[test]
    fn listening_beyond_loopback_needs_tokens_or_an_explicit_opt_out() {
        let mut open = args();
        open.listen = "0.0.0.0:8080".parse().unwrap();
        let error = open.validate().unwrap_err().to_string();
        assert!(
            error.contains("--api-tokens-file") && error.contains("--allow-unauthenticated"),
            "{error}"
        );
        assert_eq!(error.lines().count(), 1, "{error}");

        let mut with_tokens = open.clone();
        with_tokens.api_tokens = Some("ci:3f9c1a7be2d84c05a61e9b7d2c4f8e10".parse().unwrap());
        assert!(with_tokens.validate().is_ok());
        let mut opted_out = open.clone();
        opted_out.allow_unauthenticated = true;
        assert!(opted_out.validate().is_ok());
        let mut ipv6_loopback = args();
        ipv6_loopback.listen = "[::1]:8080".parse().unwrap();
        assert!(ipv6_loopback.validate().is_ok());
    }
}
