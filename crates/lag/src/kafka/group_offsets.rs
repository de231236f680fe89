//! Committed offsets of many groups at once: one FindCoordinator for all groups whose
//! coordinator is not known yet, then one OffsetFetch per coordinator naming up to
//! [`GROUPS_PER_REQUEST`] groups (OffsetFetch v8, KIP-709, Kafka 3.0+), each without
//! topics, so Kafka answers every partition the group committed. One connection per
//! broker serves every group: connections do not grow with the number of groups.
//!
//! librdkafka can do this (`rd_kafka_ListConsumerGroupOffsets`) but rdkafka 0.39 does
//! not expose it, so these two requests go over the engine's own connections, which
//! speak TLS and SASL PLAIN/SCRAM as the client properties say; with settings beyond
//! them the engine keeps librdkafka's per-group clients
//! ([`super::committed::CommittedReader`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, OffsetFetchRequest, OffsetFetchResponse,
    offset_fetch_request::OffsetFetchRequestGroup,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Mutex;

use super::broker_connection::{BrokerConnection, WireSecurity, error_name};
use super::committed::CommittedRead;
use super::log_offsets::TopicPartition;
use crate::error::{LagError, Result, protocol};
use crate::model::{Member, Membership};

/// Groups named in one OffsetFetch (bounds the size of an answer).
pub const GROUPS_PER_REQUEST: usize = 200;

const FIND_COORDINATOR_VERSION: i16 = 4;
/// ConsumerGroupDescribe (KIP-848, Kafka 4.0+).
const CONSUMER_GROUP_DESCRIBE_VERSION: i16 = 0;
const OFFSET_FETCH_VERSION: i16 = 8;
/// FindCoordinator key type of consumer groups.
const GROUP_KEY_TYPE: i8 = 0;

const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// What one read gave per group: its committed partitions, or why it failed.
pub type GroupReads =
    HashMap<String, std::result::Result<HashMap<TopicPartition, CommittedRead>, String>>;

#[derive(Default)]
struct State {
    /// Open connections by broker address.
    connections: HashMap<String, BrokerConnection>,
    /// Coordinator address of each group, as last found.
    coordinators: HashMap<String, String>,
    /// TLS and SASL settings of every connection (boxed: the reader stays small).
    security: Box<WireSecurity>,
}

/// Reader of committed offsets of many groups over one connection per broker.
pub struct GroupOffsetReader {
    bootstrap: Vec<String>,
    state: Mutex<State>,
}

/// What a coordinator said about one group.
enum GroupAnswer {
    Offsets(HashMap<TopicPartition, CommittedRead>),
    /// The group's coordinator moved: find it again.
    Moved(String),
    Failed(String),
}

impl GroupOffsetReader {
    /// A reader bootstrapping from `bootstrap` (comma-separated host:port) with the
    /// given TLS/SASL settings; connects on the first read.
    pub fn new(bootstrap: &str, security: WireSecurity) -> Self {
        Self {
            bootstrap: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            state: Mutex::new(State {
                security: Box::new(security),
                ..State::default()
            }),
        }
    }

    /// Open broker connections, for tests and the benchmark.
    pub async fn open_connections(&self) -> usize {
        self.state.lock().await.connections.len()
    }

    /// Reads the committed offsets of `groups`. A group whose coordinator moved is
    /// looked up and asked again once within the call.
    pub async fn read(&self, groups: &[String], timeout: Duration) -> GroupReads {
        let mut state = self.state.lock().await;
        let mut out = GroupReads::new();
        let mut pending: Vec<String> = groups.to_vec();
        for attempt in 0..2 {
            let by_coordinator = state
                .by_coordinator(&self.bootstrap, pending.drain(..), timeout, &mut out)
                .await;
            for (address, groups) in by_coordinator {
                for chunk in groups.chunks(GROUPS_PER_REQUEST) {
                    match state.offset_fetch(&address, chunk, timeout).await {
                        Ok(mut answers) => {
                            for group in chunk {
                                match answers.remove(group) {
                                    Some(GroupAnswer::Offsets(offsets)) => {
                                        out.insert(group.clone(), Ok(offsets));
                                    }
                                    Some(GroupAnswer::Moved(reason)) => {
                                        state.coordinators.remove(group);
                                        if attempt == 0 {
                                            pending.push(group.clone());
                                        } else {
                                            out.insert(group.clone(), Err(reason));
                                        }
                                    }
                                    Some(GroupAnswer::Failed(reason)) => {
                                        out.insert(group.clone(), Err(reason));
                                    }
                                    None => {
                                        out.insert(
                                            group.clone(),
                                            Err(format!(
                                                "OffsetFetch at {address} did not answer for this group"
                                            )),
                                        );
                                    }
                                }
                            }
                        }
                        Err(err) => {
                            state.connections.remove(&address);
                            for group in chunk {
                                state.coordinators.remove(group);
                                out.insert(group.clone(), Err(err.to_string()));
                            }
                        }
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        out
    }
}

impl GroupOffsetReader {
    /// State and members of consumer-protocol (KIP-848) groups, which DescribeGroups
    /// does not describe: one ConsumerGroupDescribe per coordinator. Each group gets its
    /// membership or why it could not be read.
    pub async fn describe_consumer_groups(
        &self,
        groups: &[String],
        timeout: Duration,
    ) -> HashMap<String, std::result::Result<Membership, String>> {
        let mut state = self.state.lock().await;
        let mut out = HashMap::new();
        let by_coordinator = state
            .by_coordinator(&self.bootstrap, groups.iter().cloned(), timeout, &mut out)
            .await;
        for (address, groups) in by_coordinator {
            match state.describe_at(&address, &groups, timeout).await {
                Ok(described) => out.extend(described),
                Err(err) => {
                    state.connections.remove(&address);
                    for group in groups {
                        state.coordinators.remove(&group);
                        out.insert(group, Err(err.to_string()));
                    }
                }
            }
        }
        out
    }
}

impl State {
    /// `groups` by the address of their coordinator, looking up the ones not known
    /// yet; a group whose coordinator cannot be found gets its reason in `failed`.
    async fn by_coordinator<T>(
        &mut self,
        bootstrap: &[String],
        groups: impl Iterator<Item = String>,
        timeout: Duration,
        failed: &mut HashMap<String, std::result::Result<T, String>>,
    ) -> BTreeMap<String, Vec<String>> {
        let groups: Vec<String> = groups.collect();
        let unknown: Vec<String> = groups
            .iter()
            .filter(|g| !self.coordinators.contains_key(*g))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            match self.find_coordinators(bootstrap, &unknown, timeout).await {
                Ok(found) => {
                    for (group, coordinator) in found {
                        match coordinator {
                            Ok(address) => {
                                self.coordinators.insert(group, address);
                            }
                            Err(reason) => {
                                failed.insert(group, Err(reason));
                            }
                        }
                    }
                }
                Err(err) => {
                    for group in unknown {
                        failed.insert(group, Err(err.to_string()));
                    }
                }
            }
        }
        let mut by_coordinator: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for group in groups {
            match self.coordinators.get(&group) {
                Some(address) => by_coordinator
                    .entry(address.clone())
                    .or_default()
                    .push(group),
                None => {
                    failed.entry(group).or_insert_with(|| {
                        Err("FindCoordinator did not answer for this group".into())
                    });
                }
            }
        }
        by_coordinator
    }

    /// The connection to `address`, opened when there is none.
    async fn connection(
        &mut self,
        address: &str,
        timeout: Duration,
    ) -> Result<&mut BrokerConnection> {
        if !self.connections.contains_key(address) {
            let connection = BrokerConnection::connect(address, &self.security, timeout).await?;
            self.connections.insert(address.to_owned(), connection);
        }
        Ok(self
            .connections
            .get_mut(address)
            .expect("connection inserted above"))
    }

    /// Coordinator address (or the error) of each of `groups`, asked of any open
    /// connection, else of the first bootstrap broker that answers.
    async fn find_coordinators(
        &mut self,
        bootstrap: &[String],
        groups: &[String],
        timeout: Duration,
    ) -> Result<HashMap<String, std::result::Result<String, String>>> {
        let mut candidates: Vec<String> = self.connections.keys().cloned().collect();
        candidates.extend(bootstrap.iter().cloned());
        let mut last_error = protocol("FindCoordinator", "no bootstrap broker configured");
        for address in candidates {
            match self.find_coordinators_at(&address, groups, timeout).await {
                Ok(found) => return Ok(found),
                Err(err) => {
                    self.connections.remove(&address);
                    if matches!(err, LagError::Unsupported { .. }) {
                        return Err(err);
                    }
                    last_error = err;
                }
            }
        }
        Err(last_error)
    }

    async fn find_coordinators_at(
        &mut self,
        address: &str,
        groups: &[String],
        timeout: Duration,
    ) -> Result<HashMap<String, std::result::Result<String, String>>> {
        let connection = self.connection(address, timeout).await?;
        connection.require(ApiKey::FindCoordinator, FIND_COORDINATOR_VERSION)?;
        let request = FindCoordinatorRequest::default()
            .with_key_type(GROUP_KEY_TYPE)
            .with_coordinator_keys(groups.iter().cloned().map(StrBytes::from_string).collect());
        let answer: FindCoordinatorResponse = connection
            .call(
                ApiKey::FindCoordinator,
                request,
                FIND_COORDINATOR_VERSION,
                timeout,
            )
            .await?;
        Ok(answer
            .coordinators
            .into_iter()
            .map(|c| {
                let found = if c.error_code == 0 {
                    Ok(format!("{}:{}", c.host.as_str(), c.port))
                } else {
                    Err(format!(
                        "FindCoordinator answered {}",
                        error_name(c.error_code)
                    ))
                };
                (c.key.to_string(), found)
            })
            .collect())
    }

    async fn offset_fetch(
        &mut self,
        address: &str,
        groups: &[String],
        timeout: Duration,
    ) -> Result<HashMap<String, GroupAnswer>> {
        let connection = self.connection(address, timeout).await?;
        connection.require(ApiKey::OffsetFetch, OFFSET_FETCH_VERSION)?;
        // require_stable off, as Kafka's own tools: a partition with a transactional
        // commit in flight answers its last committed offset, not an error.
        let request = OffsetFetchRequest::default()
            .with_require_stable(false)
            .with_groups(
                groups
                    .iter()
                    .map(|g| {
                        OffsetFetchRequestGroup::default()
                            .with_group_id(GroupId(StrBytes::from_string(g.clone())))
                            .with_topics(None)
                    })
                    .collect(),
            );
        let answer: OffsetFetchResponse = connection
            .call(ApiKey::OffsetFetch, request, OFFSET_FETCH_VERSION, timeout)
            .await?;
        Ok(group_answers(answer))
    }
}

fn group_answers(answer: OffsetFetchResponse) -> HashMap<String, GroupAnswer> {
    answer
        .groups
        .into_iter()
        .map(|g| {
            let group = g.group_id.0.to_string();
            let answer = match g.error_code {
                0 | GROUP_ID_NOT_FOUND => GroupAnswer::Offsets(
                    g.topics
                        .into_iter()
                        .flat_map(|t| {
                            let topic = t.name.0.to_string();
                            t.partitions.into_iter().map(move |p| {
                                let error = match p.error_code {
                                    0 => Ok(()),
                                    code => Err(error_name(code)),
                                };
                                (
                                    (topic.clone(), p.partition_index),
                                    CommittedRead::from_offset(p.committed_offset, error),
                                )
                            })
                        })
                        .collect(),
                ),
                code @ (NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE) => {
                    GroupAnswer::Moved(format!("OffsetFetch answered {}", error_name(code)))
                }
                code => GroupAnswer::Failed(format!("OffsetFetch answered {}", error_name(code))),
            };
            (group, answer)
        })
        .collect()
}

impl State {
    async fn describe_at(
        &mut self,
        address: &str,
        groups: &[String],
        timeout: Duration,
    ) -> Result<HashMap<String, std::result::Result<Membership, String>>> {
        let connection = self.connection(address, timeout).await?;
        connection.require(
            ApiKey::ConsumerGroupDescribe,
            CONSUMER_GROUP_DESCRIBE_VERSION,
        )?;
        let request = ConsumerGroupDescribeRequest::default().with_group_ids(
            groups
                .iter()
                .cloned()
                .map(|g| GroupId(StrBytes::from_string(g)))
                .collect(),
        );
        let answer: ConsumerGroupDescribeResponse = connection
            .call(
                ApiKey::ConsumerGroupDescribe,
                request,
                CONSUMER_GROUP_DESCRIBE_VERSION,
                timeout,
            )
            .await?;
        Ok(answer
            .groups
            .into_iter()
            .map(|g| {
                let membership = if g.error_code == 0 {
                    Ok(Membership::Known {
                        state: g.group_state.to_string(),
                        members: g
                            .members
                            .into_iter()
                            .map(|m| Member {
                                member_id: m.member_id.to_string(),
                                client_id: m.client_id.to_string(),
                                client_host: m.client_host.to_string(),
                                assignment: m
                                    .assignment
                                    .topic_partitions
                                    .iter()
                                    .flat_map(|tp| {
                                        tp.partitions
                                            .iter()
                                            .map(|p| (tp.topic_name.to_string(), *p))
                                    })
                                    .collect(),
                            })
                            .collect(),
                    })
                } else {
                    Err(format!(
                        "ConsumerGroupDescribe answered {}",
                        error_name(g.error_code)
                    ))
                };
                (g.group_id.to_string(), membership)
            })
            .collect())
    }
}
