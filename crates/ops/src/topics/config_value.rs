//! A topic config value as written in topics.yaml: a YAML scalar, kept as the string Kafka uses.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// One topic-level config value. Kafka's admin API speaks strings, so numbers and
/// booleans from the file are turned into their decimal/`true`/`false` text here,
/// once, and compared as strings with what the broker reports.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ConfigValue(String);

impl ConfigValue {
    /// Wraps a value already in Kafka's string form.
    pub fn new(value: impl Into<String>) -> Self {
        ConfigValue(value.into())
    }

    /// The value as sent to the broker.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ConfigValueVisitor)
    }
}

struct ConfigValueVisitor;

impl<'de> Visitor<'de> for ConfigValueVisitor {
    type Value = ConfigValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a string, number or boolean (Kafka topic config values are scalars; \
             write a list as one string, e.g. `compact,delete`)",
        )
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ConfigValue, E> {
        Ok(ConfigValue::new(value))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<ConfigValue, E> {
        Ok(ConfigValue::new(value.to_string()))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<ConfigValue, E> {
        Ok(ConfigValue::new(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ConfigValue, E> {
        Ok(ConfigValue::new(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<ConfigValue, E> {
        if value.is_finite() {
            Ok(ConfigValue::new(value.to_string()))
        } else {
            Err(E::custom(format!(
                "{value} is not a config value Kafka accepts"
            )))
        }
    }
}

/// Checks one `key: value` pair for mistakes the broker would only report at apply time:
/// a key that cannot be a Kafka config name, or a value outside a known enumeration.
pub fn check_config(key: &str, value: &ConfigValue) -> Result<(), String> {
    let key_ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && !key.starts_with('.')
        && !key.ends_with('.');
    if !key_ok {
        return Err(format!(
            "`{key}` is not a Kafka config name (lowercase words joined by dots, e.g. `retention.ms`)"
        ));
    }
    let allowed: &[&str] = match key {
        "cleanup.policy" => &["delete", "compact", "compact,delete", "delete,compact"],
        "compression.type" => &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
        "message.timestamp.type" => &["CreateTime", "LogAppendTime"],
        _ => return Ok(()),
    };
    if allowed.contains(&value.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not a valid {key}; expected one of: {}",
            allowed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::topics::file::{YamlError, parse_yaml};

    #[test]
    fn config_names_and_enumerated_values_are_checked() {
        let value = |v: &str| ConfigValue::new(v);
        assert!(check_config("retention.ms", &value("1")).is_ok());
        assert!(check_config("cleanup.policy", &value("compact,delete")).is_ok());
        assert!(check_config("retention_ms", &value("1")).is_ok());
        let err = check_config("Retention.MS", &value("1")).unwrap_err();
        assert!(err.contains("not a Kafka config name"), "{err}");
        let err = check_config("cleanup.policy", &value("remove")).unwrap_err();
        assert!(err.contains("expected one of: delete, compact"), "{err}");
        assert!(check_config("compression.type", &value("brotli")).is_err());
    }

    fn parse(yaml: &str) -> Result<BTreeMap<String, ConfigValue>, YamlError> {
        parse_yaml(yaml)
    }

    #[test]
    fn scalars_become_kafka_strings() {
        let values = parse(
            "retention.ms: 604800000\nunclean.leader.election.enable: false\n\
             min.cleanable.dirty.ratio: 0.5\ncleanup.policy: delete\nsegment.bytes: '1073741824'\n",
        )
        .unwrap();
        let as_str = |key: &str| values[key].as_str().to_owned();
        assert_eq!(as_str("retention.ms"), "604800000");
        assert_eq!(as_str("unclean.leader.election.enable"), "false");
        assert_eq!(as_str("min.cleanable.dirty.ratio"), "0.5");
        assert_eq!(as_str("cleanup.policy"), "delete");
        assert_eq!(as_str("segment.bytes"), "1073741824");
    }

    #[test]
    fn lists_maps_and_nulls_are_refused_with_their_line() {
        let err = parse("retention.ms: 1\ncleanup.policy: [delete, compact]\n").unwrap_err();
        let message = err.message;
        assert!(message.contains("cleanup.policy"), "{message}");
        assert!(message.contains("string, number or boolean"), "{message}");
        assert_eq!(err.line, Some(2));

        assert!(parse("retention.ms: {days: 7}\n").is_err());
        assert!(parse("retention.ms: ~\n").is_err());
    }
}
