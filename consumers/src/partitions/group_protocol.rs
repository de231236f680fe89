//! The consumer-group protocol: `classic` (client-side cooperative-sticky
//! assignment, session timeout set by the client) or `consumer` (KIP-848: the
//! broker assigns and owns session and heartbeat timing). Both hand the engine
//! incremental assign/revoke callbacks.

use rdkafka::ClientConfig;

use crate::error::{Error, Result};

/// Which group protocol the worker speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GroupProtocol {
    /// The classic protocol with the cooperative-sticky assignor.
    #[default]
    Classic,
    /// The KIP-848 consumer protocol (Kafka 4.0 or later).
    Consumer,
}

/// librdkafka settings that the broker owns under the consumer protocol; setting
/// any of them makes librdkafka refuse to create the consumer.
const BROKER_OWNED: [&str; 4] = [
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "partition.assignment.strategy",
    "group.protocol.type",
];

impl GroupProtocol {
    /// Adds this protocol's group settings to `config`. `session_timeout_ms` only
    /// applies to `classic`; under `consumer` the broker's
    /// `group.consumer.session.timeout.ms` decides.
    pub(crate) fn configure(self, config: &mut ClientConfig, session_timeout_ms: u128) {
        match self {
            Self::Classic => config
                .set("group.protocol", "classic")
                .set("partition.assignment.strategy", "cooperative-sticky")
                .set("session.timeout.ms", session_timeout_ms.to_string()),
            Self::Consumer => config.set("group.protocol", "consumer"),
        };
    }

    /// Rejects user settings that contradict this protocol, from `--kafka-option`
    /// (`options`) or the `--kafka-config` file (`file`): the protocol itself (use
    /// `--group-protocol`) and, under `consumer`, the settings the broker owns. The
    /// error is one line naming the setting and where it came from.
    pub(crate) fn check_settings(
        self,
        options: &[(String, String)],
        file: &[(String, String)],
    ) -> Result<()> {
        let sources = [("--kafka-option", options), ("--kafka-config", file)];
        for (source, settings) in sources {
            for (key, _) in settings {
                self.check_setting(source, key)?;
            }
        }
        Ok(())
    }

    fn check_setting(self, source: &str, key: &str) -> Result<()> {
        if key == "group.protocol" {
            return Err(Error::Config(format!(
                "{source} sets group.protocol: remove it and use --group-protocol classic|consumer"
            )));
        }
        if self == Self::Consumer && BROKER_OWNED.contains(&key) {
            return Err(Error::Config(format!(
                "{source} sets {key}, which the broker owns with --group-protocol consumer: remove it (group.consumer.* broker configs set it; group.remote.assignor picks the assignor), or use --group-protocol classic"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn consumer_protocol_leaves_broker_owned_settings_unset() {
        let mut config = ClientConfig::new();
        GroupProtocol::Consumer.configure(&mut config, 45_000);
        assert_eq!(config.get("group.protocol"), Some("consumer"));
        for key in BROKER_OWNED {
            assert_eq!(config.get(key), None, "{key}");
        }
        let mut config = ClientConfig::new();
        GroupProtocol::Classic.configure(&mut config, 6_000);
        assert_eq!(
            config.get("partition.assignment.strategy"),
            Some("cooperative-sticky")
        );
        assert_eq!(config.get("session.timeout.ms"), Some("6000"));
    }

    #[test]
    fn broker_owned_overrides_are_rejected_under_consumer_only() {
        let session = options(&[("session.timeout.ms", "10000")]);
        let error = GroupProtocol::Consumer
            .check_settings(&session, &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("session.timeout.ms"), "{error}");
        assert!(!error.contains('\n'));
        GroupProtocol::Classic
            .check_settings(&session, &[])
            .unwrap();
        GroupProtocol::Consumer
            .check_settings(&options(&[("fetch.wait.max.ms", "100")]), &[])
            .unwrap();
        assert!(
            GroupProtocol::Classic
                .check_settings(&options(&[("group.protocol", "consumer")]), &[])
                .is_err()
        );
    }

    #[test]
    fn the_properties_file_is_checked_like_the_options() {
        let file = options(&[
            ("security.protocol", "SASL_SSL"),
            ("session.timeout.ms", "45000"),
        ]);
        let error = GroupProtocol::Consumer
            .check_settings(&[], &file)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--kafka-config sets session.timeout.ms"),
            "{error}"
        );
        assert!(!error.contains('\n'));
        GroupProtocol::Classic.check_settings(&[], &file).unwrap();
        let protocol_in_file = options(&[("group.protocol", "consumer")]);
        let error = GroupProtocol::Classic
            .check_settings(&[], &protocol_in_file)
            .unwrap_err()
            .to_string();
        assert!(error.contains("--group-protocol"), "{error}");
    }

    #[test]
    fn librdkafka_accepts_what_configure_sets() {
        use rdkafka::consumer::BaseConsumer;
        for protocol in [GroupProtocol::Classic, GroupProtocol::Consumer] {
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", "127.0.0.1:1")
                .set("group.id", "g");
            protocol.configure(&mut config, 10_000);
            config
                .create::<BaseConsumer>()
                .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        }
        let mut refused = ClientConfig::new();
        refused
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("group.id", "g")
            .set("session.timeout.ms", "10000");
        GroupProtocol::Consumer.configure(&mut refused, 10_000);
        assert!(refused.create::<BaseConsumer>().is_err());
    }
}
