//! Turns the parsed file plus an environment into the topics the cluster should have,
//! and runs the checks that need more than one field.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::config_value::ConfigValue;
use super::error::{Result, TopicsError};
use super::file::{ReplicationFactor, TopicsFile};
use super::topic_name::TopicName;

/// One topic as the cluster should have it in the selected environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredTopic {
    /// Kafka topic name.
    pub name: TopicName,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i16,
    /// The configs the file names for this topic; no other config is compared or set.
    pub configs: BTreeMap<String, ConfigValue>,
}

/// What to resolve the file for.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Environment name (`--env`).
    pub environment: String,
    /// Replication factor forced on every topic (`--replication-factor`), beating the file.
    pub replication_factor: Option<ReplicationFactor>,
}

impl TopicsFile {
    /// The desired topics for `options.environment`, in name order.
    ///
    /// Precedence, weakest first: `defaults`, the topic, `environments.<env>`,
    /// `environments.<env>.topics.<topic>`, then `--replication-factor`.
    /// The environment must be declared under `environments:` unless the file declares none.
    pub fn resolve(&self, path: &Path, options: &ResolveOptions) -> Result<Vec<DesiredTopic>> {
        let env_name = options.environment.as_str();
        let environment = match self.environments.get(env_name) {
            Some(environment) => Some(environment),
            None if self.environments.is_empty() => None,
            None => {
                return Err(TopicsError::UnknownEnvironment {
                    path: path.to_owned(),
                    env: env_name.to_owned(),
                    known: self
                        .environments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        };
        let invalid = |field: String, reason: String| TopicsError::Invalid {
            path: path.to_owned(),
            field,
            reason,
        };

        let undeclared = environment.and_then(|environment| {
            environment
                .topics
                .keys()
                .find(|name| !self.topics.contains_key(*name))
        });
        if let Some(unknown) = undeclared {
            return Err(invalid(
                format!("environments.{env_name}.topics.{unknown}"),
                "no such topic under `topics:` (an environment can only override declared topics)"
                    .into(),
            ));
        }
        self.check_metric_name_collisions(path)?;

        let mut desired = Vec::with_capacity(self.topics.len());
        for (name, spec) in &self.topics {
            let topic_override = environment.and_then(|environment| environment.topics.get(name));
            let partitions = topic_override
                .and_then(|o| o.partitions)
                .unwrap_or(spec.partitions);
            let replication_factor = options
                .replication_factor
                .or(topic_override.and_then(|o| o.replication_factor))
                .or(environment.and_then(|e| e.replication_factor))
                .or(spec.replication_factor)
                .or(self.defaults.replication_factor)
                .ok_or_else(|| {
                    invalid(
                        format!("topics.{name}.replication_factor"),
                        "not set here nor in defaults.replication_factor, the environment or --replication-factor".into(),
                    )
                })?;

            let mut configs = self.defaults.configs.0.clone();
            configs.extend(spec.configs.0.clone());
            if let Some(environment) = environment {
                configs.extend(environment.configs.0.clone());
            }
            if let Some(topic_override) = topic_override {
                configs.extend(topic_override.configs.0.clone());
            }

            check_min_insync_replicas(&configs, replication_factor.get()).map_err(|reason| {
                invalid(
                    format!("topics.{name}.configs.min.insync.replicas (env {env_name})"),
                    reason,
                )
            })?;

            desired.push(DesiredTopic {
                name: name.clone(),
                partitions: partitions.get(),
                replication_factor: replication_factor.get(),
                configs,
            });
        }
        Ok(desired)
    }

    /// Kafka refuses to create `a.b` when `a_b` exists (their metric names collide);
    /// catch that in the file instead of halfway through an apply.
    fn check_metric_name_collisions(&self, path: &Path) -> Result<()> {
        let mut seen: BTreeMap<String, &TopicName> = BTreeMap::new();
        for name in self.topics.keys() {
            if let Some(other) = seen.insert(name.metric_name(), name) {
                return Err(TopicsError::Invalid {
                    path: path.to_owned(),
                    field: format!("topics.{name}"),
                    reason: format!(
                        "collides with `{other}`: Kafka treats '.' and '_' alike in metric names and refuses the second topic"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// `min.insync.replicas` above the replication factor makes every `acks=all` write fail.
fn check_min_insync_replicas(
    configs: &BTreeMap<String, ConfigValue>,
    replication_factor: i16,
) -> std::result::Result<(), String> {
    let Some(value) = configs.get("min.insync.replicas") else {
        return Ok(());
    };
    match value.as_str().parse::<i64>() {
        Ok(min) if min >= 1 && min <= i64::from(replication_factor) => Ok(()),
        Ok(min) if min >= 1 => Err(format!(
            "{min} is above the replication factor {replication_factor}: every acks=all write would fail"
        )),
        _ => Err(format!("`{value}` is not a whole number of at least 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
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
    configs:
      retention.ms: 1209600000
environments:
  local:
    configs:
      compression.type: lz4
  production:
    replication_factor: 3
    configs:
      min.insync.replicas: 2
    topics:
      orders:
        partitions: 24
";

    fn resolve(text: &str, environment: &str) -> Result<Vec<DesiredTopic>> {
        let path = Path::new("topics.yaml");
        let options = ResolveOptions {
            environment: environment.into(),
            replication_factor: None,
        };
        TopicsFile::parse(text, path)?.resolve(path, &options)
    }

    fn config<'a>(topic: &'a DesiredTopic, key: &str) -> Option<&'a str> {
        topic.configs.get(key).map(ConfigValue::as_str)
    }

    #[test]
    fn local_uses_defaults_and_local_overrides() {
        let topics = resolve(FILE, "local").unwrap();
        let names: Vec<_> = topics.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["orders", "orders.dlq"]);
        let orders = &topics[0];
        assert_eq!((orders.partitions, orders.replication_factor), (12, 1));
        assert_eq!(config(orders, "compression.type"), Some("lz4"));
        assert_eq!(config(orders, "retention.ms"), Some("604800000"));
        assert_eq!(config(orders, "min.insync.replicas"), None);
        assert_eq!(config(&topics[1], "retention.ms"), Some("1209600000"));
    }

    #[test]
    fn production_overrides_replication_configs_and_one_topic() {
        let topics = resolve(FILE, "production").unwrap();
        let (orders, dlq) = (&topics[0], &topics[1]);
        assert_eq!((orders.partitions, orders.replication_factor), (24, 3));
        assert_eq!((dlq.partitions, dlq.replication_factor), (12, 3));
        assert_eq!(config(dlq, "min.insync.replicas"), Some("2"));
        assert_eq!(config(dlq, "compression.type"), Some("zstd"));
    }

    #[test]
    fn the_flag_beats_every_replication_factor_in_the_file() {
        let path = Path::new("topics.yaml");
        let options = ResolveOptions {
            environment: "local".into(),
            replication_factor: Some(ReplicationFactor::try_from(2).unwrap()),
        };
        let topics = TopicsFile::parse(FILE, path)
            .unwrap()
            .resolve(path, &options)
            .unwrap();
        assert!(topics.iter().all(|t| t.replication_factor == 2));
    }

    #[test]
    fn the_repository_topics_file_resolves_for_local_and_production() {
        let text = include_str!("../../../../topics.yaml");
        for (environment, replication) in [("local", 1), ("production", 3)] {
            let topics = resolve(text, environment).unwrap();
            let (orders, dlq) = (&topics[0], &topics[1]);
            assert_eq!(
                (orders.name.as_str(), dlq.name.as_str()),
                ("orders", "orders.dlq")
            );
            assert_eq!((orders.partitions, dlq.partitions), (12, 12));
            assert_eq!(orders.replication_factor, replication);
            let retention = |topic: &DesiredTopic| -> i64 {
                config(topic, "retention.ms").unwrap().parse().unwrap()
            };
            assert!(retention(dlq) > retention(orders), "the DLQ is kept longer");
            assert_eq!(config(dlq, "cleanup.policy"), Some("delete"));
        }
        let production = resolve(text, "production").unwrap();
        assert_eq!(config(&production[0], "min.insync.replicas"), Some("2"));
    }

    #[test]
    fn unknown_environment_lists_the_known_ones() {
        let err = resolve(FILE, "staging").unwrap_err().to_string();
        assert_eq!(
            err,
            "topics.yaml: unknown environment `staging` (the file declares: local, production)"
        );
    }

    #[test]
    fn a_file_without_environments_accepts_any_env() {
        let text = "defaults:\n  replication_factor: 1\ntopics:\n  t:\n    partitions: 3\n";
        assert_eq!(resolve(text, "local").unwrap()[0].partitions, 3);
    }

    #[test]
    fn min_insync_replicas_above_replication_is_refused() {
        let text = "topics:\n  orders:\n    partitions: 1\n    replication_factor: 1\n    configs:\n      min.insync.replicas: 2\n";
        let err = resolve(text, "local").unwrap_err().to_string();
        assert!(
            err.contains("topics.orders.configs.min.insync.replicas"),
            "{err}"
        );
        assert!(err.contains("above the replication factor 1"), "{err}");
    }

    #[test]
    fn missing_replication_factor_is_refused() {
        let err = resolve("topics:\n  orders:\n    partitions: 1\n", "local")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("topics.orders.replication_factor: not set"),
            "{err}"
        );
    }

    #[test]
    fn override_of_an_undeclared_topic_is_refused() {
        let text = "defaults:\n  replication_factor: 1\ntopics:\n  orders:\n    partitions: 1\n\
                    environments:\n  local:\n    topics:\n      ordrs:\n        partitions: 2\n";
        let err = resolve(text, "local").unwrap_err().to_string();
        assert!(
            err.contains("environments.local.topics.ordrs: no such topic"),
            "{err}"
        );
    }

    #[test]
    fn colliding_metric_names_are_refused() {
        let text = "defaults:\n  replication_factor: 1\ntopics:\n  a.b:\n    partitions: 1\n  a_b:\n    partitions: 1\n";
        let err = resolve(text, "local").unwrap_err().to_string();
        assert!(err.contains("collides with `a.b`"), "{err}");
    }
}
