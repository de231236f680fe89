//! Desired versus observed: the list of changes that would make the cluster match the file,
//! and the changes Kafka cannot make. Pure code, no broker.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::resolve::DesiredTopic;

/// One topic as the cluster reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedTopic {
    /// Partition count from the metadata.
    pub partitions: i32,
    /// Replica count of the topic's partitions, from the metadata.
    pub replication_factor: i16,
    /// Config values the broker reports (defaults included), by name.
    pub configs: BTreeMap<String, String>,
}

/// A change `apply` makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// The topic does not exist: create it with its partitions, replication and configs.
    CreateTopic {
        /// Topic name.
        topic: String,
        /// Partition count.
        partitions: i32,
        /// Replication factor.
        replication_factor: i16,
        /// Configs set at creation.
        configs: BTreeMap<String, String>,
    },
    /// The topic has fewer partitions than the file asks for.
    AddPartitions {
        /// Topic name.
        topic: String,
        /// Current partition count.
        from: i32,
        /// Partition count after the change.
        to: i32,
    },
    /// A config the file names has another value (or none) on the topic.
    SetConfig {
        /// Topic name.
        topic: String,
        /// Config name.
        key: String,
        /// Current value; `None` when the broker does not report one.
        from: Option<String>,
        /// Value from the file.
        to: String,
    },
}

/// Drift that `apply` will not touch, with what the operator can do instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// The file asks for fewer partitions than the topic has.
    PartitionDecrease {
        /// Topic name.
        topic: String,
        /// Current partition count.
        from: i32,
        /// Partition count the file asks for.
        to: i32,
    },
    /// The file asks for another replication factor than the topic has.
    ReplicationFactorChange {
        /// Topic name.
        topic: String,
        /// Current replication factor.
        from: i16,
        /// Replication factor the file asks for.
        to: i16,
    },
}

/// The difference between the file and the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Changes `apply` makes, in topic-name order.
    pub changes: Vec<Change>,
    /// Drift `apply` refuses to touch.
    pub refusals: Vec<Refusal>,
}

impl Plan {
    /// Compares each desired topic with what the cluster has. Topics that exist only in the
    /// cluster are ignored, and so are configs the file does not name (broker defaults).
    pub fn compute(desired: &[DesiredTopic], observed: &BTreeMap<String, ObservedTopic>) -> Plan {
        let mut plan = Plan::default();
        for topic in desired {
            let name = topic.name.as_str();
            let wanted: BTreeMap<String, String> = topic
                .configs
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().to_owned()))
                .collect();
            let Some(current) = observed.get(name) else {
                plan.changes.push(Change::CreateTopic {
                    topic: name.to_owned(),
                    partitions: topic.partitions,
                    replication_factor: topic.replication_factor,
                    configs: wanted,
                });
                continue;
            };

            if topic.partitions > current.partitions {
                plan.changes.push(Change::AddPartitions {
                    topic: name.to_owned(),
                    from: current.partitions,
                    to: topic.partitions,
                });
            } else if topic.partitions < current.partitions {
                plan.refusals.push(Refusal::PartitionDecrease {
                    topic: name.to_owned(),
                    from: current.partitions,
                    to: topic.partitions,
                });
            }
            if topic.replication_factor != current.replication_factor {
                plan.refusals.push(Refusal::ReplicationFactorChange {
                    topic: name.to_owned(),
                    from: current.replication_factor,
                    to: topic.replication_factor,
                });
            }

            for (key, value) in &wanted {
                let now = current.configs.get(key);
                if now != Some(value) {
                    plan.changes.push(Change::SetConfig {
                        topic: name.to_owned(),
                        key: key.clone(),
                        from: now.cloned(),
                        to: value.clone(),
                    });
                }
            }
        }
        plan
    }

    /// True when the cluster matches the file: nothing to change, nothing refused.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.refusals.is_empty()
    }
}

impl Change {
    /// The topic this change is about.
    pub fn topic(&self) -> &str {
        match self {
            Change::CreateTopic { topic, .. }
            | Change::AddPartitions { topic, .. }
            | Change::SetConfig { topic, .. } => topic,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateTopic {
                topic,
                partitions,
                replication_factor,
                configs,
            } => {
                write!(
                    f,
                    "+ {topic}: create with {partitions} partitions, replication factor {replication_factor}"
                )?;
                for (key, value) in configs {
                    write!(f, "\n    {key} = {value}")?;
                }
                Ok(())
            }
            Change::AddPartitions { topic, from, to } => {
                write!(f, "~ {topic}: partitions {from} -> {to}")
            }
            Change::SetConfig {
                topic,
                key,
                from,
                to,
            } => {
                let from = from.as_deref().unwrap_or("(not set)");
                write!(f, "~ {topic}: {key} {from} -> {to}")
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::PartitionDecrease { topic, from, to } => write!(
                f,
                "! {topic}: the file asks for {to} partitions but the topic has {from}. \
                 Kafka cannot lower a partition count: set partitions back to {from} in the file, \
                 or create a new topic with {to} partitions, move producers and consumers to it \
                 and delete the old one"
            ),
            Refusal::ReplicationFactorChange { topic, from, to } => write!(
                f,
                "! {topic}: the file asks for replication factor {to} but the topic has {from}. \
                 orderflow does not move replicas: reassign them with kafka-reassign-partitions.sh, \
                 or use replication factor {from} for this environment (--replication-factor or \
                 environments.<env>.replication_factor)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::config_value::ConfigValue;
    use crate::topics::topic_name::TopicName;

    fn desired(name: &str, partitions: i32, configs: &[(&str, &str)]) -> DesiredTopic {
        DesiredTopic {
            name: TopicName::new(name).unwrap(),
            partitions,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), ConfigValue::new(*v)))
                .collect(),
        }
    }

    fn observed(partitions: i32, configs: &[(&str, &str)]) -> ObservedTopic {
        ObservedTopic {
            partitions,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn cluster(topics: &[(&str, ObservedTopic)]) -> BTreeMap<String, ObservedTopic> {
        topics
            .iter()
            .map(|(name, topic)| (name.to_string(), topic.clone()))
            .collect()
    }

    #[test]
    fn missing_topic_is_created_with_its_configs() {
        let plan = Plan::compute(
            &[desired("orders", 12, &[("retention.ms", "1000")])],
            &BTreeMap::new(),
        );
        assert_eq!(
            plan.changes,
            [Change::CreateTopic {
                topic: "orders".into(),
                partitions: 12,
                replication_factor: 1,
                configs: [("retention.ms".to_string(), "1000".to_string())].into(),
            }]
        );
        assert!(plan.refusals.is_empty());
    }

    #[test]
    fn matching_cluster_gives_an_empty_plan_and_ignores_unnamed_configs() {
        let want = [desired("orders", 12, &[("retention.ms", "1000")])];
        let have = cluster(&[(
            "orders",
            observed(12, &[("retention.ms", "1000"), ("segment.bytes", "1")]),
        )]);
        let plan = Plan::compute(&want, &have);
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn more_partitions_and_changed_configs_are_planned() {
        let want = [desired(
            "orders",
            12,
            &[("retention.ms", "2000"), ("cleanup.policy", "delete")],
        )];
        let have = cluster(&[(
            "orders",
            observed(6, &[("retention.ms", "1000"), ("segment.ms", "60000")]),
        )]);
        let plan = Plan::compute(&want, &have);
        assert_eq!(
            plan.changes,
            [
                Change::AddPartitions {
                    topic: "orders".into(),
                    from: 6,
                    to: 12
                },
                Change::SetConfig {
                    topic: "orders".into(),
                    key: "cleanup.policy".into(),
                    from: None,
                    to: "delete".into()
                },
                Change::SetConfig {
                    topic: "orders".into(),
                    key: "retention.ms".into(),
                    from: Some("1000".into()),
                    to: "2000".into()
                },
            ]
        );
    }

    #[test]
    fn fewer_partitions_is_refused_with_what_to_do() {
        let plan = Plan::compute(
            &[desired("orders", 6, &[])],
            &cluster(&[("orders", observed(12, &[]))]),
        );
        assert!(plan.changes.is_empty());
        assert_eq!(
            plan.refusals,
            [Refusal::PartitionDecrease {
                topic: "orders".into(),
                from: 12,
                to: 6
            }]
        );
        let message = plan.refusals[0].to_string();
        assert!(
            message.contains("Kafka cannot lower a partition count"),
            "{message}"
        );
        assert!(message.contains("set partitions back to 12"), "{message}");
    }

    #[test]
    fn replication_factor_drift_is_refused() {
        let mut want = desired("orders", 3, &[]);
        want.replication_factor = 3;
        let plan = Plan::compute(&[want], &cluster(&[("orders", observed(3, &[]))]));
        assert_eq!(
            plan.refusals,
            [Refusal::ReplicationFactorChange {
                topic: "orders".into(),
                from: 1,
                to: 3
            }]
        );
    }

    #[test]
    fn topics_only_in_the_cluster_are_left_alone() {
        let plan = Plan::compute(&[], &cluster(&[("legacy", observed(1, &[]))]));
        assert!(plan.is_empty());
    }

    #[test]
    fn changes_render_for_people_and_as_tagged_json() {
        let change = Change::SetConfig {
            topic: "orders".into(),
            key: "retention.ms".into(),
            from: None,
            to: "1000".into(),
        };
        assert_eq!(
            change.to_string(),
            "~ orders: retention.ms (not set) -> 1000"
        );
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(json["kind"], "set_config");
        assert_eq!(json["from"], serde_json::Value::Null);
    }
}
