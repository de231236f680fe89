//! The real `orderflow topics` binary: exit codes and messages scripts rely on
//! (diff 0 = no drift, 1 = drift, 2 = error; apply 0 = done, 2 = error or refused).

use std::path::Path;
use std::process::{Command, Output};

use orderflow_testkit as testkit;

fn orderflow(args: &[&str], brokers: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(args)
        .env("KAFKA_BROKERS", brokers)
        .env("KAFKA_CONNECT_TIMEOUT", "2s")
        .env_remove("ORDERFLOW_ENV")
        .env_remove("ORDERFLOW_TOPICS_FILE")
        .env_remove("ORDERFLOW_REPLICATION_FACTOR")
        .env_remove("KAFKA_OPTIONS")
        .output()
        .expect("run orderflow")
}

fn write_file(path: &Path, topic: &str, partitions: i32) {
    let text = format!(
        "\
defaults:
  replication_factor: 1
topics:
  {topic}:
    partitions: {partitions}
environments:
  local: {{}}
"
    );
    std::fs::write(path, text).expect("write topics file");
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn diff_and_apply_exit_codes_follow_the_drift() {
    let brokers = testkit::kafka_brokers();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("topics.yaml");
    let file = path.to_str().expect("utf-8 path");
    let topic = testkit::unique_name("orders");
    write_file(&path, &topic, 2);

    let diff = orderflow(&["topics", "diff", "--file", file], &brokers);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "missing topic is drift: {}",
        stderr(&diff)
    );
    assert!(stdout(&diff).contains(&format!("+ {topic}: create with 2 partitions")));

    let json = orderflow(&["topics", "diff", "--json", "--file", file], &brokers);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("diff --json");
    assert_eq!(value["drift"], true);
    assert_eq!(value["changes"][0]["kind"], "create_topic");

    let apply = orderflow(&["topics", "apply", "--file", file], &brokers);
    assert_eq!(apply.status.code(), Some(0), "apply: {}", stderr(&apply));
    assert!(
        stdout(&apply).contains("1 change(s) applied"),
        "{}",
        stdout(&apply)
    );

    let again = orderflow(&["topics", "apply", "--file", file], &brokers);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).starts_with("no changes"),
        "{}",
        stdout(&again)
    );

    let clean = orderflow(&["topics", "diff", "--file", file], &brokers);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));

    write_file(&path, &topic, 1);
    let lower = orderflow(&["topics", "apply", "--file", file], &brokers);
    assert_eq!(lower.status.code(), Some(2));
    assert!(
        stderr(&lower).contains("Kafka cannot lower a partition count"),
        "{}",
        stderr(&lower)
    );
    let drift = orderflow(&["topics", "diff", "--file", file], &brokers);
    assert_eq!(drift.status.code(), Some(1));
}

#[test]
fn bad_file_and_unreachable_brokers_exit_2_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("topics.yaml");
    std::fs::write(&path, "topics:\n  orders:\n    partitions: 0\n").unwrap();
    let file = path.to_str().expect("utf-8 path");

    let invalid = orderflow(&["topics", "diff", "--file", file], "127.0.0.1:1");
    assert_eq!(invalid.status.code(), Some(2));
    let message = stderr(&invalid);
    assert!(message.contains(file), "{message}");
    assert!(message.contains("topics.orders.partitions"), "{message}");
    assert!(message.contains("line 3"), "{message}");

    write_file(&path, "orders", 1);
    let unreachable = orderflow(&["topics", "diff", "--file", file], "127.0.0.1:1");
    assert_eq!(unreachable.status.code(), Some(2));
    let message = stderr(&unreachable);
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
}
