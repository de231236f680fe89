//! Replays planned records to their source topics with an idempotent producer
//! (acks=all), paced by [`RatePacer`], checking every delivery. Only topics of the
//! allow-list receive replays; the redrive cursor is committed as deliveries are
//! acknowledged, so an interrupted run is continued, not repeated, by the next one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use orderflow_runtime::bounded_read::BoundedReadError;
use orderflow_runtime::partitioner::partition_for_key;
use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

use super::error::{DeadLetterError, Result};
use super::rate_pacer::RatePacer;
use super::reader::{DlqReader, topic_partitions};
use super::record::DlqRecord;
use super::redrive_cursor::{CursorWriter, Cursors, cursor_group};
use super::redrive_plan::{AllowedTopics, Redrive, RedriveDecision, SkipReason, plan_redrive};
use super::redrive_progress::{self, PartitionProgress};
use super::selection::Selection;
use super::summary::RedriveSummary;

/// Deliveries awaited at most at once; older ones are awaited before sending more.
const MAX_IN_FLIGHT: usize = 1000;
/// How often the cursor is committed while running (and the progress line redrawn),
/// bounding what a killed run (SIGKILL, power loss) replays again.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Settings of one redrive run.
#[derive(Debug, Clone)]
pub struct RedriveOptions {
    /// Records a second, at most.
    pub rate: f64,
    /// Records already replayed this many times are skipped.
    pub max_redrives: u32,
    /// Plan and report only; produce nothing.
    pub dry_run: bool,
    /// How long librdkafka may try to deliver one record (message.timeout.ms).
    pub delivery_timeout: Duration,
    /// The topics replays may go to.
    pub allowed: AllowedTopics,
    /// Replay records an earlier run already handled (below the cursor) too.
    pub again: bool,
    /// The category the run selects (its cursor is kept apart from other categories').
    pub category: Option<String>,
}

/// Called about once a second with the tally so far, records read and records to read.
pub type Progress<'a> = &'a mut dyn FnMut(&RedriveSummary, u64, u64);

/// One line per record that is not simply replayed, for the operator (stderr).
pub type Report<'a> = &'a mut dyn FnMut(String);

/// A replay awaiting its delivery report.
struct Sent {
    /// For report lines: `dlq[p]@o -> topic`.
    what: String,
    /// DLQ partition and offset of the record.
    partition: i32,
    offset: i64,
}

/// Produces replays and keeps the tally.
pub struct Redriver {
    producer: Option<FutureProducer>,
    /// Partition counts of source topics, `None` when the topic does not exist.
    source_topics: HashMap<String, Option<usize>>,
    metadata: BaseConsumer,
    brokers: String,
    options: RedriveOptions,
    pacer: RatePacer,
    in_flight: VecDeque<(Sent, DeliveryFuture)>,
    summary: RedriveSummary,
    base: ClientConfig,
    /// Per DLQ partition read: how far the replayed prefix goes.
    progress: BTreeMap<i32, PartitionProgress>,
    /// Cursors found at start: which records earlier runs handled.
    cursors: Cursors,
    /// The cursor this run moves; `None` in a dry run.
    cursor: Option<CursorWriter>,
    /// The first failure stops the run: later replays would pass the cursor.
    stop_reading: bool,
}

impl std::fmt::Debug for Redriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redriver")
            .field("options", &self.options)
            .field("summary", &self.summary)
            .finish()
    }
}

impl Redriver {
    /// A redriver on the cluster of `base` (bootstrap servers and user overrides);
    /// idempotence and acks=all are forced on over any override, other producer
    /// settings only fill in what the overrides left unset.
    pub fn new(base: &ClientConfig, options: RedriveOptions, cursors: Cursors) -> Result<Self> {
        let producer = if options.dry_run {
            None
        } else {
            let mut config = base.clone();
            // Tunables a --kafka-option already set are kept; the delivery guarantees are not.
            for (key, value) in [
                // Java's partitioner, for records without a valid source partition.
                ("partitioner", "murmur2_random".to_owned()),
                ("linger.ms", "5".to_owned()),
                (
                    "message.timeout.ms",
                    options.delivery_timeout.as_millis().to_string(),
                ),
            ] {
                if config.get(key).is_none() {
                    config.set(key, value);
                }
            }
            config.set("enable.idempotence", "true").set("acks", "all");
            Some(
                config
                    .create()
                    .map_err(DeadLetterError::kafka("create the redrive producer"))?,
            )
        };
        let metadata: BaseConsumer = base
            .clone()
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(DeadLetterError::kafka("create the metadata client"))?;
        Ok(Self {
            producer,
            source_topics: HashMap::new(),
            metadata,
            brokers: base.get("bootstrap.servers").unwrap_or_default().to_owned(),
            pacer: RatePacer::new(options.rate),
            summary: RedriveSummary {
                dry_run: options.dry_run,
                ..RedriveSummary::default()
            },
            options,
            in_flight: VecDeque::new(),
            base: base.clone(),
            progress: BTreeMap::new(),
            cursors,
            cursor: None,
            stop_reading: false,
        })
    }

    /// Reads every record of `reader`, replays those `selection` picks, waits for all
    /// deliveries and returns the tally. Stops early (and says so) when `stop` fires.
    pub async fn run(
        mut self,
        reader: &mut DlqReader,
        selection: &Selection,
        stop: &CancellationToken,
        report: Report<'_>,
        progress: Progress<'_>,
    ) -> Result<RedriveSummary> {
        if !self.options.dry_run {
            let group = cursor_group(self.options.category.as_deref());
            let starts: BTreeMap<i32, i64> = reader
                .pending()
                .iter()
                .map(|(p, r)| (*p, r.start))
                .collect();
            let committed = match self.options.category.as_deref() {
                None => self.cursors.all.clone(),
                Some(c) => self.cursors.by_category.get(c).cloned().unwrap_or_default(),
            };
            self.cursor = Some(CursorWriter::new(
                &self.base,
                &group,
                reader.topic(),
                &starts,
                &committed,
            )?);
        }
        let total: u64 = reader
            .pending()
            .values()
            .map(|r| u64::try_from(r.end - r.start).unwrap_or(0))
            .sum();
        let mut read = 0u64;
        let mut checkpoint = Instant::now();
        self.progress = reader
            .pending()
            .iter()
            .map(|(partition, range)| {
                (
                    *partition,
                    PartitionProgress {
                        range: *range,
                        read_to: range.start,
                        first_not_replayed: None,
                        finished: false,
                    },
                )
            })
            .collect();
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => { self.summary.interrupted = true; break; }
                next = reader.next() => next?,
            };
            let Some(record) = next else { break };
            read += 1;
            if let Some(p) = self.progress.get_mut(&record.partition) {
                p.read_to = record.offset + 1;
            }
            if checkpoint.elapsed() >= CHECKPOINT_EVERY {
                checkpoint = Instant::now();
                self.checkpoint(false, report);
                progress(&self.summary, read, total);
            }
            if !selection.matches(&record) {
                // Another category's record: this run's cursor passes it.
                self.cursor_read(&record, true);
                self.not_replayed(&record);
                continue;
            }
            self.summary.selected += 1;
            let decision = if !self.options.again && self.cursors.already_handled(&record) {
                RedriveDecision::Skip(SkipReason::AlreadyRedriven)
            } else {
                plan_redrive(&record, self.options.max_redrives, &self.options.allowed)
            };
            match decision {
                RedriveDecision::Skip(reason) => self.skip(&record, reason, report),
                RedriveDecision::Replay(redrive) => {
                    if !self.send(&record, redrive, stop, report).await? {
                        // Stopped while waiting for its slot: not handled, not counted.
                        self.summary.selected -= 1;
                        self.not_replayed(&record);
                        break;
                    }
                }
            }
            if self.stop_reading {
                report(format!(
                    "stopped after a failure at {}; a re-run retries from there",
                    position(&record)
                ));
                break;
            }
        }
        while let Some((sent, delivery)) = self.in_flight.pop_front() {
            self.settle(sent, delivery, report).await;
        }
        progress(&self.summary, read, total);
        if !self.options.dry_run {
            self.checkpoint(true, report);
            for (partition, p) in &mut self.progress {
                p.finished = !reader.pending().contains_key(partition);
            }
            match redrive_progress::record(&self.base, reader.topic(), &self.progress) {
                Ok(positions) => self.summary.positions = positions,
                // The replays stand; only the DLQ count will not drop yet.
                Err(err) => report(format!("could not record the redrive positions: {err}")),
            }
        }
        Ok(self.summary)
    }

    /// Notes that a record read was not replayed: the replayed prefix ends before it.
    fn not_replayed(&mut self, record: &DlqRecord) {
        self.mark_not_replayed(record.partition, record.offset);
    }

    fn mark_not_replayed(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.progress.get_mut(&partition) {
            p.first_not_replayed = Some(p.first_not_replayed.map_or(offset, |o| o.min(offset)));
        }
    }

    /// Commits the cursor as far as replays were acknowledged; a failure to commit is
    /// reported, not fatal (the replays stand; a re-run may repeat some).
    fn checkpoint(&mut self, wait: bool, report: Report<'_>) {
        let Some(cursor) = self.cursor.as_mut() else {
            return;
        };
        match cursor.commit(wait) {
            Ok(moved) => self.summary.cursor.extend(moved),
            Err(err) => report(format!("could not commit the redrive cursor: {err}")),
        }
    }

    fn cursor_read(&mut self, record: &DlqRecord, handled: bool) {
        if let Some(cursor) = self.cursor.as_mut() {
            cursor.read(record.partition, record.offset, handled);
        }
    }

    fn skip(&mut self, record: &DlqRecord, reason: SkipReason, report: Report<'_>) {
        self.not_replayed(record);
        self.cursor_read(record, true);
        match reason {
            SkipReason::MaxRedrives { .. } => self.summary.skipped_max_redrives += 1,
            SkipReason::NoSourceTopic => self.summary.skipped_no_source += 1,
            SkipReason::InvalidRedriveCount { .. } => self.summary.skipped_invalid_count += 1,
            SkipReason::TopicNotAllowed { .. } => self.summary.refused_topic += 1,
            SkipReason::AlreadyRedriven => {
                // One line per record would drown a re-run's output: counted only.
                self.summary.skipped_already_redriven += 1;
                return;
            }
        }
        report(format!("skipped {}: {reason}", position(record)));
    }

    /// Counts a failure that leaves `record` in the DLQ and unhandled: the cursor stops
    /// before it and the run stops reading, so a re-run retries it.
    fn fail(&mut self, record: &DlqRecord) {
        self.summary.failed += 1;
        self.not_replayed(record);
        self.cursor_read(record, false);
        self.stop_reading = true;
    }

    /// Paces and enqueues one replay; `false` when stopped by a signal.
    async fn send(
        &mut self,
        record: &DlqRecord,
        redrive: Redrive,
        stop: &CancellationToken,
        report: Report<'_>,
    ) -> Result<bool> {
        let what = format!("{} -> {}", position(record), redrive.topic);
        let Some(partitions) = self.source_partitions(&redrive.topic)? else {
            self.fail(record);
            report(format!(
                "failed {what}: source topic {} does not exist",
                redrive.topic
            ));
            return Ok(true);
        };
        // Same partition as the original when it still exists, so the record's
        // ordering relative to its key's other records is kept; else by key.
        let partition = redrive
            .partition
            .filter(|p| usize::try_from(*p).is_ok_and(|p| p < partitions))
            .or_else(|| {
                // Where the producer's murmur2 partitioner would put it, named up front
                // so the dry run can count it.
                let key = redrive.key.as_deref()?;
                let count = u32::try_from(partitions).ok()?;
                Some(partition_for_key(key, count))
            });
        let Some(producer) = self.producer.clone() else {
            self.summary.would_redrive += 1;
            self.count_target(record, &redrive.topic, partition);
            report(format!(
                "would redrive {what}[{}] with redrive count {}",
                partition.map_or_else(|| "any".to_owned(), |p| p.to_string()),
                redrive.redrive_count
            ));
            return Ok(true);
        };
        let slot = self.pacer.reserve(Instant::now());
        tokio::select! {
            _ = stop.cancelled() => { self.summary.interrupted = true; return Ok(false); }
            _ = tokio::time::sleep_until(slot.into()) => {}
        }
        let headers = redrive.headers.iter().fold(OwnedHeaders::new(), |acc, h| {
            acc.insert(Header {
                key: h.key.as_str(),
                value: h.value.as_deref(),
            })
        });
        loop {
            let mut future =
                FutureRecord::<[u8], [u8]>::to(&redrive.topic).headers(headers.clone());
            if let Some(partition) = partition {
                future = future.partition(partition);
            }
            if let Some(key) = redrive.key.as_deref() {
                future = future.key(key);
            }
            if let Some(value) = redrive.value.as_deref() {
                future = future.payload(value);
            }
            match producer.send_result(future) {
                Ok(delivery) => {
                    self.cursor_read(record, false);
                    self.count_target(record, &redrive.topic, partition);
                    let sent = Sent {
                        what,
                        partition: record.partition,
                        offset: record.offset,
                    };
                    self.in_flight.push_back((sent, delivery));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if !self.in_flight.is_empty() =>
                {
                    // The local queue is full: wait for the oldest delivery, then retry.
                    let (old, delivery) = self.in_flight.pop_front().expect("checked non-empty");
                    self.settle(old, delivery, report).await;
                }
                Err((err, _)) => {
                    self.fail(record);
                    report(format!("failed {what}: {err}"));
                    return Ok(true);
                }
            }
        }
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            let (old, delivery) = self.in_flight.pop_front().expect("non-empty");
            self.settle(old, delivery, report).await;
        }
        Ok(true)
    }

    async fn settle(&mut self, sent: Sent, delivery: DeliveryFuture, report: Report<'_>) {
        let failure = match delivery.await {
            Ok(Ok(_)) => {
                self.summary.redriven += 1;
                if let Some(cursor) = self.cursor.as_mut() {
                    cursor.handled(sent.partition, sent.offset);
                }
                return;
            }
            Ok(Err((err, _))) => err.to_string(),
            Err(_canceled) => "the producer dropped the delivery".to_owned(),
        };
        self.summary.failed += 1;
        self.stop_reading = true;
        self.mark_not_replayed(sent.partition, sent.offset);
        report(format!("failed {}: {failure}", sent.what));
    }

    /// Counts a replay per category and target; the partition is `-1` when neither
    /// the source partition nor a key decides it.
    fn count_target(&mut self, record: &DlqRecord, topic: &str, partition: Option<i32>) {
        self.summary
            .count_target(record.category(), topic, partition.unwrap_or(-1));
    }

    /// Partition count of `topic`, looked up once; `None` when it does not exist.
    fn source_partitions(&mut self, topic: &str) -> Result<Option<usize>> {
        if let Some(known) = self.source_topics.get(topic) {
            return Ok(*known);
        }
        let count = match topic_partitions(&self.metadata, topic, &self.brokers) {
            Ok(partitions) => Some(partitions.len()),
            Err(DeadLetterError::Read(BoundedReadError::TopicNotFound { .. })) => None,
            Err(other) => return Err(other),
        };
        self.source_topics.insert(topic.to_owned(), count);
        Ok(count)
    }
}

/// Where a record sits in the DLQ, for report lines: `dlq[partition]@offset`.
fn position(record: &DlqRecord) -> String {
    format!("dlq[{}]@{}", record.partition, record.offset)
}
