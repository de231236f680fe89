//! Flags of `order-producer generate`, and the checks across them done at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use orderflow_runtime::kafka::{KafkaArgs, parse_duration};
use orderflow_runtime::registry::RegistryArgs;

use crate::generator::error::{ProducerError, Result};
use crate::producer_settings::ProducerSettings;

/// Orders open at once when `--orders` is not given.
pub const DEFAULT_ORDERS_OPEN: u64 = 100;

/// `order-producer generate`: writes realistic order lifecycles to Kafka.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// How many lifecycle events to generate. Duplicates and poison records come on top.
    #[arg(long, env = "GENERATE_COUNT", default_value_t = 1_000)]
    pub count: u64,
    /// Records per second, all records counted (0 = as fast as the broker takes them).
    #[arg(long, env = "GENERATE_RATE", default_value_t = 1_000)]
    pub rate: u32,
    /// How many orders are in progress at once. Their events are interleaved; an order
    /// that is shipped or cancelled is replaced by a new one. At most --count
    /// [default: 100, or --count when smaller].
    #[arg(long, env = "GENERATE_ORDERS")]
    pub orders: Option<u64>,
    /// Seed of the generator: the same seed gives the same orders, ids and event order
    /// (timestamps and trace ids stay fresh). Random (below 2^53, so JSON tools read it
    /// exactly) when not given; the summary shows it.
    #[arg(long, env = "GENERATE_SEED")]
    pub seed: Option<u64>,
    /// Topic to write to; values use the registry subject `<topic>-value`.
    #[arg(long, env = "ORDERS_TOPIC", default_value = "orders")]
    pub topic: String,
    /// Share of events sent twice (the same bytes and event_id again, right after the
    /// first), as a client retry would; in [0, 1].
    #[arg(long, env = "GENERATE_DUPLICATE_RATIO", default_value_t = 0.0)]
    pub duplicate_ratio: f64,
    /// Per event, the chance of an extra poison record a consumer must dead-letter,
    /// cycling through: not Avro, unknown schema id, invalid order total; in [0, 1].
    #[arg(long, env = "GENERATE_POISON_RATIO", default_value_t = 0.0)]
    pub poison_ratio: f64,
    /// Value of the `producer` field of every event.
    #[arg(long, env = "PRODUCER_NAME", default_value = "order-producer")]
    pub producer_name: String,
    /// Schema registry connection.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// How long to keep retrying an unreachable schema registry at start-up.
    #[arg(long, env = "SCHEMA_REGISTRY_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub registry_connect_timeout: Duration,
    /// How long to wait, at the end or after SIGINT/SIGTERM, for records in flight to be
    /// acknowledged; what is still unacknowledged then counts as failed.
    #[arg(long, env = "PRODUCER_FLUSH_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub flush_timeout: Duration,
    /// Address of the /metrics, /healthz and /readyz endpoint; empty disables it.
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:9101")]
    pub metrics_addr: String,
    /// Kafka connection.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Producer throughput settings.
    #[command(flatten)]
    pub producer: ProducerSettings,
}

impl GenerateArgs {
    /// Defaults for a run of `count` events into `topic` on `brokers`, for tests and
    /// embedding (no metrics endpoint).
    pub fn new(brokers: &str, registry_url: &str, topic: &str, count: u64) -> Self {
        Self {
            count,
            rate: 0,
            orders: None,
            seed: None,
            topic: topic.to_string(),
            duplicate_ratio: 0.0,
            poison_ratio: 0.0,
            producer_name: "order-producer".into(),
            registry: RegistryArgs::for_url(registry_url),
            registry_connect_timeout: Duration::from_secs(30),
            flush_timeout: Duration::from_secs(30),
            metrics_addr: String::new(),
            kafka: KafkaArgs::for_brokers(brokers),
            producer: ProducerSettings::default(),
        }
    }

    /// Checks each flag and the combinations; the error says which flag to change.
    pub fn validate(&self) -> Result<()> {
        let fail = |message: String| Err(ProducerError::Config(message));
        if self.count == 0 {
            return fail("--count must be at least 1".into());
        }
        match self.orders {
            Some(0) => return fail("--orders must be at least 1".into()),
            Some(orders) if orders > self.count => {
                return fail(format!(
                    "--orders {orders} is more than --count {}: every order starts with an \
                     OrderCreated event, so at most {} orders can ever be open; lower --orders \
                     or raise --count",
                    self.count, self.count
                ));
            }
            _ => {}
        }
        for (flag, ratio) in [
            ("--duplicate-ratio", self.duplicate_ratio),
            ("--poison-ratio", self.poison_ratio),
        ] {
            if !(0.0..=1.0).contains(&ratio) {
                return fail(format!("{flag} must be within [0, 1], got {ratio}"));
            }
        }
        if self.topic.trim().is_empty() {
            return fail("--topic must not be empty".into());
        }
        if self.producer_name.trim().is_empty() {
            return fail("--producer-name must not be empty".into());
        }
        if let Err(error) = self.registry.settings(self.kafka.config_file.as_ref()) {
            return fail(error.to_string());
        }
        if self.flush_timeout.is_zero() {
            return fail("--flush-timeout must be above 0, or records in flight are lost".into());
        }
        self.metrics_address()?;
        self.producer.validate().map_err(ProducerError::Config)
    }

    /// Orders open at once: `--orders`, or 100 (at most `--count`) when not given.
    pub fn orders_open(&self) -> u64 {
        self.orders
            .unwrap_or_else(|| self.count.clamp(1, DEFAULT_ORDERS_OPEN))
    }

    /// The metrics endpoint address, `None` when disabled with an empty value.
    pub fn metrics_address(&self) -> Result<Option<SocketAddr>> {
        let raw = self.metrics_addr.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse().map(Some).map_err(|_| {
            ProducerError::Config(format!(
                "--metrics-addr {raw:?} is not host:port (e.g. 127.0.0.1:9101)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> GenerateArgs {
        GenerateArgs::new("127.0.0.1:9092", "http://127.0.0.1:8081", "orders", 300)
    }

    fn error_of(args: GenerateArgs) -> String {
        args.validate().unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_valid() {
        args().validate().unwrap();
        let mut small = args();
        small.count = 5;
        small.validate().unwrap();
        assert_eq!(small.orders_open(), 5);
        assert_eq!(args().orders_open(), 100);
    }

    #[test]
    fn ratios_must_be_probabilities() {
        let mut a = args();
        a.duplicate_ratio = 1.5;
        assert!(error_of(a).contains("--duplicate-ratio"));
        let mut a = args();
        a.poison_ratio = -0.1;
        assert!(error_of(a).contains("--poison-ratio"));
        let mut a = args();
        a.poison_ratio = f64::NAN;
        assert!(error_of(a).contains("--poison-ratio"));
    }

    #[test]
    fn more_open_orders_than_events_is_explained() {
        let mut a = args();
        a.orders = Some(301);
        let error = error_of(a);
        assert!(
            error.contains("--orders 301") && error.contains("--count 300"),
            "{error}"
        );
    }

    #[test]
    fn addresses_and_timeouts_are_checked() {
        let mut a = args();
        a.registry.url = Some("127.0.0.1:8081".into());
        assert!(error_of(a).contains("http://"));
        let mut a = args();
        a.metrics_addr = "localhost".into();
        assert!(error_of(a).contains("--metrics-addr"));
        let mut a = args();
        a.flush_timeout = Duration::ZERO;
        assert!(error_of(a).contains("--flush-timeout"));
        let mut a = args();
        a.count = 0;
        assert!(error_of(a).contains("--count"));
    }
}
