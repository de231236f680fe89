//! Guarded topic changes through `orderflow topics apply`, against the real broker: a
//! partition increase on a keyed topic is refused unless `--allow-key-moves`, and the
//! plan names the keys that move; a DLQ's partition count follows its source's; configs
//! are set with IncrementalAlterConfigs, only the keys the file names.

mod topics_support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use orderflow_testkit as testkit;
use rdkafka::producer::{FutureProducer, FutureRecord};
use topics_support::{configs, partition_count, set_config_outside_the_file, topic_level_configs};

fn write_file(dir: &Path, topics: &[(&str, i32, &str)]) -> PathBuf {
    let mut text = String::from("defaults:\n  replication_factor: 1\ntopics:\n");
    for (name, partitions, configs) in topics {
        text.push_str(&format!("  {name}:\n    partitions: {partitions}\n"));
        if !configs.is_empty() {
            text.push_str(&format!("    configs:\n      {configs}\n"));
        }
    }
    text.push_str("environments:\n  local: {}\n");
    let path = dir.join("topics.yaml");
    std::fs::write(&path, text).expect("write topics file");
    path
}

fn apply(file: &Path, extra: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["topics", "apply", "--file"])
        .arg(file)
        .args(extra)
        .args(["--brokers", &testkit::kafka_brokers()])
        .env_remove("ORDERFLOW_ENV")
        .env_remove("ORDERFLOW_ALLOW_KEY_MOVES")
        .env_remove("KAFKA_OPTIONS")
        .env_remove("KAFKA_CONFIG")
        .output()
        .expect("run orderflow topics apply")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_keyed_topic_gains_partitions_only_when_the_operator_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let orders = testkit::unique_name("orders");
    testkit::create_topic(&orders, 2).await;
    // Keyed records, placed the way the Java client and our producers place them.
    let producer: FutureProducer = testkit::kafka_config()
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    for n in 0..60 {
        producer
            .send(
                FutureRecord::to(&orders)
                    .key(&format!("order-{n}"))
                    .payload("v"),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(err, _)| err)
            .expect("record acked");
    }

    let file = write_file(dir.path(), &[(&orders, 4, "")]);
    let refused = apply(&file, &[]);
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "refused: {stderr}");
    assert!(stderr.contains("records are keyed"), "{stderr}");
    assert!(
        stderr.contains("of 60 sampled keys change partition"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-key-moves"), "{stderr}");
    assert_eq!(partition_count(&orders), 2, "nothing changed");

    let allowed = apply(&file, &["--allow-key-moves"]);
    let stdout = text(&allowed.stdout);
    assert!(allowed.status.success(), "{}", text(&allowed.stderr));
    assert!(stdout.contains("sampled keys change partition"), "{stdout}");
    assert_eq!(partition_count(&orders), 4);
}

#[tokio::test]
async fn a_dlq_gains_partitions_with_its_source() {
    let dir = tempfile::tempdir().expect("temp dir");
    let orders = testkit::unique_name("orders");
    let dlq = format!("{orders}.dlq");
    testkit::create_topic(&orders, 2).await;
    testkit::create_topic(&dlq, 2).await;
    // The file names only the source; its DLQ follows.
    let file = write_file(dir.path(), &[(&orders, 3, "")]);
    let out = apply(&file, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("{dlq}: partitions 2 -> 3 (in step with {orders})")),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(partition_count(&orders), 3);
    assert_eq!(partition_count(&dlq), 3);
}

#[tokio::test]
async fn configs_are_set_incrementally_and_others_survive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = testkit::unique_name("events");
    testkit::create_topic(&topic, 1).await;
    // Set outside the file, as an operator would.
    set_config_outside_the_file(&topic, "segment.ms=3600000");
    let file = write_file(dir.path(), &[(&topic, 1, "retention.ms: 86400000")]);
    let out = apply(&file, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "configs of {topic} set with IncrementalAlterConfigs"
        )),
        "{stdout}"
    );

    assert_eq!(
        topic_level_configs(&topic).await,
        configs(&[("retention.ms", "86400000"), ("segment.ms", "3600000")])
    );
}
