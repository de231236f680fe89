//! `orderflow lag --json` agrees with Kafka's own `kafka-consumer-groups --describe`
//! (ConsumerGroupCommand, run through scripts/kafka-tool.sh) on the same group,
//! partition by partition: committed offset, log-end offset, lag, and the member that
//! owns the partition (consumer id, host, client id).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// One row of `--describe`, or of ours in the same shape.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    committed: String,
    log_end: String,
    lag: String,
    consumer_id: String,
    host: String,
    client_id: String,
}

async fn produce(topic: &str, partition: i32, count: usize) {
    let producer: FutureProducer = orderflow_testkit::kafka_config()
        .create()
        .expect("producer");
    for i in 0..count {
        producer
            .send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .key(&format!("k{i}"))
                    .payload("v"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("acked");
    }
}

/// A member that joins `group`, commits `offsets` and then only polls.
fn member(group: &str, topic: &str, offsets: &[(i32, i64)]) -> BaseConsumer {
    let consumer: BaseConsumer = orderflow_testkit::kafka_config()
        .set("group.id", group)
        .set("client.id", "lag-vs-kafka-member")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumer.assignment().expect("assignment").count() < 3 {
        assert!(Instant::now() < deadline, "member not assigned within 30 s");
        let _ = consumer.poll(Duration::from_millis(100));
    }
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .expect("tpl");
    }
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    consumer
}

fn kafka_says(group: &str) -> BTreeMap<(String, i32), Row> {
    let out = orderflow_testkit::run_kafka_tool(
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &[
            "--bootstrap-server",
            &orderflow_testkit::kafka_brokers(),
            "--describe",
            "--group",
            group,
        ],
        b"",
    );
    let mut rows = BTreeMap::new();
    for line in out.lines().filter(|l| l.starts_with(group)) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 9, "unexpected --describe row: {line}");
        rows.insert(
            (cells[1].to_owned(), cells[2].parse().expect("partition")),
            Row {
                committed: cells[3].to_owned(),
                log_end: cells[4].to_owned(),
                lag: cells[5].to_owned(),
                consumer_id: cells[6].to_owned(),
                host: cells[7].to_owned(),
                client_id: cells[8].to_owned(),
            },
        );
    }
    assert!(!rows.is_empty(), "no row for {group} in:\n{out}");
    rows
}

fn orderflow(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(args)
        .env("KAFKA_BROKERS", orderflow_testkit::kafka_brokers())
        .env("KAFKA_CONNECT_TIMEOUT", "10s")
        .output()
        .expect("run orderflow");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn orderflow_says(group: &str) -> BTreeMap<(String, i32), Row> {
    let out = orderflow(&["lag", "--group", group, "--json"]);
    let snapshot: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    let g = &snapshot["groups"][0];
    assert_eq!(g["group"], group, "{snapshot}");
    let members = g["membership"]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut rows = BTreeMap::new();
    for t in g["topics"].as_array().expect("topics") {
        for p in t["partitions"].as_array().expect("partitions") {
            let owner = members.iter().find(|m| m["member_id"] == p["consumer_id"]);
            let of_owner = |field: &str| owner.map_or_else(|| "-".to_owned(), |m| text(&m[field]));
            rows.insert(
                (
                    text(&t["topic"]),
                    i32::try_from(p["partition"].as_i64().expect("partition")).unwrap(),
                ),
                Row {
                    committed: text(&p["committed"]),
                    log_end: text(&p["end_offset"]),
                    lag: text(&p["lag"]),
                    consumer_id: text(&p["consumer_id"]),
                    host: of_owner("client_host"),
                    client_id: of_owner("client_id"),
                },
            );
        }
    }
    rows
}

#[tokio::test]
async fn lag_json_matches_kafka_consumer_groups_describe() {
    let topic = orderflow_testkit::unique_name("lag-vs-kafka");
    let group = orderflow_testkit::unique_name("lag-vs-kafka-g");
    orderflow_testkit::create_topic(&topic, 3).await;
    produce(&topic, 0, 7).await;
    produce(&topic, 1, 4).await;
    produce(&topic, 2, 5).await;
    let (g, t) = (group.clone(), topic.clone());
    let consumer = tokio::task::spawn_blocking(move || member(&g, &t, &[(0, 2), (1, 4), (2, 1)]))
        .await
        .expect("member joined");

    let kafka = kafka_says(&group);
    let ours = orderflow_says(&group);
    assert_eq!(
        ours, kafka,
        "orderflow lag (left) vs kafka-consumer-groups (right)"
    );
    // The scenario covers lag, no lag, and an owner on every partition.
    let lags: Vec<&str> = kafka.values().map(|r| r.lag.as_str()).collect();
    assert_eq!(lags, ["5", "0", "4"]);
    assert!(kafka.values().all(|r| r.client_id == "lag-vs-kafka-member"));

    // The table names the member with its client id, host and partitions.
    let table = String::from_utf8(orderflow(&["lag", "--group", &group])).expect("UTF-8");
    let owner = kafka.values().next().expect("a row");
    let line = format!(
        "  member {} client-id=lag-vs-kafka-member host={} partitions={topic}[0,1,2]",
        owner.consumer_id, owner.host
    );
    assert!(table.lines().any(|l| l == line), "no {line:?} in:\n{table}");
    drop(consumer);
}
