//! Timestamps of the records at given offsets, for lag in seconds of offsets written
//! before the engine started watching (newer ones come from the produce timeline).
//!
//! Reading records can take long (a Fetch over thousands of partitions), so it never
//! blocks a poll cycle for long: wanted records are queued for a background
//! worker that reads them in chunks with one group-less consumer (assign at the offset,
//! poll one record per partition, unassign) and caches the result per (topic,
//! partition, offset). A cycle waits at most a short budget for the answers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderflow_runtime::kafka::PartitionEofContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{LagError, Result};

/// The reader asks for the end of each partition; its context keeps that quiet.
type EofConsumer = BaseConsumer<PartitionEofContext>;

/// Key of a record: topic, partition, offset.
pub type RecordKey = (String, i32, i64);

/// What the log holds from a wanted offset on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRecord {
    /// The first data record at or after the wanted offset.
    Data {
        /// Its offset (above the wanted one when control records or gaps precede it).
        offset: i64,
        /// Its timestamp, ms since the Unix epoch.
        timestamp_ms: i64,
    },
    /// No data record from the wanted offset up to `until` (the log end when read):
    /// only transaction markers (or compacted gaps) lie there.
    NoDataUntil {
        /// The position the read reached.
        until: i64,
    },
}

/// Partitions read per round: small enough that one Fetch answers quickly.
const CHUNK: usize = 250;
/// Time allowed to one round.
const ROUND_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Shared {
    cache: Mutex<HashMap<RecordKey, FirstRecord>>,
    pending: Mutex<BTreeSet<RecordKey>>,
}

/// Cached reader of record timestamps with a background worker.
pub struct TimestampReader {
    shared: Arc<Shared>,
    wake: watch::Sender<u64>,
    done: watch::Receiver<u64>,
    token: CancellationToken,
}

impl Drop for TimestampReader {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl TimestampReader {
    /// Builds the reading client and starts its worker (needs a Tokio runtime).
    pub fn new(base: &ClientConfig) -> Result<Self> {
        let mut config = base.clone();
        config
            .set("client.id", "orderflow-lag-timestamps")
            // librdkafka wants a group id to assign partitions; this consumer never
            // subscribes or commits, so the group never exists on the broker.
            .set("group.id", "orderflow-lag-timestamps")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Every record counts, committed or not; the end of the log is reported,
            // so a range holding only transaction markers is told from a slow read.
            .set("isolation.level", "read_uncommitted")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "50")
            // One record per partition is all we need.
            .set("max.partition.fetch.bytes", "65536")
            .set("queued.max.messages.kbytes", "16384");
        let consumer: EofConsumer = config
            .create_with_context(PartitionEofContext)
            .map_err(LagError::ClientConfig)?;
        let shared = Arc::new(Shared::default());
        let (wake, wake_rx) = watch::channel(0u64);
        let (done_tx, done) = watch::channel(0u64);
        let token = CancellationToken::new();
        tokio::spawn(worker(
            Arc::new(Mutex::new(consumer)),
            shared.clone(),
            wake_rx,
            done_tx,
            token.clone(),
        ));
        Ok(Self {
            shared,
            wake,
            done,
            token,
        })
    }

    /// Cached timestamps (ms since epoch) of `wanted`; missing ones are queued for the
    /// worker, and this waits up to `budget` for them.
    pub async fn read(
        &self,
        wanted: &[RecordKey],
        budget: Duration,
    ) -> HashMap<RecordKey, FirstRecord> {
        let deadline = Instant::now() + budget;
        let mut done = self.done.clone();
        let mut queued = false;
        loop {
            let (found, missing) = self.lookup(wanted);
            if missing.is_empty() {
                return found;
            }
            if !queued {
                self.shared
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(missing);
                self.wake.send_modify(|n| *n += 1);
                queued = true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, done.changed()).await.is_err() {
                return found;
            }
        }
    }

    fn lookup(&self, wanted: &[RecordKey]) -> (HashMap<RecordKey, FirstRecord>, Vec<RecordKey>) {
        let cache = self.shared.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for key in wanted {
            match cache.get(key) {
                Some(ts) => {
                    found.insert(key.clone(), *ts);
                }
                None => missing.push(key.clone()),
            }
        }
        (found, missing)
    }

    /// Forgets what was read for `key` (the log grew past the end read then).
    pub fn forget(&self, key: &RecordKey) {
        self.shared
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Forgets cached and queued records not in `keep` (their groups moved on).
    pub fn retain(&self, keep: &HashSet<RecordKey>) {
        self.shared
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| keep.contains(k));
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k| keep.contains(k));
    }
}

async fn worker(
    consumer: Arc<Mutex<EofConsumer>>,
    shared: Arc<Shared>,
    mut wake: watch::Receiver<u64>,
    done: watch::Sender<u64>,
    token: CancellationToken,
) {
    loop {
        let chunk = take_chunk(&shared);
        if chunk.is_empty() {
            tokio::select! {
                _ = token.cancelled() => return,
                changed = wake.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let c = consumer.clone();
        let round = chunk.clone();
        let read = tokio::select! {
            _ = token.cancelled() => return,
            read = tokio::task::spawn_blocking(move || read_round(&c, &round, ROUND_TIMEOUT)) => read,
        };
        let read = match read {
            Ok(Ok(read)) => read,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "reading record timestamps failed");
                Vec::new()
            }
            Err(err) => {
                tracing::warn!(error = %err, "timestamp reader task failed");
                Vec::new()
            }
        };
        let got_nothing = read.is_empty();
        {
            let mut cache = shared.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.extend(read);
        }
        done.send_modify(|n| *n += 1);
        if got_nothing {
            // Unreadable (deleted, broker busy): retry on the next cycle's request.
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// Takes up to CHUNK queued records, at most one per partition.
fn take_chunk(shared: &Shared) -> Vec<RecordKey> {
    let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
    let mut seen = HashSet::new();
    let chunk: Vec<RecordKey> = pending
        .iter()
        .filter(|(t, p, _)| seen.insert((t.clone(), *p)))
        .take(CHUNK)
        .cloned()
        .collect();
    for key in &chunk {
        pending.remove(key);
    }
    chunk
}

fn read_round(
    consumer: &Mutex<EofConsumer>,
    round: &[RecordKey],
    timeout: Duration,
) -> Result<Vec<(RecordKey, FirstRecord)>> {
    let consumer = consumer.lock().unwrap_or_else(|p| p.into_inner());
    let mut tpl = TopicPartitionList::with_capacity(round.len());
    let mut pending: HashMap<(String, i32), i64> = HashMap::new();
    for (topic, partition, offset) in round {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| LagError::kafka("building timestamp fetch", e))?;
        pending.insert((topic.clone(), *partition), *offset);
    }
    consumer
        .assign(&tpl)
        .map_err(|e| LagError::kafka("assign for timestamps", e))?;
    let mut out = Vec::with_capacity(round.len());
    let deadline = Instant::now() + timeout;
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(msg)) => {
                let key = (msg.topic().to_owned(), msg.partition());
                if let Some(&wanted) = pending.get(&key)
                    && msg.offset() >= wanted
                    && let Some(ts) = msg.timestamp().to_millis()
                {
                    pending.remove(&key);
                    let first = FirstRecord::Data {
                        offset: msg.offset(),
                        timestamp_ms: ts,
                    };
                    out.push(((key.0, key.1, wanted), first));
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // The error names no topic: look at every pending key of the partition.
                // A position past the wanted offset with no record delivered means only
                // control records (transaction markers) lay between.
                let positions = consumer
                    .position()
                    .map_err(|e| LagError::kafka("position for timestamps", e))?;
                for elem in positions
                    .elements()
                    .into_iter()
                    .filter(|e| e.partition() == partition)
                {
                    let key = (elem.topic().to_owned(), partition);
                    if let (Some(&wanted), Offset::Offset(at)) = (pending.get(&key), elem.offset())
                        && at > wanted
                    {
                        pending.remove(&key);
                        out.push((
                            (key.0, key.1, wanted),
                            FirstRecord::NoDataUntil { until: at },
                        ));
                    }
                }
            }
            Some(Err(err)) => tracing::debug!(error = %err, "timestamp fetch"),
            None => {}
        }
    }
    consumer
        .unassign()
        .map_err(|e| LagError::kafka("unassign after timestamps", e))?;
    Ok(out)
}
