//! When dedup rows may go (`processed_events` and the dead-letter ledger, by the
//! same rule): never while the source topic can still replay the events, and only
//! rows the group has committed past (read from Kafka on every cleanup round), so no
//! redelivery meets an event whose dedup row is gone, nor a dead-lettered record
//! whose ledger row is.
//!
//! How long the topic can replay an event: Kafka deletes whole segments, once a
//! segment's newest record is older than `retention.ms`, and a segment rolls only
//! `segment.ms` after its first record. So a record can stay `retention.ms +
//! segment.ms` (plus the broker's retention check interval, 5 min by default:
//! [`BROKER_CHECK_MARGIN`]). The topic's configs are read at start-up and again on
//! every cleanup round, because they change while workers run.

use std::sync::Arc;
use std::time::Duration;

use orderflow_runtime::kafka::KafkaArgs;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::dedup_store::{self, DedupTable};
use crate::error::{Error, Result};

/// How long dedup rows are kept (`--dedup-retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedupRetention {
    /// `topic` (the default): as long as the topic can replay an event,
    /// `retention.ms + segment.ms` + [`BROKER_CHECK_MARGIN`], read again on every
    /// cleanup round; nothing is deleted while the topic keeps records forever
    /// (`retention.ms=-1`, or compaction).
    Topic,
    /// `forever`: rows are never deleted.
    Forever,
    /// A duration: at least this long. Start-up refuses one shorter than the topic's
    /// replay window; a cleanup round that finds the topic's window grew past it
    /// keeps rows for the topic's window instead (and says so).
    AtLeast(Duration),
}

/// `--dedup-retention forever`: rows are never deleted.
pub const KEEP_FOREVER: DedupRetention = DedupRetention::Forever;

/// Added to `retention.ms + segment.ms`: the broker looks for deletable segments
/// only every `log.retention.check.interval.ms` (5 min by default).
pub const BROKER_CHECK_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Parses `--dedup-retention`: `topic`, `forever` or a duration (`21d`, `12h`).
pub(crate) fn parse_retention(raw: &str) -> std::result::Result<DedupRetention, String> {
    match raw.trim() {
        "topic" => Ok(DedupRetention::Topic),
        "forever" => Ok(DedupRetention::Forever),
        other => orderflow_runtime::kafka::parse_duration(other)
            .map(DedupRetention::AtLeast)
            .map_err(|e| format!("{e} (or `topic`, `forever`)")),
    }
}

/// The topic configs that decide how long it keeps a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicRetention {
    retention_ms: i64,
    segment_ms: i64,
    compacted: bool,
}

impl TopicRetention {
    /// How long the topic can still replay a record; `None`: forever.
    fn window(&self) -> Option<Duration> {
        if self.retention_ms < 0 || self.compacted {
            return None;
        }
        let ms = self.retention_ms.saturating_add(self.segment_ms.max(0)) as u64;
        Some(Duration::from_millis(ms) + BROKER_CHECK_MARGIN)
    }

    fn describe(&self) -> String {
        format!(
            "retention.ms={}, segment.ms={}{}",
            self.retention_ms,
            self.segment_ms,
            if self.compacted { ", compacted" } else { "" }
        )
    }
}

/// Refuses a dedup retention shorter than `topic` can replay a record
/// (`retention.ms + segment.ms`): a rewind would replay events whose dedup rows are
/// gone. A topic that keeps records forever needs `topic` or `forever`.
pub(crate) async fn check_against_topic(
    kafka: &KafkaArgs,
    topic: &str,
    retention: DedupRetention,
) -> Result<()> {
    if retention == DedupRetention::Forever {
        return Ok(());
    }
    let configs = TopicConfigs::new(kafka, topic)?;
    let current = configs.read().await.map_err(Error::Startup)?;
    match (retention, current.window()) {
        (DedupRetention::AtLeast(retention), None) => Err(Error::Startup(format!(
            "topic {topic} keeps records forever ({}), so a rewind can replay any event: --dedup-retention ({retention:?}) must be `topic` or `forever`",
            current.describe()
        ))),
        (DedupRetention::AtLeast(retention), Some(window)) if retention < window => {
            Err(Error::Startup(format!(
                "--dedup-retention ({retention:?}) is shorter than topic {topic} can replay a record ({}: Kafka deletes whole segments, so retention.ms + segment.ms + {BROKER_CHECK_MARGIN:?} = {window:?}): a rewind could replay events whose dedup rows are gone; use `topic` or at least {window:?}",
                current.describe()
            )))
        }
        _ => Ok(()),
    }
}

/// Reads a topic's retention configs (DescribeConfigs, effective values).
pub(crate) struct TopicConfigs {
    admin: AdminClient<DefaultClientContext>,
    topic: String,
}

impl TopicConfigs {
    /// A reader of `topic`'s configs.
    pub(crate) fn new(kafka: &KafkaArgs, topic: &str) -> Result<Self> {
        Ok(Self {
            admin: kafka.client_config().create()?,
            topic: topic.to_owned(),
        })
    }

    /// The topic's configs now; the error is one line naming the topic.
    pub(crate) async fn read(&self) -> std::result::Result<TopicRetention, String> {
        let topic = &self.topic;
        let fail = |reason: String| {
            format!(
                "cannot read the retention configs of topic {topic} (DescribeConfigs): {reason}"
            )
        };
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let resource = results
            .into_iter()
            .next()
            .ok_or_else(|| fail("no answer".into()))?
            .map_err(|code| fail(code.to_string()))?;
        let value = |name: &str| {
            resource
                .get(name)
                .and_then(|entry| entry.value.clone())
                .ok_or_else(|| fail(format!("{name} not reported (does the topic exist?)")))
        };
        let number = |name: &str| -> std::result::Result<i64, String> {
            let raw = value(name)?;
            raw.parse()
                .map_err(|_| fail(format!("{name} is not a number: {raw:?}")))
        };
        Ok(TopicRetention {
            retention_ms: number("retention.ms")?,
            segment_ms: number("segment.ms")?,
            compacted: value("cleanup.policy")?.contains("compact"),
        })
    }
}

/// Reads the group's committed offsets of a topic without joining the group.
pub(crate) struct CommittedOffsets {
    consumer: Arc<BaseConsumer>,
    topic: String,
}

impl std::fmt::Debug for CommittedOffsets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommittedOffsets")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl CommittedOffsets {
    /// A reader for `group` on `topic` (a client that never subscribes).
    pub(crate) fn new(kafka: &KafkaArgs, group: &str, topic: &str) -> Result<Self> {
        let consumer: BaseConsumer = kafka
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self {
            consumer: Arc::new(consumer),
            topic: topic.to_owned(),
        })
    }

    /// The committed offset of every partition of the topic that has one.
    pub(crate) async fn read(&self) -> Result<Vec<(i32, i64)>> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<(i32, i64)>> {
            let timeout = Duration::from_secs(10);
            let metadata = consumer.fetch_metadata(Some(&topic), timeout)?;
            let mut tpl = TopicPartitionList::new();
            for partition in metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions())
            {
                tpl.add_partition(&topic, partition.id());
            }
            let committed = consumer.committed_offsets(tpl, timeout)?;
            Ok(committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(offset) => Some((e.partition(), offset)),
                    _ => None,
                })
                .collect())
        })
        .await
        .map_err(|e| Error::Startup(format!("committed-offsets task failed: {e}")))?
    }
}

/// How long rows are kept this round, from the topic's configs now; `None`: keep
/// everything (the topic keeps records forever). Says so when the configured
/// retention fell short of the topic's window.
fn round_retention(
    retention: DedupRetention,
    current: &TopicRetention,
    topic: &str,
) -> Option<Duration> {
    let window = current.window();
    match (retention, window) {
        (DedupRetention::Forever, _) => None,
        (DedupRetention::Topic, window) => window,
        (DedupRetention::AtLeast(configured), Some(window)) if configured >= window => {
            Some(configured)
        }
        (DedupRetention::AtLeast(configured), window) => {
            tracing::warn!(topic, configured = ?configured, topic_window = ?window,
                configs = %current.describe(),
                "topic can replay records longer than --dedup-retention: keeping dedup rows for the topic's window");
            window
        }
    }
}

/// Every `every` until cancelled, deletes the rows of every [`DedupTable`] that the
/// group has committed past and that are older than the retention of the round
/// (the topic's configs read again each round). Failures are logged and retried
/// on the next round (retention is not urgent); a round that cannot read the
/// topic's configs deletes nothing. Does nothing with [`DedupRetention::Forever`].
pub(crate) async fn run(
    pool: PgPool,
    offsets: CommittedOffsets,
    configs: TopicConfigs,
    group: String,
    retention: DedupRetention,
    every: Duration,
    token: CancellationToken,
) {
    if retention == DedupRetention::Forever {
        return;
    }
    let mut ticker = tokio::time::interval(every);
    let mut offsets_failures = 0u32;
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let current = match configs.read().await {
            Ok(current) => current,
            Err(error) => {
                tracing::warn!(%error, group, "dedup retention deletes nothing this round; will retry");
                continue;
            }
        };
        let Some(round) = round_retention(retention, &current, &offsets.topic) else {
            continue;
        };
        let committed = match offsets.read().await {
            Ok(committed) => {
                offsets_failures = 0;
                committed
            }
            Err(error) => {
                // A new group's coordinator is not loaded yet when the first round
                // runs at start-up (NotCoordinator): only a failure that persists
                // into the next round is worth a warning.
                offsets_failures += 1;
                if offsets_failures > 1 {
                    tracing::warn!(%error, group, "dedup retention cannot read committed offsets; will retry");
                } else {
                    tracing::debug!(%error, group, "dedup retention cannot read committed offsets yet; will retry");
                }
                continue;
            }
        };
        for table in DedupTable::ALL {
            let table_name = table.name();
            match dedup_store::delete_expired(
                &pool,
                table,
                &group,
                &offsets.topic,
                round,
                &committed,
            )
            .await
            {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(
                    deleted,
                    table = table_name,
                    group,
                    retention = ?round,
                    ?committed,
                    "dedup retention removed old rows"
                ),
                Err(error) => tracing::warn!(%error, table = table_name, group,
                    "dedup retention failed; will retry"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_topic_forever_or_a_duration() {
        assert_eq!(parse_retention("topic"), Ok(DedupRetention::Topic));
        assert_eq!(parse_retention("forever"), Ok(DedupRetention::Forever));
        assert_eq!(
            parse_retention("2d"),
            Ok(DedupRetention::AtLeast(Duration::from_secs(2 * 86_400)))
        );
        assert!(parse_retention("never").is_err());
    }

    const DAY: u64 = 86_400;

    fn topic(retention_ms: i64, segment_ms: i64, compacted: bool) -> TopicRetention {
        TopicRetention {
            retention_ms,
            segment_ms,
            compacted,
        }
    }

    #[test]
    fn a_record_can_stay_retention_plus_segment() {
        // Kafka's defaults: 7 days of retention, 7-day segments.
        let week = 7 * DAY as i64 * 1000;
        assert_eq!(
            topic(week, week, false).window(),
            Some(Duration::from_secs(14 * DAY) + BROKER_CHECK_MARGIN)
        );
        assert_eq!(topic(-1, week, false).window(), None);
        assert_eq!(topic(week, week, true).window(), None);
    }

    #[test]
    fn a_round_keeps_rows_for_the_longer_of_the_configured_and_the_topic_window() {
        let day_ms = DAY as i64 * 1000;
        let two_days = topic(day_ms, day_ms, false);
        let window = Duration::from_secs(2 * DAY) + BROKER_CHECK_MARGIN;
        let long = Duration::from_secs(30 * DAY);
        assert_eq!(
            round_retention(DedupRetention::Topic, &two_days, "t"),
            Some(window)
        );
        assert_eq!(
            round_retention(DedupRetention::AtLeast(long), &two_days, "t"),
            Some(long)
        );
        let short = Duration::from_secs(DAY);
        assert_eq!(
            round_retention(DedupRetention::AtLeast(short), &two_days, "t"),
            Some(window)
        );
        let forever = topic(-1, day_ms, false);
        assert_eq!(
            round_retention(DedupRetention::AtLeast(long), &forever, "t"),
            None
        );
        assert_eq!(round_retention(DedupRetention::Topic, &forever, "t"), None);
        assert_eq!(
            round_retention(DedupRetention::Forever, &two_days, "t"),
            None
        );
    }
}
