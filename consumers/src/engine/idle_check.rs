//! The `--exit-when-idle` check, kept off the poll loop. Whether the group has read
//! every partition up to its high watermark is asked on a client of its own, in a
//! blocking task the loop only looks at on its housekeeping tick: on the loop's own
//! connection each watermark request queued behind the consumer's long-poll fetch
//! (up to `fetch.wait.max.ms`, 500 ms, per partition), so the loop stood still and
//! the exit came seconds late.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use orderflow_runtime::kafka::PartitionEofContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;

use super::EngineSettings;
use super::commits::to_tpl;
use crate::error::Result;
use crate::scheduling::Shared;

/// The check asks for the end of each partition; its context keeps that quiet.
type CheckClient = BaseConsumer<PartitionEofContext>;

/// The idle check of one engine run.
pub(crate) struct IdleCheck {
    client: Arc<CheckClient>,
    topic: String,
    idle: Duration,
    running: Option<JoinHandle<bool>>,
}

impl IdleCheck {
    /// A check that exits after `idle` without work, on its own client: same
    /// brokers and group (to read the group's committed offsets), never subscribed.
    pub(crate) fn new(settings: &EngineSettings, idle: Duration) -> Result<Self> {
        let mut config = settings.kafka.client_config();
        config
            .set("group.id", &settings.group)
            .set("enable.auto.commit", "false")
            // A transactional topic ends each transaction with a marker no reader gets:
            // the check reads past it (see `only_markers_from`).
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set(
                "client.id",
                format!("order-consumer-{}-idle-check", std::process::id()),
            );
        settings.kafka.apply_overrides(&mut config);
        Ok(Self {
            client: Arc::new(config.create_with_context(PartitionEofContext)?),
            topic: settings.topic.clone(),
            idle,
            running: None,
        })
    }

    /// Called on each housekeeping tick; never waits. True when the engine may
    /// exit: nothing happened for `idle`, nothing is buffered, and a check that
    /// started once that was so found the topic read to its end.
    pub(crate) fn poll(&mut self, shared: &Shared) -> bool {
        if let Some(handle) = &self.running {
            if !handle.is_finished() {
                return false;
            }
            let caught_up = self
                .running
                .take()
                .and_then(|handle| handle.now_or_never())
                .and_then(|joined| joined.ok())
                .unwrap_or(false);
            // Work that arrived while the check ran makes its answer stale.
            return caught_up && locally_idle(shared, self.idle).is_some();
        }
        if let Some(own) = locally_idle(shared, self.idle) {
            let client = Arc::clone(&self.client);
            let topic = self.topic.clone();
            self.running = Some(tokio::task::spawn_blocking(move || {
                read_to_end(&client, &topic, own).unwrap_or(false)
            }));
        }
        false
    }
}

/// This worker's done offsets when nothing is buffered and neither a record nor
/// an assignment change happened for `idle`.
fn locally_idle(shared: &Shared, idle: Duration) -> Option<Vec<(i32, i64)>> {
    let state = shared.lock();
    if state.buffered() > 0 || state.last_activity().elapsed() < idle {
        return None;
    }
    match state.assignment().last_change() {
        Some(at) if at.elapsed() >= idle => Some(state.assignment().done_up_to()),
        _ => None,
    }
}

/// Whether every partition of the topic is read up to its high watermark: the
/// assigned ones by this worker's done offsets (`own`), the others by the group's
/// committed offsets. A worker left with part of the partitions while a rebalance
/// is still handing out the rest therefore does not exit with their records unread.
fn read_to_end(client: &CheckClient, topic: &str, own: Vec<(i32, i64)>) -> Option<bool> {
    let timeout = Duration::from_secs(5);
    let metadata = client.fetch_metadata(Some(topic), timeout).ok()?;
    let all: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)?
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let others: Vec<(i32, i64)> = all
        .iter()
        .filter(|p| !own.iter().any(|(o, _)| o == *p))
        .map(|p| (*p, 0))
        .collect();
    let mut read = own;
    if !others.is_empty() {
        let committed = client
            .committed_offsets(to_tpl(topic, &others).ok()?, timeout)
            .ok()?;
        read.extend(
            committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.partition(), o)),
                    _ => None,
                }),
        );
    }
    Some(all.iter().all(|partition| {
        let Ok((low, high)) = client.fetch_watermarks(topic, *partition, timeout) else {
            return false;
        };
        let read = read.iter().find(|(p, _)| p == partition).map(|(_, o)| *o);
        high <= low
            || read.is_some_and(|read| {
                read >= high || only_markers_from(client, topic, *partition, read, high, timeout)
            })
    }))
}

/// Whether a read_committed reader starting at `from` gets no record below `high`: what
/// lies between is transaction markers and aborted records only (the last record + 1 of
/// a transactional topic points at its commit marker for good).
fn only_markers_from(
    client: &CheckClient,
    topic: &str,
    partition: i32,
    from: i64,
    high: i64,
    timeout: Duration,
) -> bool {
    let mut assignment = TopicPartitionList::new();
    if assignment
        .add_partition_offset(topic, partition, Offset::Offset(from))
        .is_err()
        || client.assign(&assignment).is_err()
    {
        return false;
    }
    let deadline = std::time::Instant::now() + timeout;
    let verdict = loop {
        if std::time::Instant::now() >= deadline {
            break false;
        }
        match client.poll(Duration::from_millis(100)) {
            Some(Ok(record)) => break record.offset() >= high,
            Some(Err(KafkaError::PartitionEOF(_))) => break true,
            Some(Err(_)) | None => {}
        }
    };
    let _ = client.unassign();
    verdict
}
