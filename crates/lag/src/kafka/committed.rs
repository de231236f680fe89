//! Committed offsets of a group (OffsetFetch) through librdkafka, one client per
//! group: used when the cluster needs TLS or SASL (else see [`super::group_offsets`]).
//!
//! librdkafka sends OffsetFetch for the `group.id` of the client that asks, so each
//! group needs its own client: a consumer with that group.id that never subscribes (it
//! does not join the group). Kafka can answer "every topic the group committed" (an
//! OffsetFetch without topics, librdkafka's `rd_kafka_ListConsumerGroupOffsets`), but
//! rdkafka 0.39 exposes neither that admin call nor a topic-less `committed_offsets`
//! (an empty list sends no request). So one OffsetFetch names every partition of
//! the cluster and Kafka answers which the group committed.
//!
//! Clients are pooled and the pool is bounded: each holds connections to the
//! bootstrap broker and the group's coordinator, so past `capacity` the clients of
//! the groups read longest ago are closed (and reopened when needed again).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::log_offsets::TopicPartition;
use crate::error::{LagError, Result};

struct Pooled {
    client: Arc<BaseConsumer>,
    last_used: u64,
}

#[derive(Default)]
struct Pool {
    clients: HashMap<String, Pooled>,
    uses: u64,
}

/// Bounded pool of per-group OffsetFetch clients.
pub struct CommittedReader {
    base: ClientConfig,
    capacity: usize,
    pool: Mutex<Pool>,
}

impl CommittedReader {
    /// A pool creating clients from `base`, keeping at most `capacity` open.
    pub fn new(base: &ClientConfig, capacity: usize) -> Self {
        Self {
            base: base.clone(),
            capacity: capacity.max(1),
            pool: Mutex::new(Pool::default()),
        }
    }

    /// The client of `group`, and the clients closed to make room for it (to be
    /// dropped off the async threads: closing a client blocks).
    fn client(&self, group: &str) -> Result<(Arc<BaseConsumer>, Vec<Arc<BaseConsumer>>)> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.uses += 1;
        let now = pool.uses;
        if let Some(pooled) = pool.clients.get_mut(group) {
            pooled.last_used = now;
            return Ok((pooled.client.clone(), Vec::new()));
        }
        let mut closed = Vec::new();
        while pool.clients.len() >= self.capacity {
            let oldest = pool
                .clients
                .iter()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(g, _)| g.clone());
            match oldest.and_then(|g| pool.clients.remove(&g)) {
                Some(p) => closed.push(p.client),
                None => break,
            }
        }
        let mut config = self.base.clone();
        config
            .set("group.id", group)
            .set("client.id", "orderflow-lag")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let consumer: BaseConsumer = config.create().map_err(LagError::ClientConfig)?;
        let client = Arc::new(consumer);
        pool.clients.insert(
            group.to_owned(),
            Pooled {
                client: client.clone(),
                last_used: now,
            },
        );
        Ok((client, closed))
    }

    /// Closes the clients of groups not in `keep` (deleted groups, filters changed).
    pub async fn retain(&self, keep: &HashSet<String>) {
        let closed: Vec<Arc<BaseConsumer>> = {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<String> = pool
                .clients
                .keys()
                .filter(|g| !keep.contains(*g))
                .cloned()
                .collect();
            gone.iter()
                .filter_map(|g| pool.clients.remove(g))
                .map(|p| p.client)
                .collect()
        };
        close(closed).await;
    }

    /// Open clients, for tests and the benchmark.
    pub fn open_clients(&self) -> usize {
        self.pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clients
            .len()
    }

    /// Committed offset of each of `partitions` in one OffsetFetch.
    pub async fn read(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> Result<HashMap<TopicPartition, CommittedRead>> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let (client, closed) = self.client(group)?;
        close(closed).await;
        let mut tpl = TopicPartitionList::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            tpl.add_partition(topic, *partition);
        }
        let what = format!("OffsetFetch of group {group}");
        let answered = tokio::task::spawn_blocking(move || client.committed_offsets(tpl, timeout))
            .await
            .map_err(|e| LagError::Task(e.to_string()))?
            .map_err(|e| LagError::kafka(what, e))?;
        Ok(answered
            .elements()
            .iter()
            .map(|e| {
                let error = e.error().map_err(|err| err.to_string());
                (
                    (e.topic().to_owned(), e.partition()),
                    CommittedRead::from_answer(e.offset(), error),
                )
            })
            .collect())
    }
}

/// What OffsetFetch said about one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommittedRead {
    /// The committed offset (next offset to read).
    Offset(i64),
    /// The group never committed this partition.
    Never,
    /// The broker answered this partition with an error: the offset is unknown, which
    /// is not the same as never committed.
    Unreadable(String),
}

impl CommittedRead {
    /// Reads one element of the answer: its offset and its per-partition error.
    pub fn from_answer(offset: Offset, error: std::result::Result<(), String>) -> Self {
        Self::from_offset(offset.to_raw().unwrap_or(-1), error)
    }

    /// Reads one partition of an answer given as a raw offset (-1: none committed).
    pub fn from_offset(offset: i64, error: std::result::Result<(), String>) -> Self {
        match error {
            Err(err) => CommittedRead::Unreadable(err),
            Ok(()) if offset >= 0 => CommittedRead::Offset(offset),
            Ok(()) => CommittedRead::Never,
        }
    }
}

async fn close(clients: Vec<Arc<BaseConsumer>>) {
    if clients.is_empty() {
        return;
    }
    // A reader still holding one drops the last reference itself.
    let _ = tokio::task::spawn_blocking(move || drop(clients)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_error_is_unreadable_not_never_committed() {
        assert_eq!(
            CommittedRead::from_answer(Offset::Invalid, Err("UNSTABLE_OFFSET_COMMIT".into())),
            CommittedRead::Unreadable("UNSTABLE_OFFSET_COMMIT".into())
        );
        assert_eq!(
            CommittedRead::from_answer(Offset::Invalid, Ok(())),
            CommittedRead::Never
        );
        assert_eq!(
            CommittedRead::from_answer(Offset::Offset(7), Ok(())),
            CommittedRead::Offset(7)
        );
    }
}
