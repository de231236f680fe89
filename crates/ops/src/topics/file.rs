//! The topics.yaml schema and its parser. Everything that can be checked while parsing is
//! checked here, so the error points at the line and field at fault.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::config_value::{ConfigValue, check_config};
use super::error::{Result, TopicsError};
use super::topic_name::TopicName;

/// The whole topics file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsFile {
    /// What every topic gets unless the topic or the environment says otherwise.
    #[serde(default)]
    pub defaults: Defaults,
    /// Every topic, keyed by its Kafka name.
    #[serde(deserialize_with = "unique_map")]
    pub topics: BTreeMap<TopicName, TopicSpec>,
    /// Per-environment overrides, selected with `--env`.
    #[serde(default, deserialize_with = "unique_map")]
    pub environments: BTreeMap<String, EnvironmentSpec>,
}

/// File-wide defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Replication factor of topics that do not set their own.
    pub replication_factor: Option<ReplicationFactor>,
    /// Configs every topic gets (a topic's own configs win).
    #[serde(default)]
    pub configs: Configs,
}

/// One topic as declared under `topics:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    /// Partition count. Kafka can raise it later, never lower it.
    pub partitions: Partitions,
    /// Replication factor; falls back to `defaults.replication_factor`.
    pub replication_factor: Option<ReplicationFactor>,
    /// Topic-level configs (`retention.ms`, `cleanup.policy`, ...).
    #[serde(default)]
    pub configs: Configs,
}

/// Overrides for one environment (`local`, `production`, ...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// Replication factor of every topic in this environment.
    pub replication_factor: Option<ReplicationFactor>,
    /// Configs every topic gets in this environment.
    #[serde(default)]
    pub configs: Configs,
    /// Per-topic overrides in this environment; each must name a topic under `topics:`.
    #[serde(default, deserialize_with = "unique_map")]
    pub topics: BTreeMap<TopicName, TopicOverride>,
}

/// One topic's overrides inside an environment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicOverride {
    /// Partition count in this environment.
    pub partitions: Option<Partitions>,
    /// Replication factor in this environment.
    pub replication_factor: Option<ReplicationFactor>,
    /// Configs of this topic in this environment.
    #[serde(default)]
    pub configs: Configs,
}

/// A partition count: at least 1, at most `i32::MAX` (Kafka's wire type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "i32")]
pub struct Partitions(i32);

impl Partitions {
    /// The count as Kafka's admin API takes it.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for Partitions {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, String> {
        match i32::try_from(value) {
            Ok(count) if count >= 1 => Ok(Partitions(count)),
            _ => Err(format!(
                "partitions must be between 1 and {}, got {value}",
                i32::MAX
            )),
        }
    }
}

impl From<Partitions> for i32 {
    fn from(value: Partitions) -> i32 {
        value.0
    }
}

impl<'de> Deserialize<'de> for Partitions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedInt::<Partitions>(PhantomData))
    }
}

/// A replication factor: at least 1, at most `i16::MAX` (Kafka's wire type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "i16")]
pub struct ReplicationFactor(i16);

impl ReplicationFactor {
    /// The factor as Kafka's admin API takes it.
    pub fn get(self) -> i16 {
        self.0
    }
}

impl TryFrom<i64> for ReplicationFactor {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, String> {
        match i16::try_from(value) {
            Ok(factor) if factor >= 1 => Ok(ReplicationFactor(factor)),
            _ => Err(format!(
                "replication_factor must be between 1 and {}, got {value}",
                i16::MAX
            )),
        }
    }
}

impl From<ReplicationFactor> for i16 {
    fn from(value: ReplicationFactor) -> i16 {
        value.0
    }
}

impl<'de> Deserialize<'de> for ReplicationFactor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedInt::<ReplicationFactor>(PhantomData))
    }
}

/// Reads an integer and checks it with `T::try_from` inside the YAML node, so a range
/// error carries the node's own field path and line. Read through `deserialize_any`: a
/// word where a number belongs is then named as such (`invalid type: string "twelve"`).
struct CheckedInt<T>(PhantomData<T>);

impl<T: TryFrom<i64, Error = String>> Visitor<'_> for CheckedInt<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
        T::try_from(value).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
        T::try_from(i64::try_from(value).unwrap_or(i64::MAX)).map_err(E::custom)
    }
}

/// A block of topic configs: names checked, values scalar, no name twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Configs(pub BTreeMap<String, ConfigValue>);

impl<'de> Deserialize<'de> for Configs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Checked inside the mapping so the error carries the mapping's field path and line.
        let check = |key: &String, value: &ConfigValue| {
            check_config(key, value).map_err(|reason| format!("{key}: {reason}"))
        };
        deserializer
            .deserialize_map(UniqueMapVisitor::new(check))
            .map(Configs)
    }
}

impl TopicsFile {
    /// Reads and parses the topics file at `path`.
    pub fn load(path: &Path) -> Result<TopicsFile> {
        let text = std::fs::read_to_string(path).map_err(|source| TopicsError::Read {
            path: path.to_owned(),
            source,
        })?;
        TopicsFile::parse(&text, path)
    }

    /// Parses topics-file text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<TopicsFile> {
        parse_yaml(text).map_err(|error| TopicsError::Parse {
            path: PathBuf::from(path),
            line: error.line,
            message: error.message,
        })
    }
}

/// A YAML document that did not parse into the wanted type: the field path, the
/// problem and its line and column, in one line.
#[derive(Debug)]
pub(crate) struct YamlError {
    /// Line of the offending value (1-based), when known.
    pub(crate) line: Option<usize>,
    /// `topics.orders.partitions: invalid value ... at line 3, column 17`.
    pub(crate) message: String,
}

/// Parses YAML text into `T`. The field path comes from serde_path_to_error (the YAML
/// parser's own messages carry none); the line from the parser.
pub(crate) fn parse_yaml<T: de::DeserializeOwned>(text: &str) -> std::result::Result<T, YamlError> {
    let mut options = serde_saphyr::Options::default();
    // One-line messages: the source excerpt is for terminals, our errors are log lines.
    options.with_snippet = false;
    // Repeated keys reach the visitors, which name the key (`orders` appears twice).
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    let mut field_path = None;
    serde_saphyr::with_deserializer_from_str_with_options(text, options, |deserializer| {
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            field_path = Some(error.path().to_string());
            error.into_inner()
        })
    })
    .map_err(|error| {
        // The parser's message ends with `at line L, column C`.
        let mut message = error.to_string();
        if let Some(field_path) = field_path.filter(|p| p != ".") {
            message = format!("{field_path}: {message}");
        }
        YamlError {
            line: error.location().map(|l| l.line() as usize),
            message,
        }
    })
}

/// Deserializes a YAML mapping into a `BTreeMap`, refusing a key that appears twice
/// (plain serde would silently keep the last one, hiding a copy-paste mistake).
fn unique_map<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord + fmt::Display,
    V: Deserialize<'de>,
{
    deserializer.deserialize_map(UniqueMapVisitor::new(|_: &K, _: &V| Ok(())))
}

/// Builds a `BTreeMap` from a mapping, refusing duplicate keys and entries `check` rejects.
struct UniqueMapVisitor<K, V, F> {
    check: F,
    entries: PhantomData<(K, V)>,
}

impl<K, V, F> UniqueMapVisitor<K, V, F> {
    fn new(check: F) -> Self {
        UniqueMapVisitor {
            check,
            entries: PhantomData,
        }
    }
}

impl<'de, K, V, F> Visitor<'de> for UniqueMapVisitor<K, V, F>
where
    K: Deserialize<'de> + Ord + fmt::Display,
    V: Deserialize<'de>,
    F: Fn(&K, &V) -> Result<(), String>,
{
    type Value = BTreeMap<K, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(key) = map.next_key::<K>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("`{key}` appears twice")));
            }
            let value = map.next_value()?;
            (self.check)(&key, &value).map_err(de::Error::custom)?;
            out.insert(key, value);
        }
        Ok(out)
    }

    // A key with nothing under it (`environments:`) is an empty mapping, not an error.
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TopicsFile> {
        TopicsFile::parse(text, Path::new("topics.yaml"))
    }

    /// The parse error's line and message, for asserting both.
    fn parse_error(text: &str) -> (Option<usize>, String) {
        match parse(text) {
            Err(TopicsError::Parse { line, .. }) => {
                let message = parse(text).unwrap_err().to_string();
                (line, message)
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    const VALID: &str = "\
defaults:
  replication_factor: 1
  configs:
    compression.type: zstd
topics:
  orders:
    partitions: 12
    configs:
      retention.ms: 604800000
  orders.dlq:
    partitions: 12
environments:
  local: {}
  production:
    replication_factor: 3
    topics:
      orders:
        configs:
          min.insync.replicas: 2
";

    #[test]
    fn parses_a_valid_file() {
        let file = parse(VALID).unwrap();
        assert_eq!(file.topics.len(), 2);
        let orders = &file.topics[&TopicName::new("orders").unwrap()];
        assert_eq!(orders.partitions.get(), 12);
        assert_eq!(orders.configs.0["retention.ms"].as_str(), "604800000");
        assert_eq!(file.defaults.replication_factor.unwrap().get(), 1);
        let production = &file.environments["production"];
        assert_eq!(production.replication_factor.unwrap().get(), 3);
        assert!(file.environments["local"].topics.is_empty());
    }

    #[test]
    fn unknown_field_names_the_field_the_file_and_the_line() {
        let text = "topics:\n  orders:\n    partitions: 12\n    retention_ms: 5\n";
        let (line, message) = parse_error(text);
        assert_eq!(line, Some(4));
        assert!(message.starts_with("topics.yaml: "), "{message}");
        assert!(message.contains("topics.orders"), "{message}");
        assert!(
            message.contains("unknown field `retention_ms`"),
            "{message}"
        );
        assert!(message.contains("line 4"), "{message}");
    }

    #[test]
    fn zero_partitions_is_refused_at_its_line() {
        let (line, message) = parse_error("topics:\n  orders:\n    partitions: 0\n");
        assert_eq!(line, Some(3));
        assert!(message.contains("topics.orders.partitions"), "{message}");
        assert!(
            message.contains("partitions must be between 1"),
            "{message}"
        );
    }

    #[test]
    fn zero_replication_factor_is_refused_at_its_line() {
        let text = "defaults:\n  replication_factor: 0\ntopics: {}\n";
        let (line, message) = parse_error(text);
        assert_eq!(line, Some(2));
        assert!(message.contains("defaults.replication_factor"), "{message}");
    }

    #[test]
    fn invalid_topic_name_is_refused_at_its_line() {
        let (line, message) =
            parse_error("topics:\n  orders:\n    partitions: 1\n  bad/name:\n    partitions: 1\n");
        assert_eq!(line, Some(4));
        assert!(message.contains("contains '/'"), "{message}");
    }

    #[test]
    fn missing_partitions_and_wrong_types_are_refused() {
        let (_, message) = parse_error("topics:\n  orders:\n    configs: {}\n");
        assert!(message.contains("missing field `partitions`"), "{message}");
        let (line, message) = parse_error("topics:\n  orders:\n    partitions: twelve\n");
        assert_eq!(line, Some(3));
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn a_topic_declared_twice_is_refused() {
        let (_, message) =
            parse_error("topics:\n  orders:\n    partitions: 1\n  orders:\n    partitions: 2\n");
        assert!(message.contains("`orders` appears twice"), "{message}");
    }

    #[test]
    fn bad_config_values_are_refused_with_the_key() {
        let text =
            "topics:\n  orders:\n    partitions: 1\n    configs:\n      cleanup.policy: remove\n";
        let (line, message) = parse_error(text);
        assert!(line.is_some());
        assert!(message.contains("topics.orders.configs"), "{message}");
        assert!(
            message.contains("cleanup.policy: `remove` is not a valid"),
            "{message}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = TopicsFile::load(Path::new("/nonexistent/topics.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/topics.yaml")
        );
    }
}
