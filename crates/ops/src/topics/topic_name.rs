//! Kafka's rules for topic names, checked while the file is parsed so errors carry a line.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A topic name that Kafka will accept: 1 to 249 characters from `[a-zA-Z0-9._-]`,
/// and neither `.` nor `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TopicName(String);

impl TopicName {
    /// Checks `name` against Kafka's topic-name rules.
    pub fn new(name: impl Into<String>) -> Result<Self, String> {
        let name = name.into();
        if name.is_empty() {
            return Err("a topic name cannot be empty".into());
        }
        if name == "." || name == ".." {
            return Err(format!("`{name}` is not a valid topic name"));
        }
        if name.len() > MAX_TOPIC_NAME_LEN {
            return Err(format!(
                "topic name is {} characters long, Kafka allows at most {MAX_TOPIC_NAME_LEN}",
                name.len()
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "topic name `{name}` contains {bad:?}; Kafka allows only ASCII letters, digits, '.', '_' and '-'"
            ));
        }
        Ok(TopicName(name))
    }

    /// The name as Kafka sees it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name with `.` replaced by `_`: Kafka's metric names do this, so two topics
    /// whose names differ only there collide (and Kafka refuses to create the second).
    pub fn metric_name(&self) -> String {
        self.0.replace('.', "_")
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TopicName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Checked inside the visitor so the error points at the name's own line.
        deserializer.deserialize_str(TopicNameVisitor)
    }
}

struct TopicNameVisitor;

impl Visitor<'_> for TopicNameVisitor {
    type Value = TopicName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kafka topic name")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<TopicName, E> {
        TopicName::new(value).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_topic_names() {
        for name in ["orders", "orders.dlq", "a-b_c.D9", &"x".repeat(249)] {
            assert_eq!(TopicName::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn rejects_names_kafka_rejects_with_the_reason() {
        assert!(TopicName::new("").unwrap_err().contains("empty"));
        assert!(TopicName::new("..").unwrap_err().contains("not a valid"));
        assert!(
            TopicName::new("x".repeat(250))
                .unwrap_err()
                .contains("at most 249")
        );
        let err = TopicName::new("orders/v2").unwrap_err();
        assert!(err.contains("'/'"), "{err}");
        assert!(TopicName::new("örders").is_err());
        assert!(TopicName::new("orders dlq").is_err());
    }

    #[test]
    fn dots_and_underscores_share_a_metric_name() {
        let dotted = TopicName::new("orders.dlq").unwrap();
        let underscored = TopicName::new("orders_dlq").unwrap();
        assert_eq!(dotted.metric_name(), underscored.metric_name());
    }
}
