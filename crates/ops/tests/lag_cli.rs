//! `orderflow lag` as a user runs it, against the real broker: the table and the JSON
//! carry the exact lag of a group; inconsistent flags fail at start-up with a reason.

use std::process::Command;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn orderflow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(args)
        .env("KAFKA_BROKERS", orderflow_testkit::kafka_brokers())
        .env("KAFKA_CONNECT_TIMEOUT", "10s")
        .output()
        .expect("run orderflow")
}

/// Sends `count` records to partition 0 of `topic`, each acknowledged.
async fn send_records(producer: &FutureProducer, topic: &str, count: usize) {
    for i in 0..count {
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(0)
                    .key(&format!("k{i}"))
                    .payload("v"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("acked");
    }
}

/// Commits `offset` on partition 0 of `topic` for `group`.
fn commit_at(group: &str, topic: &str, offset: i64) {
    let consumer: BaseConsumer = orderflow_testkit::kafka_config()
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .unwrap();
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
}

#[tokio::test]
async fn lag_table_and_json_show_exact_lag() {
    let topic = orderflow_testkit::unique_name("lag-cli");
    let group = orderflow_testkit::unique_name("lag-cli-g");
    orderflow_testkit::create_topic(&topic, 1).await;
    let producer: FutureProducer = orderflow_testkit::kafka_config()
        .create()
        .expect("producer");
    send_records(&producer, &topic, 9).await;
    commit_at(&group, &topic, 3);

    let out = orderflow(&["lag", "--group", &group, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snapshot: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let g = &snapshot["groups"][0];
    assert_eq!(g["group"], group.as_str());
    assert_eq!(g["lag"], 6);
    assert_eq!(g["topics"][0]["partitions"][0]["committed"], 3);
    assert_eq!(g["topics"][0]["partitions"][0]["end_offset"], 9);

    let out = orderflow(&["lag", "--group", &group]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.starts_with("GROUP"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with(&group))
        .unwrap_or_else(|| panic!("no row for {group}:\n{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        &[group.as_str(), topic.as_str(), "0", "3", "9", "6"],
        "{row}"
    );
}

#[test]
fn window_shorter_than_two_intervals_is_refused() {
    let out = orderflow(&["lag", "serve", "--interval", "5s", "--window", "6s"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("two poll intervals"), "{err}");
}

/// A transactional topic ends each transaction with a commit marker. A group that read
/// every record sits one offset short of the log end, and the lag engine's timestamp
/// reader meets the end of the partition where it looked for a record. That is the
/// expected answer, not a fault: `orderflow lag` must not print an error for it.
#[tokio::test]
async fn lag_of_a_transactional_topic_prints_no_error() {
    use rdkafka::producer::Producer;

    let topic = orderflow_testkit::unique_name("lag-cli-tx");
    let group = orderflow_testkit::unique_name("lag-cli-tx-g");
    orderflow_testkit::create_topic(&topic, 1).await;
    let producer = orderflow_testkit::transactional_producer(&orderflow_testkit::kafka_config());
    producer.begin_transaction().expect("begin");
    send_records(&producer, &topic, 4).await;
    producer
        .commit_transaction(Duration::from_secs(30))
        .expect("commit transaction");
    // Records 0..3, the commit marker at 4: the group has read every record.
    commit_at(&group, &topic, 4);

    let out = orderflow(&["lag", "--group", &group, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let snapshot: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let partition = &snapshot["groups"][0]["topics"][0]["partitions"][0];
    assert_eq!(partition["committed"], 4, "{snapshot}");
    assert_eq!(partition["end_offset"], 5, "{snapshot}");
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("PartitionEOF"),
        "the end of a partition reached behind a commit marker was reported as an error:\n{stderr}"
    );
}
