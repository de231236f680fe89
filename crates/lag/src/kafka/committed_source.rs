//! Where committed offsets come from: batched OffsetFetch over one connection per
//! broker (plaintext, TLS, SASL PLAIN or SCRAM, as the client properties say),
//! librdkafka's per-group client pool when the settings need what the engine's own
//! connections do not speak (GSSAPI, OAUTHBEARER, PKCS#12 keystores).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::ClientConfig;

use super::broker_connection::WireSecurity;
use super::committed::CommittedReader;
use super::group_offsets::{GroupOffsetReader, GroupReads};
use super::log_offsets::TopicPartition;
use crate::model::Membership;

/// Reader of the committed offsets of many groups.
pub enum CommittedSource {
    /// Every group in one OffsetFetch per coordinator.
    Batched(GroupOffsetReader),
    /// One OffsetFetch per group from a bounded pool of per-group clients.
    PerGroup {
        /// The pool.
        reader: Arc<CommittedReader>,
        /// Groups read at once.
        concurrency: usize,
    },
}

impl CommittedSource {
    /// Batched unless the security settings of `kafka` are beyond the wire connections.
    pub fn new(kafka: &ClientConfig, group_clients: usize, concurrency: usize) -> Self {
        let security = WireSecurity::from_client_config(kafka);
        if let Some(reason) = &security.unsupported {
            tracing::info!(
                %reason,
                "reading committed offsets with one client per group: the engine's own connections do not speak these settings"
            );
        }
        if security.unsupported.is_none() {
            CommittedSource::Batched(GroupOffsetReader::new(
                kafka.get("bootstrap.servers").unwrap_or_default(),
                security,
            ))
        } else {
            CommittedSource::PerGroup {
                reader: Arc::new(CommittedReader::new(kafka, group_clients)),
                concurrency,
            }
        }
    }

    /// Committed offsets of each of `groups`. The batched reader answers the partitions
    /// each group committed; the pool asks each group about `every_partition` of the
    /// cluster and answers all of them (never committed ones included).
    pub async fn read(
        &self,
        groups: &[String],
        every_partition: Arc<Vec<TopicPartition>>,
        timeout: Duration,
    ) -> GroupReads {
        match self {
            CommittedSource::Batched(reader) => reader.read(groups, timeout).await,
            CommittedSource::PerGroup {
                reader,
                concurrency,
            } => {
                futures::stream::iter(groups.iter().cloned())
                    .map(|group| {
                        let (reader, every_partition) = (reader.clone(), every_partition.clone());
                        async move {
                            let read = reader
                                .read(&group, &every_partition, timeout)
                                .await
                                .map_err(|e| e.to_string());
                            (group, read)
                        }
                    })
                    .buffer_unordered(*concurrency)
                    .collect()
                    .await
            }
        }
    }

    /// Members of consumer-protocol (KIP-848) groups through ConsumerGroupDescribe; `None`
    /// with TLS or SASL, where the engine has no connections of its own.
    pub async fn describe_consumer_groups(
        &self,
        groups: &[String],
        timeout: Duration,
    ) -> Option<HashMap<String, Result<Membership, String>>> {
        match self {
            CommittedSource::Batched(reader) => {
                Some(reader.describe_consumer_groups(groups, timeout).await)
            }
            CommittedSource::PerGroup { .. } => None,
        }
    }

    /// Releases what is held for groups not in `keep`.
    pub async fn retain(&self, keep: &HashSet<String>) {
        if let CommittedSource::PerGroup { reader, .. } = self {
            reader.retain(keep).await;
        }
    }
}
