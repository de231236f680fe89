//! Helpers shared by the lag integration tests: produce records to chosen partitions,
//! commit chosen offsets for a group, build an engine with a short window.

#![allow(dead_code)]

use std::time::Duration;

use orderflow_lag::{EngineConfig, LagEngine};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// Produces `count` records to `topic[partition]` and waits for every ack.
pub async fn produce(topic: &str, partition: i32, count: usize) {
    let producer: FutureProducer = orderflow_testkit::kafka_config()
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let sends = (0..count).map(|i| {
        let producer = producer.clone();
        let key = format!("order-{i}");
        let topic = topic.to_owned();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic)
                        .partition(partition)
                        .key(&key)
                        .payload("{}"),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
        }
    });
    for sent in futures::future::join_all(sends).await {
        sent.expect("record acked");
    }
}

/// Commits `offsets` (partition, next offset to read) for `group` on `topic` without
/// joining the group, as a consumer using manual assignment does.
pub fn commit(group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let consumer: BaseConsumer = orderflow_testkit::kafka_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .expect("tpl");
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit {offsets:?} for {group}: {e}"));
}

/// An engine reading only `group`, with a `window` for status.
pub fn engine(group: &str, window: Duration) -> LagEngine {
    let config = EngineConfig {
        groups: vec![group.to_owned()],
        window,
        request_timeout: Duration::from_secs(10),
        timestamp_timeout: Duration::from_secs(5),
        ..EngineConfig::default()
    };
    LagEngine::new(&orderflow_testkit::kafka_config(), config).expect("engine")
}

/// Consumes `topic[partition]` for `group` from its committed offset, committing after
/// every record and sleeping `pause` between records, until `count` records are done.
pub fn consume_slowly(group: &str, topic: &str, partition: i32, count: usize, pause: Duration) {
    use rdkafka::message::Message;
    let consumer: BaseConsumer = orderflow_testkit::kafka_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Stored)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut done = 0;
    while done < count {
        assert!(
            std::time::Instant::now() < deadline,
            "consumed {done} of {count} records in 30 s"
        );
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.expect("record");
        let mut commit = TopicPartitionList::new();
        commit
            .add_partition_offset(topic, partition, Offset::Offset(msg.offset() + 1))
            .expect("tpl");
        consumer.commit(&commit, CommitMode::Sync).expect("commit");
        done += 1;
        std::thread::sleep(pause);
    }
}

/// A live member of `group` subscribed to `topic` that polls (so it stays assigned)
/// but never commits: its committed offset does not move while records wait.
pub struct IdleMember {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IdleMember {
    /// Joins `group` with `protocol` ("classic" or "consumer") and returns once the
    /// member has been assigned a partition of `topic` and committed `commit`
    /// (partition, next offset) as a member.
    pub fn join(group: &str, topic: &str, protocol: &str, commit: &[(i32, i64)]) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let consumer: BaseConsumer = orderflow_testkit::kafka_config()
            .set("group.id", group)
            .set("group.protocol", protocol)
            .set("client.id", "lag-test-member")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "latest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while consumer.assignment().expect("assignment").count() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "member of {group} got no assignment of {topic} within 30 s"
            );
            let _ = consumer.poll(Duration::from_millis(100));
        }
        if !commit.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (partition, offset) in commit {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                    .expect("tpl");
            }
            consumer
                .commit(&tpl, CommitMode::Sync)
                .unwrap_or_else(|e| panic!("member commit {commit:?} for {group}: {e}"));
        }
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
            }
            consumer.unsubscribe();
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for IdleMember {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
