//! Kafka client settings shared by every binary, and a start-up reachability check.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::{Error, Result, backoff};

/// Kafka connection flags shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, comma-separated host:port.
    #[arg(
        long = "brokers",
        env = "KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Extra librdkafka setting as key=value (repeatable; env: comma-separated), e.g.
    /// security.protocol=SASL_SSL. Applied last, so it overrides orderflow's defaults.
    #[arg(long = "kafka-option", env = "KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_option)]
    pub options: Vec<(String, String)>,
    /// How long to keep retrying an unreachable broker at start-up before giving up.
    #[arg(long, env = "KAFKA_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

impl KafkaArgs {
    /// Settings for `brokers` alone, for tests and tools.
    pub fn for_brokers(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            options: Vec::new(),
            connect_timeout: Duration::from_secs(30),
        }
    }

    /// A client configuration with the bootstrap servers and the user's overrides.
    /// Callers add their role's settings (idempotence, group id, ...) before
    /// [`KafkaArgs::apply_overrides`] is called again, or call this last.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        self.apply_overrides(&mut config);
        config
    }

    /// Applies the `--kafka-option` overrides to `config`, so they win over defaults
    /// a role set after [`KafkaArgs::client_config`].
    pub fn apply_overrides(&self, config: &mut ClientConfig) {
        for (key, value) in &self.options {
            config.set(key, value);
        }
    }

    /// Waits until the cluster answers a metadata request, for `connect_timeout`.
    pub async fn wait_for_brokers(&self) -> Result<()> {
        wait_for_brokers(&self.client_config(), &self.brokers, self.connect_timeout).await
    }
}

/// Fetches cluster metadata until it succeeds or `deadline` passes; the error names the
/// bootstrap address so the operator knows what to fix.
pub async fn wait_for_brokers(
    config: &ClientConfig,
    brokers: &str,
    deadline: Duration,
) -> Result<()> {
    let consumer: BaseConsumer = config
        .clone()
        .create()
        .map_err(|err| Error::Config(format!("Kafka client settings: {err}")))?;
    let consumer = std::sync::Arc::new(consumer);
    backoff::retry_until(deadline, "Kafka broker", brokers, || {
        let consumer = consumer.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                consumer
                    .fetch_metadata(None, Duration::from_secs(3))
                    .map(|_| ())
                    .map_err(|err| err.to_string())
            })
            .await
            .map_err(|err| err.to_string())?
        }
    })
    .await
}

/// Parses `key=value` for `--kafka-option`.
pub fn parse_option(raw: &str) -> std::result::Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!("expected key=value, got {raw:?}")),
    }
}

/// Parses a duration such as `500ms`, `30s`, `5m`, `2h` or `7d` (a bare number is seconds).
pub fn parse_duration(raw: &str) -> std::result::Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("expected a duration like 500ms, 30s, 5m, 7d; got {raw:?}"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {raw:?} (use ms, s, m, h or d)"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("duration must be positive: {raw:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert!(parse_duration("7 weeks").unwrap_err().contains("unit"));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn options_need_key_and_value() {
        assert_eq!(
            parse_option("a.b=c=d").unwrap(),
            ("a.b".into(), "c=d".into())
        );
        assert!(parse_option("novalue").is_err());
        assert!(parse_option("=x").is_err());
    }

    #[test]
    fn overrides_win_over_defaults() {
        let mut args = KafkaArgs::for_brokers("h:1");
        args.options.push(("linger.ms".into(), "7".into()));
        let mut config = args.client_config();
        config.set("linger.ms", "5");
        args.apply_overrides(&mut config);
        assert_eq!(config.get("linger.ms"), Some("7"));
        assert_eq!(config.get("bootstrap.servers"), Some("h:1"));
    }

    #[tokio::test]
    async fn unreachable_broker_names_the_address() {
        let mut args = KafkaArgs::for_brokers("127.0.0.1:1");
        args.connect_timeout = Duration::from_millis(500);
        let err = args.wait_for_brokers().await.unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:1"), "{err}");
    }
}
