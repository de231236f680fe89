//! The broker side: read topics and their configs through rdkafka's admin API, and apply a plan.
//! A broker that lacks an admin API is reported as such (`TopicsError::Unsupported`), never
//! papered over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use orderflow_runtime::kafka::KafkaArgs;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::error::{Result, TopicsError, error_code, is_unsupported_code};
use super::plan::{Change, ObservedTopic, Plan};
use super::resolve::DesiredTopic;

/// How long one admin request or metadata fetch may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected admin client for topics as code.
pub struct TopicsAdmin {
    admin: Arc<AdminClient<DefaultClientContext>>,
}

/// What `apply` did: changes made, and changes the broker refused (each with its error).
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// Changes the broker accepted.
    pub applied: Vec<Change>,
    /// Changes that failed, with the reason; the rest of the plan was still attempted.
    pub failed: Vec<(Change, TopicsError)>,
}

impl ApplyOutcome {
    /// `Ok` with the applied changes, or one error listing every failed change.
    pub fn into_result(self) -> Result<Vec<Change>> {
        if self.failed.is_empty() {
            return Ok(self.applied);
        }
        Err(TopicsError::ChangesFailed {
            failures: self
                .failed
                .iter()
                .map(|(change, error)| format!("  {change}: {error}"))
                .collect(),
        })
    }
}

impl TopicsAdmin {
    /// Waits for the brokers (retrying with backoff up to `--connect-timeout`, then failing
    /// with one line naming the address) and builds the admin client.
    pub async fn connect(kafka: &KafkaArgs) -> Result<TopicsAdmin> {
        kafka.wait_for_brokers().await?;
        let mut config = kafka.client_config();
        // A metadata request must never create a topic behind the plan's back.
        config.set("allow.auto.create.topics", "false");
        kafka.apply_overrides(&mut config);
        let admin = config.create().map_err(|source| TopicsError::Kafka {
            operation: "creating the admin client".into(),
            source,
        })?;
        Ok(TopicsAdmin {
            admin: Arc::new(admin),
        })
    }

    /// Partition count, replication factor and configs of each desired topic that exists.
    pub async fn observe(
        &self,
        desired: &[DesiredTopic],
    ) -> Result<BTreeMap<String, ObservedTopic>> {
        let mut observed = self.observe_metadata(desired).await?;
        if observed.is_empty() {
            return Ok(observed);
        }
        let names: Vec<String> = observed.keys().cloned().collect();
        let specifiers: Vec<ResourceSpecifier<'_>> = names
            .iter()
            .map(|name| ResourceSpecifier::Topic(name))
            .collect();
        let results = self
            .admin
            .describe_configs(&specifiers, &options())
            .await
            .map_err(|err| api_error("DescribeConfigs", "config drift cannot be checked", err))?;
        for result in results {
            let resource = result.map_err(|code| {
                code_error("DescribeConfigs", "config drift cannot be checked", code)
            })?;
            let rdkafka::admin::OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
                continue;
            };
            let Some(topic) = observed.get_mut(name) else {
                continue;
            };
            for entry in resource.entries {
                let Some(value) = entry.value else { continue };
                // Brokers that predate config sources report Unknown; then `is_default` decides.
                let set_on_topic = entry.source == ConfigSource::DynamicTopic
                    || (entry.source == ConfigSource::Unknown && !entry.is_default);
                if set_on_topic {
                    topic.overrides.insert(entry.name.clone(), value.clone());
                }
                topic.configs.insert(entry.name, value);
            }
        }
        Ok(observed)
    }

    /// Reads the cluster and compares it with `desired`.
    pub async fn plan(&self, desired: &[DesiredTopic]) -> Result<Plan> {
        let observed = self.observe(desired).await?;
        Ok(Plan::compute(desired, &observed))
    }

    /// Applies `plan`: creates missing topics, raises partition counts, sets configs.
    /// A plan with refusals is not applied at all. Each step is attempted even when an
    /// earlier one failed, and the outcome lists both.
    pub async fn apply(&self, plan: &Plan) -> Result<ApplyOutcome> {
        if !plan.refusals.is_empty() {
            return Err(TopicsError::Refused {
                refusals: plan.refusals.clone(),
            });
        }
        let mut outcome = ApplyOutcome::default();
        self.create_topics(plan, &mut outcome).await;
        self.add_partitions(plan, &mut outcome).await;
        self.set_configs(plan, &mut outcome).await;
        Ok(outcome)
    }

    async fn observe_metadata(
        &self,
        desired: &[DesiredTopic],
    ) -> Result<BTreeMap<String, ObservedTopic>> {
        let admin = self.admin.clone();
        // All topics rather than the desired ones by name: asking for a missing topic by
        // name can auto-create it on brokers that allow that.
        let metadata = tokio::task::spawn_blocking(move || {
            admin.inner().fetch_metadata(None, REQUEST_TIMEOUT)
        })
        .await
        .map_err(|err| TopicsError::Kafka {
            operation: format!("fetching metadata ({err})"),
            source: KafkaError::Canceled,
        })?
        .map_err(|source| TopicsError::Kafka {
            operation: "fetching metadata".into(),
            source,
        })?;

        let mut observed = BTreeMap::new();
        for topic in metadata.topics() {
            let wanted = desired.iter().any(|d| d.name.as_str() == topic.name());
            if !wanted || topic.error().is_some() {
                continue;
            }
            let partitions = topic.partitions();
            let replication_factor = partitions
                .first()
                .map_or(0, |partition| partition.replicas().len());
            observed.insert(
                topic.name().to_owned(),
                ObservedTopic {
                    partitions: i32::try_from(partitions.len()).unwrap_or(i32::MAX),
                    replication_factor: i16::try_from(replication_factor).unwrap_or(i16::MAX),
                    ..ObservedTopic::default()
                },
            );
        }
        Ok(observed)
    }

    async fn create_topics(&self, plan: &Plan, outcome: &mut ApplyOutcome) {
        let creates: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|change| matches!(change, Change::CreateTopic { .. }))
            .collect();
        let new_topics: Vec<NewTopic<'_>> = creates
            .iter()
            .filter_map(|change| match change {
                Change::CreateTopic {
                    topic,
                    partitions,
                    replication_factor,
                    configs,
                } => Some(configs.iter().fold(
                    NewTopic::new(
                        topic,
                        *partitions,
                        TopicReplication::Fixed(i32::from(*replication_factor)),
                    ),
                    |new_topic, (key, value)| new_topic.set(key, value),
                )),
                _ => None,
            })
            .collect();
        if new_topics.is_empty() {
            return;
        }
        let result = self.admin.create_topics(&new_topics, &options()).await;
        record_topic_results(
            "CreateTopics",
            "topics cannot be created",
            &creates,
            result,
            outcome,
        );
    }

    async fn add_partitions(&self, plan: &Plan, outcome: &mut ApplyOutcome) {
        let adds: Vec<&Change> = plan
            .changes
            .iter()
            .filter(|change| matches!(change, Change::AddPartitions { .. }))
            .collect();
        let new_partitions: Vec<NewPartitions<'_>> = adds
            .iter()
            .filter_map(|change| match change {
                Change::AddPartitions { topic, to, .. } => {
                    Some(NewPartitions::new(topic, usize::try_from(*to).unwrap_or(0)))
                }
                _ => None,
            })
            .collect();
        if new_partitions.is_empty() {
            return;
        }
        let result = self
            .admin
            .create_partitions(&new_partitions, &options())
            .await;
        record_topic_results(
            "CreatePartitions",
            "partition counts cannot be raised",
            &adds,
            result,
            outcome,
        );
    }

    async fn set_configs(&self, plan: &Plan, outcome: &mut ApplyOutcome) {
        if plan.config_sets.is_empty() {
            return;
        }
        // rdkafka 0.39 exposes only the legacy AlterConfigs, which replaces a topic's whole
        // config set; the plan's config set carries the topic's other overrides along.
        let alters: Vec<AlterConfig<'_>> = plan
            .config_sets
            .iter()
            .map(|(topic, set)| {
                set.iter().fold(
                    AlterConfig::new(ResourceSpecifier::Topic(topic)),
                    |alter, (key, value)| alter.set(key, value),
                )
            })
            .collect();
        let consequence = "topic configs cannot be changed";
        let config_changes = |topic: &str| -> Vec<Change> {
            plan.changes
                .iter()
                .filter(|change| {
                    matches!(change, Change::SetConfig { .. }) && change.topic() == topic
                })
                .cloned()
                .collect()
        };
        match self.admin.alter_configs(&alters, &options()).await {
            Err(err) => {
                for topic in plan.config_sets.keys() {
                    for change in config_changes(topic) {
                        let error = api_error("AlterConfigs", consequence, err.clone());
                        outcome.failed.push((change, error));
                    }
                }
            }
            Ok(results) => {
                for result in results {
                    let (specifier, failure) = match result {
                        Ok(specifier) => (specifier, None),
                        Err((specifier, code)) => (specifier, Some(code)),
                    };
                    let rdkafka::admin::OwnedResourceSpecifier::Topic(topic) = specifier else {
                        continue;
                    };
                    for change in config_changes(&topic) {
                        match failure {
                            None => outcome.applied.push(change),
                            Some(code) => outcome
                                .failed
                                .push((change, code_error("AlterConfigs", consequence, code))),
                        }
                    }
                }
            }
        }
    }
}

/// Admin options shared by every request: bounded waits, and for creates, wait until the
/// controller has made the change so a following metadata read sees it.
fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(REQUEST_TIMEOUT))
        .operation_timeout(Some(REQUEST_TIMEOUT))
}

/// Files each per-topic result of a CreateTopics/CreatePartitions call under applied or failed.
fn record_topic_results(
    api: &'static str,
    consequence: &str,
    changes: &[&Change],
    result: rdkafka::error::KafkaResult<Vec<rdkafka::admin::TopicResult>>,
    outcome: &mut ApplyOutcome,
) {
    let change_for = |topic: &str| {
        changes
            .iter()
            .find(|change| change.topic() == topic)
            .map(|change| (*change).clone())
    };
    match result {
        Err(err) => {
            for change in changes {
                let error = api_error(api, consequence, err.clone());
                outcome.failed.push(((*change).clone(), error));
            }
        }
        Ok(results) => {
            for result in results {
                match result {
                    Ok(topic) => outcome.applied.extend(change_for(&topic)),
                    Err((topic, code)) => {
                        if let Some(change) = change_for(&topic) {
                            outcome
                                .failed
                                .push((change, code_error(api, consequence, code)));
                        }
                    }
                }
            }
        }
    }
}

/// Maps a failed admin request: "the broker lacks this API" gets its own error.
fn api_error(api: &'static str, consequence: &str, err: KafkaError) -> TopicsError {
    match error_code(&err) {
        Some(code) if is_unsupported_code(code) => TopicsError::Unsupported {
            api,
            code,
            consequence: consequence.to_owned(),
        },
        _ => TopicsError::Kafka {
            operation: api.to_owned(),
            source: err,
        },
    }
}

/// Maps a per-resource error code of an admin request.
fn code_error(api: &'static str, consequence: &str, code: RDKafkaErrorCode) -> TopicsError {
    if is_unsupported_code(code) {
        TopicsError::Unsupported {
            api,
            code,
            consequence: consequence.to_owned(),
        }
    } else {
        TopicsError::Rejected { api, code }
    }
}
