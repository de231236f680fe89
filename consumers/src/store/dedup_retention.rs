//! When dedup rows may go (`processed_events` and the dead-letter ledger, by the
//! same rule): never before the source topic itself forgets the events (checked at
//! start-up against the topic's `retention.ms`), and only rows the group has
//! committed past (read from Kafka on every cleanup round), so no redelivery meets
//! an event whose dedup row is gone, nor a dead-lettered record whose ledger row is.

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

/// `--dedup-retention forever`: rows are never deleted. The only retention a topic
/// that keeps its records forever (`retention.ms=-1`) accepts.
pub const KEEP_FOREVER: Duration = Duration::MAX;

/// Parses `--dedup-retention`: a duration (`7d`, `12h`) or `forever`.
pub(crate) fn parse_retention(raw: &str) -> std::result::Result<Duration, String> {
    if raw.trim() == "forever" {
        return Ok(KEEP_FOREVER);
    }
    orderflow_runtime::kafka::parse_duration(raw)
}

/// Refuses a dedup retention shorter than `topic`'s `retention.ms`: a rewind
/// within the topic's retention would replay events whose dedup rows are gone.
/// A topic that keeps records forever needs `--dedup-retention forever`.
pub(crate) async fn check_against_topic(
    kafka: &KafkaArgs,
    topic: &str,
    retention: Duration,
) -> Result<()> {
    if retention == KEEP_FOREVER {
        return Ok(());
    }
    let topic_ms = topic_retention_ms(kafka, topic).await?;
    if topic_ms < 0 {
        return Err(Error::Startup(format!(
            "topic {topic} keeps records forever (retention.ms=-1), so a rewind can replay any event: --dedup-retention ({retention:?}) must be `forever`"
        )));
    }
    let topic_retention = Duration::from_millis(topic_ms as u64);
    if retention < topic_retention {
        return Err(Error::Startup(format!(
            "--dedup-retention ({retention:?}) is shorter than topic {topic}'s retention.ms ({topic_ms}, {topic_retention:?}): a rewind could replay events whose dedup rows are gone; use at least {topic_retention:?}"
        )));
    }
    Ok(())
}

async fn topic_retention_ms(kafka: &KafkaArgs, topic: &str) -> Result<i64> {
    let fail = |reason: String| {
        Error::Startup(format!(
            "cannot read retention.ms of topic {topic} (DescribeConfigs): {reason}"
        ))
    };
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &options)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let resource = results
        .into_iter()
        .next()
        .ok_or_else(|| fail("no answer".into()))?
        .map_err(|code| fail(code.to_string()))?;
    let value = resource
        .get("retention.ms")
        .and_then(|entry| entry.value.clone())
        .ok_or_else(|| fail("not reported (does the topic exist?)".into()))?;
    value
        .parse()
        .map_err(|_| fail(format!("not a number: {value:?}")))
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

/// Every `every` until cancelled, deletes the rows of every [`DedupTable`] older
/// than `retention` that the group has committed past. Failures are logged and
/// retried on the next round (retention is not urgent). Does nothing with
/// [`KEEP_FOREVER`].
pub(crate) async fn run(
    pool: PgPool,
    offsets: CommittedOffsets,
    group: String,
    retention: Duration,
    every: Duration,
    token: CancellationToken,
) {
    if retention == KEEP_FOREVER {
        return;
    }
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let committed = match offsets.read().await {
            Ok(committed) => committed,
            Err(error) => {
                tracing::warn!(%error, group, "dedup retention cannot read committed offsets; will retry");
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
                retention,
                &committed,
            )
            .await
            {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(
                    deleted,
                    table = table_name,
                    group,
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
    fn retention_is_a_duration_or_forever() {
        assert_eq!(parse_retention("forever"), Ok(KEEP_FOREVER));
        assert_eq!(parse_retention("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert!(parse_retention("never").is_err());
    }
}
