//! The complete config set an AlterConfigs request must carry for one topic.
//!
//! rdkafka 0.39 exposes only the original AlterConfigs, which replaces a topic's whole set
//! of topic-level configs: a key the request leaves out goes back to its default.
//! IncrementalAlterConfigs (KIP-339) is not in its safe API, and calling rdkafka-sys
//! directly would need the unsafe code the workspace forbids. So `apply` reads the topic's
//! configs right before altering them (DescribeConfigs), keeps every config set on the
//! topic itself, whoever set it, and lays the file's values over them.
//!
//! The race this leaves: a topic config someone else changes between that DescribeConfigs
//! and the AlterConfigs (one round trip apart) is put back to the value read, or removed if
//! it was added in between. Kafka offers no compare-and-set on configs; only
//! IncrementalAlterConfigs would close the window.

use std::collections::BTreeMap;

use rdkafka::admin::{ConfigEntry, ConfigSource};

/// The configs to send for a topic whose configs are now `current`: the entries set on the
/// topic (source `DynamicTopic`, not broker or built-in defaults) with `wanted` laid over them.
///
/// `Err` names a config set on the topic that came back without a value (a sensitive one)
/// and that `wanted` does not name: sending the set without it would erase it.
pub(crate) fn merged_config_set(
    current: &[ConfigEntry],
    wanted: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut set = BTreeMap::new();
    for entry in current {
        if entry.source != ConfigSource::DynamicTopic || wanted.contains_key(&entry.name) {
            continue;
        }
        let Some(value) = &entry.value else {
            return Err(entry.name.clone());
        };
        set.insert(entry.name.clone(), value.clone());
    }
    set.extend(
        wanted
            .iter()
            .map(|(key, value)| (key.clone(), value.clone())),
    );
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: Option<&str>, source: ConfigSource) -> ConfigEntry {
        ConfigEntry {
            name: name.into(),
            value: value.map(Into::into),
            is_default: source == ConfigSource::Default,
            source,
            is_read_only: false,
            is_sensitive: value.is_none(),
        }
    }

    fn wanted(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn keeps_configs_set_on_the_topic_and_lays_the_file_over_them() {
        let current = [
            entry("retention.ms", Some("1000"), ConfigSource::DynamicTopic),
            entry("segment.ms", Some("60000"), ConfigSource::DynamicTopic),
            entry("cleanup.policy", Some("delete"), ConfigSource::Default),
            entry("min.insync.replicas", Some("2"), ConfigSource::StaticBroker),
            entry("compression.type", Some("lz4"), ConfigSource::DynamicBroker),
        ];
        let set =
            merged_config_set(&current, &wanted(&[("retention.ms", "2000")])).expect("merged");
        assert_eq!(
            set,
            wanted(&[("retention.ms", "2000"), ("segment.ms", "60000")]),
            "broker and built-in defaults are not pinned on the topic"
        );
    }

    #[test]
    fn a_hidden_config_set_on_the_topic_stops_the_change() {
        let current = [entry("some.secret", None, ConfigSource::DynamicTopic)];
        let hidden = merged_config_set(&current, &wanted(&[("retention.ms", "1")]))
            .expect_err("would erase the hidden config");
        assert_eq!(hidden, "some.secret");
        // Unless the file names it: then the file's value replaces it anyway.
        let set = merged_config_set(&current, &wanted(&[("some.secret", "x")])).expect("merged");
        assert_eq!(set, wanted(&[("some.secret", "x")]));
    }
}
