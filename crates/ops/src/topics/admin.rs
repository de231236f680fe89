//! The broker side: read topics and their configs through rdkafka's admin API, and apply a plan.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use orderflow_lag::kafka::broker_connection::WireSecurity;
use orderflow_runtime::kafka::KafkaArgs;
use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::config_set::merged_config_set;
use super::error::{Result, TopicsError};
use super::incremental_configs::{self, Incremental};
use super::key_sample::sample_keys;
use super::plan::{Change, ObservedTopic, Plan, PlanOptions, partition_targets};
use super::resolve::DesiredTopic;

/// The API that set configs: KIP-339's, where brokers have it.
pub const INCREMENTAL_ALTER_CONFIGS: &str = "IncrementalAlterConfigs";
/// The legacy API (replaces the whole set), for brokers before Kafka 2.3.
pub const ALTER_CONFIGS: &str = "AlterConfigs";

/// How long one admin request or metadata fetch may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connected admin client for topics as code.
pub struct TopicsAdmin {
    admin: Arc<AdminClient<DefaultClientContext>>,
    /// The client settings, for the key sampler.
    config: ClientConfig,
    /// TLS/SASL of the wire connection that sends IncrementalAlterConfigs.
    security: WireSecurity,
}

/// What `apply` did: changes made, and changes the broker refused (each with its error).
#[derive(Debug, Default)]
pub struct ApplyOutcome {
    /// Changes the broker accepted.
    pub applied: Vec<Change>,
    /// Changes that failed, with the reason; the rest of the plan was still attempted.
    pub failed: Vec<(Change, TopicsError)>,
    /// Per topic whose configs were set, the API used ([`INCREMENTAL_ALTER_CONFIGS`] or,
    /// on brokers without it, [`ALTER_CONFIGS`]).
    pub config_api: BTreeMap<String, &'static str>,
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
            security: WireSecurity::from_client_config(&config),
            config,
        })
    }

    /// Partition count, replication factor and configs of each desired topic that exists.
    pub async fn observe(
        &self,
        desired: &[DesiredTopic],
    ) -> Result<BTreeMap<String, ObservedTopic>> {
        // Each source's DLQ too, so its partition count is kept in step.
        let mut observed = self
            .observe_metadata(|name| {
                desired.iter().any(|d| {
                    let own = d.name.as_str();
                    own == name
                        || name
                            .strip_suffix(orderflow_contracts::dead_letter::DLQ_SUFFIX)
                            .is_some_and(|source| source == own)
                })
            })
            .await?;
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
            .map_err(|err| request_error("DescribeConfigs", &err))?;
        for result in results {
            let resource = result.map_err(|code| rejected("DescribeConfigs", code))?;
            let rdkafka::admin::OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
                continue;
            };
            let Some(topic) = observed.get_mut(name) else {
                continue;
            };
            for entry in resource.entries {
                if let Some(value) = entry.value {
                    topic.configs.insert(entry.name, value);
                }
            }
        }
        Ok(observed)
    }

    /// Reads the cluster and compares it with `desired`. Topics that would gain
    /// partitions have the keys at their end sampled first, so the plan can say whether
    /// they are keyed and which keys move.
    pub async fn plan(&self, desired: &[DesiredTopic], options: PlanOptions) -> Result<Plan> {
        let mut observed = self.observe(desired).await?;
        for (topic, (to, _)) in partition_targets(desired, &observed) {
            let Some(current) = observed.get_mut(&topic) else {
                continue;
            };
            if to <= current.partitions {
                continue;
            }
            let (config, partitions) = (self.config.clone(), current.partitions);
            let name = topic.clone();
            let sample =
                tokio::task::spawn_blocking(move || sample_keys(&config, &name, partitions))
                    .await
                    .map_err(|err| TopicsError::Kafka {
                        operation: format!("sampling the keys of {topic} ({err})"),
                        source: KafkaError::Canceled,
                    })??;
            current.keys = Some(sample);
        }
        Ok(Plan::compute(desired, &observed, options))
    }

    /// Applies `plan`: creates missing topics, raises partition counts, sets configs, and
    /// returns once the metadata shows the new topics and partitions.
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
        self.await_metadata(&outcome.applied).await;
        Ok(outcome)
    }

    /// Waits (up to `REQUEST_TIMEOUT`) until the metadata shows every created topic and
    /// raised partition count. The controller answers once a change is committed; the
    /// brokers' metadata catches up a moment later, and a producer started right after
    /// `apply` must not find the topic missing or short of partitions.
    async fn await_metadata(&self, applied: &[Change]) {
        let expected: BTreeMap<&str, i32> = applied
            .iter()
            .filter_map(|change| match change {
                Change::CreateTopic {
                    topic, partitions, ..
                } => Some((topic.as_str(), *partitions)),
                Change::AddPartitions { topic, to, .. } => Some((topic.as_str(), *to)),
                Change::SetConfig { .. } => None,
            })
            .collect();
        if expected.is_empty() {
            return;
        }
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let seen = self
                .observe_metadata(|name| expected.contains_key(name))
                .await;
            let lagging: Vec<&str> = expected
                .iter()
                .filter(|(topic, partitions)| match &seen {
                    Ok(seen) => seen
                        .get(**topic)
                        .is_none_or(|t| t.partitions < **partitions),
                    Err(_) => true,
                })
                .map(|(topic, _)| *topic)
                .collect();
            if lagging.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    topics = %lagging.join(","),
                    waited = ?REQUEST_TIMEOUT,
                    "applied, but the metadata does not show all new partitions yet"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Partition count and replication factor of each existing topic whose name `wanted`
    /// accepts.
    async fn observe_metadata(
        &self,
        wanted: impl Fn(&str) -> bool,
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
            if !wanted(topic.name()) || topic.error().is_some() {
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
        record_topic_results("CreateTopics", &creates, result, outcome);
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
        record_topic_results("CreatePartitions", &adds, result, outcome);
    }

    /// Sets the configs the plan changes, one topic at a time.
    async fn set_configs(&self, plan: &Plan, outcome: &mut ApplyOutcome) {
        let mut by_topic: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
        for change in &plan.changes {
            if let Change::SetConfig { topic, .. } = change {
                by_topic.entry(topic).or_default().push(change);
            }
        }
        for (topic, changes) in by_topic {
            self.set_topic_configs(topic, &changes, outcome).await;
        }
    }

    /// Sets one topic's changed configs, only the keys the file names, with
    /// IncrementalAlterConfigs; the legacy path where the brokers lack it (or the wire
    /// connection cannot speak the cluster's security settings). All or none of the
    /// topic's changes are applied.
    async fn set_topic_configs(
        &self,
        topic: &str,
        changes: &[&Change],
        outcome: &mut ApplyOutcome,
    ) {
        let wanted: BTreeMap<String, String> = changes
            .iter()
            .filter_map(|change| match change {
                Change::SetConfig { key, to, .. } => Some((key.clone(), to.clone())),
                _ => None,
            })
            .collect();
        let bootstrap = self.config.get("bootstrap.servers").unwrap_or_default();
        let incremental = incremental_configs::set_topic_configs(
            bootstrap,
            &self.security,
            topic,
            &wanted,
            REQUEST_TIMEOUT,
        )
        .await;
        match incremental {
            Ok(Incremental::Applied) => {
                outcome
                    .config_api
                    .insert(topic.to_owned(), INCREMENTAL_ALTER_CONFIGS);
                outcome
                    .applied
                    .extend(changes.iter().map(|change| (*change).clone()));
                return;
            }
            Ok(Incremental::Rejected(reason)) => {
                return fail_all(outcome, changes, || TopicsError::RejectedWith {
                    api: INCREMENTAL_ALTER_CONFIGS,
                    reason: reason.clone(),
                });
            }
            Ok(Incremental::Unsupported) => {}
            Err(reason) => tracing::warn!(
                topic,
                %reason,
                "IncrementalAlterConfigs could not be sent; setting configs with AlterConfigs"
            ),
        }
        outcome.config_api.insert(topic.to_owned(), ALTER_CONFIGS);
        self.set_topic_configs_legacy(topic, changes, &wanted, outcome)
            .await;
    }

    /// The legacy path: AlterConfigs replaces the whole set, so the current set is read
    /// first and sent back with the changes laid over it (`config_set` describes the
    /// race this leaves).
    async fn set_topic_configs_legacy(
        &self,
        topic: &str,
        changes: &[&Change],
        wanted: &BTreeMap<String, String>,
        outcome: &mut ApplyOutcome,
    ) {
        let resource = [ResourceSpecifier::Topic(topic)];
        let described = match self.admin.describe_configs(&resource, &options()).await {
            // One resource asked for, one result; `Fail` only if the client broke that rule.
            Ok(mut results) => results.pop().unwrap_or(Err(RDKafkaErrorCode::Fail)),
            Err(err) => {
                return fail_all(outcome, changes, || request_error("DescribeConfigs", &err));
            }
        };
        let current = match described {
            Ok(current) => current,
            Err(code) => return fail_all(outcome, changes, || rejected("DescribeConfigs", code)),
        };
        let set = match merged_config_set(&current.entries, wanted) {
            Ok(set) => set,
            Err(key) => {
                return fail_all(outcome, changes, || TopicsError::UnreadableConfig {
                    topic: topic.to_owned(),
                    key: key.clone(),
                });
            }
        };

        let alter = set.iter().fold(
            AlterConfig::new(ResourceSpecifier::Topic(topic)),
            |alter, (key, value)| alter.set(key, value),
        );
        let altered = match self.admin.alter_configs(&[alter], &options()).await {
            Ok(mut results) => results.pop().map_or(Err(RDKafkaErrorCode::Fail), |result| {
                result.map(drop).map_err(|(_, code)| code)
            }),
            Err(err) => return fail_all(outcome, changes, || request_error("AlterConfigs", &err)),
        };
        match altered {
            Ok(()) => outcome
                .applied
                .extend(changes.iter().map(|change| (*change).clone())),
            Err(code) => fail_all(outcome, changes, || rejected("AlterConfigs", code)),
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
        Err(err) => fail_all(outcome, changes, || request_error(api, &err)),
        Ok(results) => {
            for result in results {
                match result {
                    Ok(topic) => outcome.applied.extend(change_for(&topic)),
                    Err((topic, code)) => {
                        if let Some(change) = change_for(&topic) {
                            outcome.failed.push((change, rejected(api, code)));
                        }
                    }
                }
            }
        }
    }
}

/// Files every change in `changes` as failed, each with its own copy of the error.
fn fail_all(outcome: &mut ApplyOutcome, changes: &[&Change], error: impl Fn() -> TopicsError) {
    outcome
        .failed
        .extend(changes.iter().map(|change| ((*change).clone(), error())));
}

/// An admin request that failed as a whole.
fn request_error(api: &'static str, err: &KafkaError) -> TopicsError {
    TopicsError::Kafka {
        operation: api.to_owned(),
        source: err.clone(),
    }
}

/// An admin request the broker answered with an error for one resource.
fn rejected(api: &'static str, code: RDKafkaErrorCode) -> TopicsError {
    TopicsError::Rejected { api, code }
}
