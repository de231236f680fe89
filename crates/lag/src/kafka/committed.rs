//! Committed offsets of a group (OffsetFetch). rdkafka 0.39 has no admin call for
//! ListConsumerGroupOffsets, so each group gets one long-lived consumer configured with
//! its group.id that never subscribes (it does not join the group), reused every cycle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::log_offsets::TopicPartition;
use crate::error::{LagError, Result};

/// Pool of per-group OffsetFetch clients.
pub struct CommittedReader {
    base: ClientConfig,
    clients: Mutex<HashMap<String, Arc<BaseConsumer>>>,
}

impl CommittedReader {
    /// A pool creating clients from `base`.
    pub fn new(base: &ClientConfig) -> Self {
        Self {
            base: base.clone(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, group: &str) -> Result<Arc<BaseConsumer>> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(group) {
            return Ok(c.clone());
        }
        let mut config = self.base.clone();
        config
            .set("group.id", group)
            .set("client.id", "orderflow-lag")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let consumer: BaseConsumer = config.create().map_err(LagError::ClientConfig)?;
        let consumer = Arc::new(consumer);
        clients.insert(group.to_owned(), consumer.clone());
        Ok(consumer)
    }

    /// Drops clients of groups not in `keep` (deleted groups, filters changed).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.retain(|g, _| keep(g));
    }

    /// Committed offset of each partition: `Some(next offset)` or `None` when the group
    /// never committed it.
    pub async fn read(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let client = self.client(group)?;
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
                let offset = match e.offset() {
                    Offset::Offset(o) if o >= 0 && e.error().is_ok() => Some(o),
                    _ => None,
                };
                ((e.topic().to_owned(), e.partition()), offset)
            })
            .collect())
    }
}
