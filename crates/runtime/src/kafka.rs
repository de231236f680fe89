//! Kafka client settings shared by every binary, and a start-up reachability check.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
use rdkafka::util::Timeout;

use crate::client_properties::{ClientProperties, is_registry_key, redacted_pairs, shown_value};
use crate::{Error, Result, backoff};

/// Where clients connect when neither `--brokers` nor the properties file says.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// Kafka connection flags shared by every binary.
#[derive(Clone, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, comma-separated host:port [default: bootstrap.servers of
    /// --kafka-config, else 127.0.0.1:9092].
    #[arg(long = "brokers", env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Kafka client properties file (Java/librdkafka names: security.protocol,
    /// sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, ...). `--brokers`
    /// and `--kafka-option` win over it. Schema registry keys in it (schema.registry.*,
    /// basic.auth.*, bearer.auth.*) go to the registry client, as with Confluent clients.
    #[arg(long = "kafka-config", env = "KAFKA_CONFIG", value_name = "FILE", value_parser = parse_properties_file)]
    pub config_file: Option<ClientProperties>,
    /// Extra librdkafka setting as key=value (repeatable; env: comma-separated), e.g.
    /// security.protocol=SASL_SSL. Applied last, so it overrides orderflow's defaults.
    #[arg(long = "kafka-option", env = "KAFKA_OPTIONS", value_delimiter = ',', value_parser = parse_option, hide_env_values = true)]
    pub options: Vec<(String, String)>,
    /// How long to keep retrying an unreachable broker at start-up before giving up.
    #[arg(long, env = "KAFKA_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
}

impl KafkaArgs {
    /// Settings for `brokers` alone, for tests and tools.
    pub fn for_brokers(brokers: impl Into<String>) -> Self {
        Self {
            brokers: Some(brokers.into()),
            config_file: None,
            options: Vec::new(),
            connect_timeout: Duration::from_secs(30),
        }
    }

    /// The bootstrap brokers: `--brokers`, else the properties file's
    /// `bootstrap.servers`, else [`DEFAULT_BROKERS`].
    pub fn brokers(&self) -> &str {
        self.brokers
            .as_deref()
            .or_else(|| self.config_file.as_ref()?.get("bootstrap.servers"))
            .unwrap_or(DEFAULT_BROKERS)
    }

    /// A client configuration with the bootstrap servers and the user's settings.
    /// Callers add their role's settings (idempotence, group id, ...) before
    /// [`KafkaArgs::apply_overrides`] is called again, or call this last.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        self.apply_overrides(&mut config);
        config
    }

    /// Applies the user's settings to `config` so they win over defaults a role set
    /// after [`KafkaArgs::client_config`]: the properties file, then `--brokers`, then
    /// `--kafka-option`.
    pub fn apply_overrides(&self, config: &mut ClientConfig) {
        let file_entries = self.config_file.iter().flat_map(|file| file.entries());
        for (key, value) in file_entries.filter(|(key, _)| !is_registry_key(key)) {
            config.set(key, value);
        }
        config.set("bootstrap.servers", self.brokers());
        for (key, value) in &self.options {
            config.set(key, value);
        }
    }

    /// The user's settings with secrets replaced by `***`, for start-up logs.
    pub fn describe(&self) -> String {
        let config = self.client_config();
        let mut pairs: Vec<(String, String)> = config
            .config_map()
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        pairs.sort();
        redacted_pairs(&pairs)
    }

    /// Waits until the cluster answers a metadata request, for `connect_timeout`.
    /// Refused credentials or an untrusted certificate fail at once.
    pub async fn wait_for_brokers(&self) -> Result<()> {
        // Settings beyond the bootstrap list are worth a line; a failure stays one line
        // when there are none.
        if self.config_file.is_some() || !self.options.is_empty() {
            tracing::info!(settings = %self.describe(), "connecting to Kafka");
        } else {
            tracing::debug!(settings = %self.describe(), "connecting to Kafka");
        }
        wait_for_brokers(&self.client_config(), self.brokers(), self.connect_timeout).await
    }
}

impl fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("config_file", &self.config_file)
            .field("options", &redacted_pairs(&self.options))
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Reads `--kafka-config` while the flags are parsed, so a bad file is a usage error.
fn parse_properties_file(raw: &str) -> std::result::Result<ClientProperties, String> {
    ClientProperties::load(Path::new(raw))
}

/// A failure that retrying cannot fix: the broker refused our credentials or we do
/// not trust its certificate (or it does not trust ours).
#[derive(Debug, Clone)]
struct Refusal {
    code: RDKafkaErrorCode,
    reason: String,
}

/// Client context of the start-up probe: keeps the first authentication or TLS error
/// librdkafka reports, and keeps librdkafka's own log lines at debug level so the
/// operator sees one line, ours.
#[derive(Default, Clone)]
struct ProbeContext {
    refusal: Arc<Mutex<Option<Refusal>>>,
}

impl ProbeContext {
    fn refuse(&self, code: RDKafkaErrorCode, reason: &str) {
        let mut refusal = self.refusal.lock().unwrap_or_else(|e| e.into_inner());
        refusal.get_or_insert(Refusal {
            code,
            reason: reason.trim().to_string(),
        });
    }
}

impl ClientContext for ProbeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // A failed TLS handshake reaches the application only as this log line (no
        // error event), so the line is where the reason comes from.
        let severe = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
        );
        if severe && fac == "FAIL" {
            // Drops librdkafka's `[thrd:...]: ` prefix.
            let log_message = match log_message.split_once("]: ") {
                Some((thread, rest)) if thread.starts_with("[thrd:") => rest,
                _ => log_message,
            };
            if log_message.contains("SASL authentication error") {
                self.refuse(RDKafkaErrorCode::Authentication, log_message);
            } else if log_message.contains("SSL") {
                self.refuse(RDKafkaErrorCode::SSL, log_message);
            }
        }
        tracing::debug!(target: "librdkafka", ?level, fac, "{log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        match error.rdkafka_error_code() {
            Some(code @ (RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)) => {
                self.refuse(code, reason)
            }
            _ => tracing::debug!(error = %error, reason, "Kafka client error during start-up"),
        }
    }
}

impl ProducerContext for ProbeContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// Fetches cluster metadata until it succeeds or `deadline` passes; the error names the
/// bootstrap address so the operator knows what to fix.
pub async fn wait_for_brokers(
    config: &ClientConfig,
    brokers: &str,
    deadline: Duration,
) -> Result<()> {
    let context = ProbeContext::default();
    let probe: BaseProducer<ProbeContext> = config
        .create_with_context(context.clone())
        .map_err(|err| Error::Config(format!("Kafka client settings: {}", shown_error(&err))))?;
    let probe = Arc::new(probe);
    let outcome = backoff::retry_until(deadline, "Kafka broker", brokers, || {
        let probe = probe.clone();
        let refusal = context.refusal.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let fetched = probe.client().fetch_metadata(None, Duration::from_secs(3));
                // Serves the error events, which is where a refusal shows up.
                probe.poll(Timeout::After(Duration::ZERO));
                if let Some(refusal) = refusal.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                    return Ok(Err(refusal));
                }
                fetched.map(|_| Ok(())).map_err(|err| err.to_string())
            })
            .await
            .map_err(|err| err.to_string())?
        }
    })
    .await?;
    outcome.map_err(|refusal| {
        let what = match refusal.code {
            RDKafkaErrorCode::Authentication => {
                "refused the credentials (check sasl.mechanism, sasl.username, sasl.password)"
            }
            _ => "failed the TLS handshake (check ssl.ca.location and the broker's certificate)",
        };
        Error::Refused {
            address: brokers.to_string(),
            what: what.to_string(),
            reason: refusal.reason,
        }
    })
}

/// An rdkafka error as text, with the value of a secret setting replaced.
pub fn shown_error(err: &KafkaError) -> String {
    match err {
        KafkaError::ClientConfig(_, description, key, value) => {
            format!("{description} ({key}={})", shown_value(key, value))
        }
        other => other.to_string(),
    }
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

/// Client context for a reader that asks librdkafka to report the end of a partition
/// (`enable.partition.eof`). rdkafka hands every error event to the context as well as
/// to the poll, and its default context logs each at ERROR, so every end of partition
/// printed `Global error: PartitionEOF`. That is an answer the reader asked for, not a
/// fault: here it is dropped, and every other client error is logged as the default
/// context would (as a warning: the poll sees it too).
#[derive(Clone, Copy, Debug, Default)]
pub struct PartitionEofContext;

impl ClientContext for PartitionEofContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_eof(&error) {
            return;
        }
        tracing::warn!(error = %error, reason, "Kafka client error");
    }
}

impl rdkafka::consumer::ConsumerContext for PartitionEofContext {}

/// True for the end-of-partition report, in either of the forms rdkafka gives it.
pub fn is_partition_eof(error: &KafkaError) -> bool {
    matches!(error, KafkaError::PartitionEOF(_))
        || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
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

    #[test]
    fn properties_file_sits_under_flags() {
        let file = ClientProperties::parse(
            "bootstrap.servers=file:1\nlinger.ms=9\nsasl.password=hunter2\n\
             schema.registry.url=https://sr\nbasic.auth.user.info=k:s\n",
        )
        .unwrap();
        let mut args = KafkaArgs::for_brokers("h:1");
        args.brokers = None;
        args.config_file = Some(file);
        assert_eq!(args.brokers(), "file:1");
        args.options.push(("linger.ms".into(), "7".into()));
        let config = args.client_config();
        assert_eq!(config.get("linger.ms"), Some("7"));
        assert_eq!(config.get("sasl.password"), Some("hunter2"));
        assert_eq!(
            config.get("schema.registry.url"),
            None,
            "librdkafka refuses it"
        );
        assert_eq!(config.get("basic.auth.user.info"), None);
        args.brokers = Some("flag:1".into());
        assert_eq!(
            args.client_config().get("bootstrap.servers"),
            Some("flag:1")
        );
        let shown = format!("{} {args:?}", args.describe());
        assert!(
            !shown.contains("hunter2") && shown.contains("sasl.password=***"),
            "{shown}"
        );
    }

    #[test]
    fn config_errors_hide_secret_values() {
        let err = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "bad".into(),
            "sasl.password".into(),
            "hunter2".into(),
        );
        assert_eq!(shown_error(&err), "bad (sasl.password=***)");
    }

    #[tokio::test]
    async fn unreachable_broker_names_the_address() {
        let mut args = KafkaArgs::for_brokers("127.0.0.1:1");
        args.connect_timeout = Duration::from_millis(500);
        let err = args.wait_for_brokers().await.unwrap_err().to_string();
        assert!(err.contains("127.0.0.1:1"), "{err}");
    }

    #[test]
    fn the_end_of_a_partition_is_told_from_other_errors() {
        assert!(is_partition_eof(&KafkaError::PartitionEOF(3)));
        assert!(is_partition_eof(&KafkaError::Global(
            RDKafkaErrorCode::PartitionEOF
        )));
        assert!(!is_partition_eof(&KafkaError::Global(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
    }
}
