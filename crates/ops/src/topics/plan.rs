//! Desired versus observed: the list of changes that would make the cluster match the file,
//! and the changes Kafka cannot make or that need the operator's word (a partition
//! increase on a keyed topic). A DLQ (`<topic>.dlq`) never has fewer partitions than its
//! source, so a dead-lettered record keeps its partition. Pure code, no broker.

use std::collections::BTreeMap;
use std::fmt;

use orderflow_contracts::dead_letter::DLQ_SUFFIX;
use serde::Serialize;

use super::key_moves::{KeyMoves, KeySample, describe_moves};
use super::refusal::Refusal;
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
    /// Keys read from the end of each partition; read only when the plan would raise
    /// the partition count.
    pub keys: Option<KeySample>,
}

/// Choices of the operator that change what a plan allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Raise the partition count of keyed topics too (`--allow-key-moves`).
    pub allow_key_moves: bool,
}

/// A change `apply` makes.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The topic has fewer partitions than the file asks for (or than its source topic,
    /// for a DLQ).
    AddPartitions {
        /// Topic name.
        topic: String,
        /// Current partition count.
        from: i32,
        /// Partition count after the change.
        to: i32,
        /// Why, when not the file's own count: `in step with <source>`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The keys that change partition (keyed topics, with `--allow-key-moves`).
        #[serde(skip_serializing_if = "Option::is_none")]
        key_moves: Option<KeyMoves>,
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

/// The difference between the file and the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Changes `apply` makes, in topic-name order.
    pub changes: Vec<Change>,
    /// Drift `apply` refuses to touch.
    pub refusals: Vec<Refusal>,
}

/// The partition count each topic should have: the file's, raised for a DLQ to its
/// source's. Covers DLQs outside the file that the cluster has. Each with the reason
/// when it is not the file's own number.
pub fn partition_targets(
    desired: &[DesiredTopic],
    observed: &BTreeMap<String, ObservedTopic>,
) -> BTreeMap<String, (i32, Option<String>)> {
    let mut targets: BTreeMap<String, (i32, Option<String>)> = desired
        .iter()
        .map(|t| (t.name.as_str().to_owned(), (t.partitions, None)))
        .collect();
    for source in desired {
        let name = source.name.as_str();
        if name.ends_with(DLQ_SUFFIX) {
            continue;
        }
        let dlq = orderflow_contracts::dead_letter::dlq_topic(name);
        let current = match targets.get(&dlq) {
            Some((partitions, _)) => Some(*partitions),
            None => observed.get(&dlq).map(|t| t.partitions),
        };
        if let Some(current) = current
            && current < source.partitions
        {
            let reason = format!("in step with {name}");
            targets.insert(dlq, (source.partitions, Some(reason)));
        }
    }
    targets
}

impl Plan {
    /// Compares each desired topic with what the cluster has. Topics that exist only in the
    /// cluster are ignored (but a source's DLQ is kept in step), and so are configs the
    /// file does not name (broker defaults).
    pub fn compute(
        desired: &[DesiredTopic],
        observed: &BTreeMap<String, ObservedTopic>,
        options: PlanOptions,
    ) -> Plan {
        let mut plan = Plan::default();
        let targets = partition_targets(desired, observed);
        for topic in desired {
            let name = topic.name.as_str();
            let (partitions, _) = targets[name].clone();
            let wanted: BTreeMap<String, String> = topic
                .configs
                .iter()
                .map(|(key, value)| (key.clone(), value.as_str().to_owned()))
                .collect();
            let Some(current) = observed.get(name) else {
                plan.changes.push(Change::CreateTopic {
                    topic: name.to_owned(),
                    partitions,
                    replication_factor: topic.replication_factor,
                    configs: wanted,
                });
                continue;
            };

            if partitions < current.partitions {
                plan.refusals.push(Refusal::PartitionDecrease {
                    topic: name.to_owned(),
                    from: current.partitions,
                    to: partitions,
                });
            } else {
                plan.raise_partitions(name, current, &targets, options);
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
        // DLQs the file does not name, kept in step with their source.
        for name in targets.keys() {
            if desired.iter().all(|d| d.name.as_str() != name)
                && let Some(current) = observed.get(name)
            {
                plan.raise_partitions(name, current, &targets, options);
            }
        }
        plan
    }

    /// Plans raising `name` to its target count, or refuses it for a keyed topic.
    fn raise_partitions(
        &mut self,
        name: &str,
        current: &ObservedTopic,
        targets: &BTreeMap<String, (i32, Option<String>)>,
        options: PlanOptions,
    ) {
        let Some((to, reason)) = targets.get(name).cloned() else {
            return;
        };
        let from = current.partitions;
        if to <= from {
            return;
        }
        let key_moves = current
            .keys
            .as_ref()
            .filter(|sample| sample.is_keyed())
            .map(|sample| KeyMoves::compute(sample, from, to));
        match key_moves {
            Some(key_moves) if !options.allow_key_moves => {
                self.refusals.push(Refusal::KeyedPartitionIncrease {
                    topic: name.to_owned(),
                    from,
                    to,
                    key_moves,
                });
            }
            key_moves => self.changes.push(Change::AddPartitions {
                topic: name.to_owned(),
                from,
                to,
                reason,
                key_moves,
            }),
        }
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
            Change::AddPartitions {
                topic,
                from,
                to,
                reason,
                key_moves,
            } => {
                write!(f, "~ {topic}: partitions {from} -> {to}")?;
                if let Some(reason) = reason {
                    write!(f, " ({reason})")?;
                }
                if let Some(moves) = key_moves {
                    write!(f, "\n    {}", describe_moves(moves))?;
                }
                Ok(())
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

#[cfg(test)]
mod tests;
