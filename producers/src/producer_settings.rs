//! Settings of the Kafka producer the generator writes with, and the librdkafka
//! configuration built from them.
//!
//! Fixed, not configurable: `enable.idempotence=true` and `acks=all` (no record is lost
//! or written twice by a client retry), the `murmur2_random` partitioner (the Java
//! client's default for keyed records, so every client puts an order on the same
//! partition) and `allow.auto.create.topics=false` (topics come from `topics.yaml`; a
//! producer's metadata request would otherwise create a missing topic with the broker's
//! defaults, which Kafka does unless `auto.create.topics.enable=false`).
//! `--kafka-option` still overrides anything, for operators who know better.

use std::time::Duration;

use orderflow_runtime::kafka::{KafkaArgs, parse_duration};
use rdkafka::ClientConfig;

/// Compression codec of produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip: small, slow.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4: fast, a good default when CPU is scarce.
    Lz4,
    /// Zstandard: smaller than LZ4 for more CPU.
    Zstd,
}

impl Compression {
    /// The librdkafka `compression.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Throughput settings of the producer.
#[derive(Debug, Clone, clap::Args)]
pub struct ProducerSettings {
    /// Compression codec of produced batches.
    #[arg(long, env = "PRODUCER_COMPRESSION", value_enum, default_value_t = Compression::Lz4)]
    pub compression: Compression,
    /// How long the client waits for more records before sending a batch (librdkafka
    /// linger.ms): more waiting, bigger batches, higher throughput, more latency.
    #[arg(long, env = "PRODUCER_LINGER", default_value = "20ms", value_parser = parse_duration)]
    pub linger: Duration,
    /// Largest batch in bytes per partition (librdkafka batch.size).
    #[arg(long, env = "PRODUCER_BATCH_SIZE", default_value_t = 1_000_000)]
    pub batch_size: u32,
    /// How long the client keeps retrying one record before reporting it failed
    /// (librdkafka message.timeout.ms / delivery.timeout.ms).
    #[arg(long, env = "PRODUCER_DELIVERY_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub delivery_timeout: Duration,
}

impl Default for ProducerSettings {
    fn default() -> Self {
        Self {
            compression: Compression::Lz4,
            linger: Duration::from_millis(20),
            batch_size: 1_000_000,
            delivery_timeout: Duration::from_secs(120),
        }
    }
}

impl ProducerSettings {
    /// Checks the values librdkafka would otherwise reject later with a vaguer message.
    pub fn validate(&self) -> Result<(), String> {
        if self.linger > Duration::from_secs(900) {
            return Err(format!(
                "--linger {:?} is above librdkafka's limit of 900s",
                self.linger
            ));
        }
        if self.batch_size == 0 {
            return Err("--batch-size must be at least 1 byte".into());
        }
        if self.delivery_timeout < Duration::from_secs(1) {
            return Err(format!(
                "--delivery-timeout {:?} leaves no time to retry; use at least 1s",
                self.delivery_timeout
            ));
        }
        Ok(())
    }

    /// The client configuration: brokers from `kafka`, the idempotent-producer settings,
    /// these throughput settings, then the user's `--kafka-option` overrides.
    pub fn client_config(&self, kafka: &KafkaArgs) -> ClientConfig {
        let mut config = kafka.client_config();
        config
            .set("client.id", "order-producer")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("allow.auto.create.topics", "false")
            .set("compression.type", self.compression.as_str())
            .set("linger.ms", self.linger.as_millis().to_string())
            .set("batch.size", self.batch_size.to_string())
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().to_string(),
            );
        kafka.apply_overrides(&mut config);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotent_java_compatible_defaults_and_overrides_win() {
        let mut kafka = KafkaArgs::for_brokers("127.0.0.1:1");
        kafka.options.push(("linger.ms".into(), "3".into()));
        let config = ProducerSettings::default().client_config(&kafka);
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("acks"), Some("all"));
        assert_eq!(config.get("partitioner"), Some("murmur2_random"));
        assert_eq!(config.get("allow.auto.create.topics"), Some("false"));
        assert_eq!(config.get("compression.type"), Some("lz4"));
        assert_eq!(config.get("linger.ms"), Some("3"));
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:1"));
    }

    #[test]
    fn rejects_values_librdkafka_cannot_use() {
        let settings = ProducerSettings {
            batch_size: 0,
            ..ProducerSettings::default()
        };
        assert!(settings.validate().unwrap_err().contains("--batch-size"));
        let settings = ProducerSettings {
            delivery_timeout: Duration::from_millis(10),
            ..ProducerSettings::default()
        };
        assert!(
            settings
                .validate()
                .unwrap_err()
                .contains("--delivery-timeout")
        );
        assert!(ProducerSettings::default().validate().is_ok());
    }
}
