//! One poll cycle: list and describe groups, read committed offsets (batched: one
//! OffsetFetch per coordinator for all groups), then log offsets (batched), then record
//! timestamps; feed the windows; build a snapshot.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;

use crate::aggregate::{DlqWindow, GroupInput, PartitionInput, build_group, dlq_counts};
use crate::config::EngineConfig;
use crate::error::{LagError, Result};
use crate::kafka::committed::CommittedRead;
use crate::kafka::committed_source::CommittedSource;
use crate::kafka::groups::{CONSUMER_PROTOCOL_REASON, ListedGroup, list_groups};
use crate::kafka::log_offsets::{LogOffsetReader, TopicPartition};
use crate::kafka::timestamps::{FirstRecord, RecordKey, TimestampReader};
use crate::kafka::{ClusterTopics, cluster_topics};
use crate::model::{Membership, Snapshot};
use crate::produce_timeline::ProduceTimeline;
use crate::window::{PartitionWindow, Sample};

/// Suffix naming dead-letter topics.
pub use orderflow_contracts::dead_letter::DLQ_SUFFIX;

/// Group under which `orderflow dlq redrive` commits, per dead-letter partition, the
/// offset up to which it has gone over the records. Read for the DLQ count; not a
/// consumer group, so never shown as one.
pub const REDRIVE_GROUP: &str = "orderflow-dlq-redrive";

/// Largest lag checked for being only transaction markers. A consumer that read every
/// record and commits "last record + 1" stays one offset short per trailing marker
/// (one per transaction that ended after its last record; aborted empty ones add more).
pub const MARKER_CHECK_MAX_LAG: i64 = 8;

/// Key of a window: group, topic, partition.
type WindowKey = (String, String, i32);

/// What reading one group's committed offsets gave this cycle.
enum GroupRead {
    /// OffsetFetch answered: per partition of the group's topics.
    Read(HashMap<TopicPartition, CommittedRead>),
    /// The whole request failed.
    Failed(String),
}

/// A partition of a group to show, with its committed offset.
struct CommittedInput {
    tp: TopicPartition,
    committed: Option<i64>,
    /// Why this cycle could not read the committed offset.
    unreadable: Option<String>,
}

/// The lag engine: owns the Kafka clients and the sliding windows between cycles.
pub struct LagEngine {
    config: EngineConfig,
    kafka: ClientConfig,
    offsets: LogOffsetReader,
    committed: CommittedSource,
    timestamps: TimestampReader,
    windows: HashMap<WindowKey, PartitionWindow>,
    dlq_windows: HashMap<String, DlqWindow>,
    /// Offsets recorded by redrives on dead-letter partitions, as last read.
    redriven: HashMap<TopicPartition, i64>,
    /// Per partition whose last stable offset is below its high watermark: that
    /// offset and when it was first seen there (ms).
    stable_since: HashMap<TopicPartition, (i64, i64)>,
    /// Groups of the last successful listing, shown when a listing fails.
    listed_before: BTreeSet<String>,
    timeline: ProduceTimeline,
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl LagEngine {
    /// Builds the clients; no request is made until the first [`LagEngine::poll`].
    /// Must be called inside a Tokio runtime (the record-timestamp reader runs on it).
    pub fn new(kafka: &ClientConfig, config: EngineConfig) -> Result<Self> {
        config.validate_clients()?;
        Ok(Self {
            offsets: LogOffsetReader::new(kafka)?,
            committed: CommittedSource::new(kafka, config.group_clients, config.concurrency),
            timestamps: TimestampReader::new(kafka)?,
            config,
            kafka: kafka.clone(),
            windows: HashMap::new(),
            dlq_windows: HashMap::new(),
            redriven: HashMap::new(),
            stable_since: HashMap::new(),
            listed_before: BTreeSet::new(),
            timeline: ProduceTimeline::default(),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The Kafka client settings the engine was built with.
    pub fn client_config(&self) -> &ClientConfig {
        &self.kafka
    }

    /// Runs one poll cycle.
    pub async fn poll(&mut self) -> Result<Snapshot> {
        let started = Instant::now();
        let taken_at_ms = now_ms();
        let timeout = self.config.request_timeout;
        let mut warnings = Vec::new();

        let client = self.offsets.client();
        let topics = tokio::task::spawn_blocking(move || cluster_topics(&client, timeout))
            .await
            .map_err(|e| LagError::Task(e.to_string()))??;

        let (mut listed, listing_answered) = self.list_groups(&mut warnings).await;
        self.describe_consumer_protocol_groups(&mut listed).await;
        self.apply_filter(&mut listed, listing_answered);

        let read_started = Instant::now();
        let group_reads = self.read_committed(&listed, &topics, &mut warnings).await;
        let read_gap_millis = read_started.elapsed().as_millis() as u64;
        let group_partitions: HashMap<String, Vec<CommittedInput>> = listed
            .iter()
            .map(|g| {
                (
                    g.group.clone(),
                    self.committed_inputs(&g.group, &group_reads),
                )
            })
            .collect();

        let mut wanted: BTreeSet<TopicPartition> = BTreeSet::new();
        for committed in group_partitions.values() {
            wanted.extend(committed.iter().map(|c| c.tp.clone()));
        }
        for (topic, n) in &topics.topics {
            if topic.ends_with(DLQ_SUFFIX) {
                wanted.extend((0..*n).map(|p| (topic.clone(), p)));
            }
        }
        let wanted: Vec<TopicPartition> = wanted.into_iter().collect();
        let logs = self.offsets.read(&wanted, timeout).await?;
        self.stable_since = logs
            .iter()
            .filter(|(_, log)| log.last_stable < log.high_watermark)
            .map(|(tp, log)| {
                let since = match self.stable_since.get(tp) {
                    Some((lso, since)) if *lso == log.last_stable => *since,
                    _ => taken_at_ms,
                };
                (tp.clone(), (log.last_stable, since))
            })
            .collect();

        let mut inputs = Vec::with_capacity(listed.len());
        for listed_group in listed {
            let Some(committed) = group_partitions.get(&listed_group.group) else {
                continue;
            };
            let isolation = self.config.isolation_of(&listed_group.group);
            let mut partitions: Vec<PartitionInput> = committed
                .iter()
                .filter_map(|c| {
                    logs.get(&c.tp).map(|log| PartitionInput {
                        topic: c.tp.0.clone(),
                        partition: c.tp.1,
                        log: *log,
                        committed: c.committed,
                        unreadable: c.unreadable.clone(),
                        markers_only: false,
                        open_transaction_ms: self
                            .stable_since
                            .get(&c.tp)
                            .map(|(_, since)| taken_at_ms - since),
                    })
                })
                .collect();
            partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
            let read_error = match group_reads.get(&listed_group.group) {
                Some(GroupRead::Failed(err)) => Some(err.clone()),
                _ => None,
            };
            inputs.push(GroupInput {
                group: listed_group.group,
                membership: listed_group.membership,
                isolation,
                unlisted: listed_group.unlisted,
                read_error,
                partitions,
            });
        }

        for ((topic, partition), log) in &logs {
            self.timeline
                .observe(topic, *partition, taken_at_ms, log.high_watermark);
        }
        self.timeline.retain(&|tp| logs.contains_key(tp));
        let stamps = self.date_first_unread(&mut inputs).await;

        let window_ms = self.config.window.as_millis() as i64;
        let mut seen: HashSet<WindowKey> = HashSet::new();
        let mut groups = Vec::with_capacity(inputs.len());
        for input in inputs {
            for p in &input.partitions {
                let key = (input.group.clone(), p.topic.clone(), p.partition);
                seen.insert(key.clone());
                if p.unreadable.is_some() {
                    // Nothing new was read: the window keeps its last real sample.
                    continue;
                }
                let figures =
                    crate::aggregate::figures(p, input.isolation, self.config.reset_policy);
                self.windows.entry(key.clone()).or_default().push(
                    Sample {
                        at_ms: taken_at_ms,
                        committed: p.committed,
                        high_watermark: p.log.high_watermark,
                        lag: figures.lag,
                    },
                    window_ms,
                );
            }
            groups.push(build_group(
                input,
                &self.windows,
                &stamps,
                self.config.reset_policy,
                window_ms,
                taken_at_ms,
            ));
        }
        self.windows.retain(|k, _| seen.contains(k));

        let dlq = dlq_counts(
            &topics,
            &logs,
            &self.redriven,
            &mut self.dlq_windows,
            taken_at_ms,
            window_ms,
        );
        Ok(Snapshot {
            taken_at_ms,
            poll_millis: started.elapsed().as_millis() as u64,
            read_gap_millis,
            groups,
            dlq,
            warnings,
        })
    }

    /// Write times (ms) of the first unread record of each lagging partition, and
    /// `markers_only` set on the partitions whose remaining offsets are only
    /// transaction markers.
    async fn date_first_unread(&mut self, inputs: &mut [GroupInput]) -> HashMap<RecordKey, i64> {
        // Write times: interpolated from our own high-watermark history when the offset
        // was written since we started watching, else the record's own timestamp.
        // A small lag may be nothing but transaction markers: those offsets are read
        // too (once per committed offset, cached) to tell, without holding the cycle
        // when the timeline already dates them.
        let mut stamps = HashMap::new();
        let (mut undated, mut to_check) = (Vec::new(), Vec::new());
        for (key, lag) in self.record_keys(inputs) {
            match self.timeline.produced_at(&key.0, key.1, key.2) {
                Some(at) => {
                    if lag <= MARKER_CHECK_MAX_LAG {
                        to_check.push(key.clone());
                    }
                    stamps.insert(key, at);
                }
                None => undated.push(key),
            }
        }
        let mut firsts = self.timestamps.read(&to_check, Duration::ZERO).await;
        firsts.extend(
            self.timestamps
                .read(&undated, self.config.timestamp_timeout)
                .await,
        );
        self.timestamps
            .retain(&undated.iter().chain(&to_check).cloned().collect());
        for input in inputs.iter_mut() {
            for p in &mut input.partitions {
                let f = crate::aggregate::figures(p, input.isolation, self.config.reset_policy);
                let key = (p.topic.clone(), p.partition, f.first_unread);
                match firsts.get(&key) {
                    _ if f.lag == 0 => {}
                    Some(FirstRecord::Data { offset, .. })
                    | Some(FirstRecord::NoDataUntil { until: offset })
                        if *offset >= f.end_offset =>
                    {
                        p.markers_only = true;
                    }
                    Some(FirstRecord::Data { timestamp_ms, .. }) => {
                        stamps.entry(key).or_insert(*timestamp_ms);
                    }
                    // The log grew since that read: read again next cycle.
                    Some(FirstRecord::NoDataUntil { .. }) => self.timestamps.forget(&key),
                    None => {}
                }
            }
        }
        stamps
    }

    /// Fills in the members of the consumer-protocol (KIP-848) groups that
    /// DescribeGroups left unknown, through ConsumerGroupDescribe. A group it cannot
    /// describe keeps its members unknown, with the reason.
    async fn describe_consumer_protocol_groups(&self, listed: &mut [ListedGroup]) {
        let unknown: Vec<String> = listed
            .iter()
            .filter(|g| {
                matches!(&g.membership, Membership::Unknown { reason } if reason == CONSUMER_PROTOCOL_REASON)
            })
            .map(|g| g.group.clone())
            .collect();
        if unknown.is_empty() {
            return;
        }
        let Some(mut described) = self
            .committed
            .describe_consumer_groups(&unknown, self.config.request_timeout)
            .await
        else {
            return;
        };
        for group in listed.iter_mut() {
            match described.remove(&group.group) {
                Some(Ok(membership)) => group.membership = membership,
                Some(Err(reason)) => {
                    group.membership = Membership::Unknown {
                        reason: format!("consumer-protocol group: {reason}"),
                    }
                }
                None => {}
            }
        }
    }

    /// Groups with their members (ListGroups + DescribeGroups), the redrive group left
    /// out. When the listing fails, the groups listed before are kept with members
    /// unknown, so they never vanish from the view: lag does not depend on the listing.
    /// Also says whether the listing answered (a group missing from a failed listing
    /// is not known to be missing).
    async fn list_groups(&mut self, warnings: &mut Vec<String>) -> (Vec<ListedGroup>, bool) {
        let only = match self.config.groups.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        match list_groups(self.offsets.client(), only, self.config.request_timeout).await {
            Ok(mut listed) => {
                listed.retain(|g| g.group != REDRIVE_GROUP);
                self.listed_before = listed.iter().map(|g| g.group.clone()).collect();
                (listed, true)
            }
            Err(err) => {
                let reason = format!("listing groups failed: {err}");
                warnings.push(format!("{reason}; showing the groups listed before"));
                let before = self
                    .listed_before
                    .iter()
                    .map(|group| ListedGroup {
                        group: group.clone(),
                        membership: Membership::Unknown {
                            reason: reason.clone(),
                        },
                        unlisted: false,
                    })
                    .collect();
                (before, false)
            }
        }
    }

    fn apply_filter(&self, listed: &mut Vec<ListedGroup>, listing_answered: bool) {
        if self.config.groups.is_empty() {
            return;
        }
        listed.retain(|g| self.config.groups.contains(&g.group));
        for wanted in &self.config.groups {
            if !listed.iter().any(|g| &g.group == wanted) {
                listed.push(ListedGroup {
                    group: wanted.clone(),
                    membership: Membership::Unknown {
                        reason: if listing_answered {
                            "the cluster does not list this group".into()
                        } else {
                            "listing groups failed".into()
                        },
                    },
                    unlisted: listing_answered,
                });
            }
        }
        listed.sort_by(|a, b| a.group.cmp(&b.group));
    }

    /// Reads committed offsets of every group; returns per group the committed offset
    /// of each partition of its topics: those it committed to and those assigned to
    /// its members (never committed when the answer does not have them).
    async fn read_committed(
        &mut self,
        listed: &[ListedGroup],
        topics: &ClusterTopics,
        warnings: &mut Vec<String>,
    ) -> HashMap<String, GroupRead> {
        let timeout = self.config.request_timeout;
        let everything: Arc<Vec<TopicPartition>> = Arc::new(
            topics
                .topics
                .iter()
                .flat_map(|(t, n)| (0..*n).map(move |p| (t.clone(), p)))
                .collect(),
        );
        let mut groups: Vec<String> = listed.iter().map(|g| g.group.clone()).collect();
        groups.push(REDRIVE_GROUP.to_owned());
        let mut results = self.committed.read(&groups, everything, timeout).await;
        match results.remove(REDRIVE_GROUP) {
            Some(Ok(redriven)) => {
                self.redriven = redriven
                    .into_iter()
                    .filter(|((topic, _), _)| topic.ends_with(DLQ_SUFFIX))
                    .filter_map(|(tp, read)| match read {
                        CommittedRead::Offset(o) => Some((tp, o)),
                        _ => self.redriven.get(&tp).map(|o| (tp, *o)),
                    })
                    .collect();
            }
            // The DLQ counts keep the positions read before.
            Some(Err(err)) => warnings.push(format!("redrive positions ({REDRIVE_GROUP}): {err}")),
            None => {}
        }

        let mut out = HashMap::new();
        for (group, read) in results {
            let committed = match read {
                Ok(c) => c,
                Err(err) => {
                    warnings.push(format!("group {group}: {err}"));
                    out.insert(group, GroupRead::Failed(err.to_string()));
                    continue;
                }
            };
            let mut group_topics: BTreeSet<&str> = listed
                .iter()
                .filter(|g| g.group == group)
                .flat_map(|g| match &g.membership {
                    Membership::Known { members, .. } => members
                        .iter()
                        .flat_map(|m| m.assignment.iter().map(|(t, _)| t.as_str()))
                        .collect::<Vec<_>>(),
                    Membership::Unknown { .. } => Vec::new(),
                })
                .collect();
            group_topics.extend(committed.iter().filter_map(|(tp, c)| {
                match c {
                    CommittedRead::Offset(_) => Some(tp.0.as_str()),
                    // An error on a partition the group was seen on before keeps it shown.
                    CommittedRead::Unreadable(_) => self
                        .windows
                        .contains_key(&(group.clone(), tp.0.clone(), tp.1))
                        .then_some(tp.0.as_str()),
                    CommittedRead::Never => None,
                }
            }));
            let group_topics: BTreeSet<String> =
                group_topics.into_iter().map(str::to_owned).collect();
            let mut committed: HashMap<TopicPartition, CommittedRead> = committed
                .into_iter()
                .filter(|((t, _), _)| group_topics.contains(t))
                .collect();
            for topic in &group_topics {
                for partition in 0..topics.partitions(topic).unwrap_or(0) {
                    committed
                        .entry((topic.clone(), partition))
                        .or_insert(CommittedRead::Never);
                }
            }
            out.insert(group, GroupRead::Read(committed));
        }
        let keep: HashSet<String> = listed.iter().map(|g| g.group.clone()).collect();
        self.committed.retain(&keep).await;
        out
    }

    /// The partitions of `group` to show this cycle with their committed offsets. What
    /// could not be read keeps the last offset read (marked unreadable) so that the
    /// group and its series do not vanish on an error.
    fn committed_inputs(
        &self,
        group: &str,
        reads: &HashMap<String, GroupRead>,
    ) -> Vec<CommittedInput> {
        let last_committed = |tp: &TopicPartition| {
            self.windows
                .get(&(group.to_owned(), tp.0.clone(), tp.1))
                .and_then(|w| w.samples().back())
                .and_then(|s| s.committed)
        };
        match reads.get(group) {
            Some(GroupRead::Read(committed)) => committed
                .iter()
                .map(|(tp, read)| match read {
                    CommittedRead::Offset(o) => CommittedInput {
                        tp: tp.clone(),
                        committed: Some(*o),
                        unreadable: None,
                    },
                    CommittedRead::Never => CommittedInput {
                        tp: tp.clone(),
                        committed: None,
                        unreadable: None,
                    },
                    CommittedRead::Unreadable(err) => CommittedInput {
                        tp: tp.clone(),
                        committed: last_committed(tp),
                        unreadable: Some(format!(
                            "OffsetFetch answered this partition with an error ({err}); last known offset shown"
                        )),
                    },
                })
                .collect(),
            Some(GroupRead::Failed(err)) => self
                .windows
                .keys()
                .filter(|(g, _, _)| g == group)
                .map(|(_, t, p)| {
                    let tp = (t.clone(), *p);
                    CommittedInput {
                        committed: last_committed(&tp),
                        tp,
                        unreadable: Some(format!(
                            "reading the group's committed offsets failed ({err}); last known offset shown"
                        )),
                    }
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// Records whose timestamps give lag in seconds: the first unread one of each
    /// lagging partition, with the partition's lag.
    fn record_keys(&self, inputs: &[GroupInput]) -> Vec<(RecordKey, i64)> {
        let mut keys = Vec::new();
        for input in inputs {
            for p in &input.partitions {
                let f = crate::aggregate::figures(p, input.isolation, self.config.reset_policy);
                if f.lag > 0 {
                    keys.push(((p.topic.clone(), p.partition, f.first_unread), f.lag));
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}
