//! Helpers shared by the lag integration tests: produce records to chosen partitions,
//! commit chosen offsets for a group, build an engine with a short window.

#![allow(dead_code)]

pub mod dashboard;

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
    engine_of(&[group], window)
}

/// An engine reading only `groups`, with a `window` for status.
pub fn engine_of(groups: &[&str], window: Duration) -> LagEngine {
    let config = EngineConfig {
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
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
        Self::join_as("lag-test-member", group, topic, protocol, commit)
    }

    /// As [`IdleMember::join`], with `client_id` as the consumer's `client.id`.
    pub fn join_as(
        client_id: &str,
        group: &str,
        topic: &str,
        protocol: &str,
        commit: &[(i32, i64)],
    ) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let consumer: BaseConsumer = orderflow_testkit::kafka_config()
            .set("group.id", group)
            .set("group.protocol", protocol)
            .set("client.id", client_id)
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

/// A single-node broker of this test's own (started by the project's script in a
/// fresh directory), killed on drop: the shared broker must not be stopped.
pub struct PrivateBroker {
    pid: String,
    /// Its bootstrap address.
    pub bootstrap: String,
    dir: std::path::PathBuf,
}

impl PrivateBroker {
    /// Starts it and waits until it serves metadata.
    pub fn start() -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let dir = std::env::temp_dir().join(orderflow_testkit::unique_name("lag-private-kafka"));
        std::fs::create_dir_all(&dir).expect("broker dir");
        // Starts the JVM in the background, waits until it serves metadata, prints
        // its pid and address.
        let script = r#"set -euo pipefail
ROOT="$(pwd)"
source scripts/lib/log.sh; source scripts/lib/install.sh
source scripts/lib/services.sh; source scripts/lib/kafka.sh
log_init
kafka_start_private "$1" >&2
echo "$KAFKA_PRIVATE_PID $KAFKA_PRIVATE_BOOTSTRAP""#;
        let out = std::process::Command::new("bash")
            .args(["-c", script, "kafka-private"])
            .arg(&dir)
            .current_dir(&root)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("bash runs");
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let Some((pid, bootstrap)) = line.split_once(' ').filter(|_| out.status.success()) else {
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "a private broker did not start (scripts/lib/kafka.sh kafka_start_private): {line}"
            );
        };
        Self {
            pid: pid.to_owned(),
            bootstrap: bootstrap.to_owned(),
            dir,
        }
    }

    /// A client configuration for it that gives up quickly once it is gone.
    pub fn client_config(&self) -> rdkafka::ClientConfig {
        let mut kafka = orderflow_testkit::kafka_config();
        kafka
            .set("bootstrap.servers", &self.bootstrap)
            .set("socket.connection.setup.timeout.ms", "1000")
            .set("reconnect.backoff.max.ms", "500");
        kafka
    }

    /// SIGKILLs the broker (a crash) and waits until it is gone.
    pub fn kill(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &self.pid])
            .stderr(std::process::Stdio::null())
            .status();
        // Bounded: a zombie nobody reaps would answer forever.
        for _ in 0..100 {
            let alive = std::process::Command::new("kill")
                .args(["-0", &self.pid])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
