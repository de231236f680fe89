//! A redrive an operator can trust, against the real broker: an interrupted run is
//! continued by the next one (N records arrive, not 2N), a run over a handled DLQ
//! replays nothing unless `--again`, the dry run counts per category and target
//! partition, and a record whose `dlq-source-topic` names another topic is refused.

use std::process::Stdio;
use std::time::{Duration, Instant};

use orderflow_contracts::dead_letter::headers;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;

/// Writes `count` dead-lettered records naming `source_header` as their source.
async fn write_dlq(dlq: &str, source_header: &str, keys: &[String], category: &str) {
    let producer: FutureProducer = orderflow_testkit::kafka_config()
        .create()
        .expect("producer");
    for (n, key) in keys.iter().enumerate() {
        let n = n.to_string();
        let headers = [
            (headers::SOURCE_TOPIC, source_header),
            (headers::SOURCE_PARTITION, "0"),
            (headers::SOURCE_OFFSET, n.as_str()),
            (headers::ERROR_CATEGORY, category),
            (headers::ERROR_MESSAGE, "failed"),
        ]
        .into_iter()
        .fold(OwnedHeaders::new(), |acc, (key, value)| {
            acc.insert(Header {
                key,
                value: Some(value),
            })
        });
        producer
            .send(
                FutureRecord::to(dlq)
                    .key(key.as_str())
                    .payload("v")
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(err, _)| panic!("write DLQ record {key}: {err}"));
    }
}

fn redrive_command(dlq: &str, extra: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .args(["dlq", "redrive", "--topic", dlq])
        .args(extra)
        .args(["--brokers", &orderflow_testkit::kafka_brokers()])
        .env_remove("DLQ_ALLOW_TOPICS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs a redrive to its end: exit code, JSON summary, stderr.
async fn redrive(dlq: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let output = tokio::time::timeout(
        Duration::from_secs(90),
        redrive_command(dlq, extra).output(),
    )
    .await
    .expect("redrive finished within 90 s")
    .expect("redrive started");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("JSON summary ({err}); stderr: {stderr}"));
    (output.status.code(), summary, stderr)
}

/// Records in `topic` (all partitions) right now.
fn record_count(topic: &str) -> i64 {
    let consumer: BaseConsumer = orderflow_testkit::kafka_config().create().expect("client");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| {
            let (low, high) = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            high - low
        })
        .sum()
}

/// The keys of every record in `topic` (one partition), sorted.
fn keys_in(topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = orderflow_testkit::kafka_config()
        .set("group.id", orderflow_testkit::unique_name("resume-reader"))
        .create()
        .expect("consumer");
    let expected = record_count(topic);
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .expect("assignment");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut keys = Vec::new();
    while (keys.len() as i64) < expected {
        assert!(
            Instant::now() < deadline,
            "read {} of {expected}",
            keys.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("fetch");
            keys.push(String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned());
        }
    }
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_redrive_is_continued_not_repeated() {
    const N: usize = 30;
    let source = orderflow_testkit::unique_name("orders");
    let dlq = format!("{source}.dlq");
    orderflow_testkit::create_topic(&source, 1).await;
    orderflow_testkit::create_topic(&dlq, 2).await;
    let keys: Vec<String> = (0..N).map(|n| format!("order-{n:03}")).collect();
    write_dlq(&dlq, &source, &keys, "validation").await;

    // The dry run counts per category and target partition and moves nothing.
    let (code, dry, stderr) = redrive(&dlq, &["--dry-run", "--rate", "1000"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(dry["would_redrive"], N, "{dry}");
    assert_eq!(dry["by_category"]["validation"], N, "{dry}");
    assert_eq!(dry["by_target"][format!("{source}[0]")], N, "{dry}");
    assert_eq!(record_count(&source), 0);

    // A slow run, stopped with SIGINT once a few replays have arrived.
    let slow = redrive_command(&dlq, &["--rate", "5"])
        .spawn()
        .expect("start the redrive");
    let deadline = Instant::now() + Duration::from_secs(60);
    while record_count(&source) < 3 {
        assert!(Instant::now() < deadline, "no replay arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = slow.id().expect("running").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill -INT");
    assert!(signalled.success());
    let output = tokio::time::timeout(Duration::from_secs(60), slow.wait_with_output())
        .await
        .expect("stopped within 60 s")
        .expect("exit status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let first: Value = serde_json::from_slice(&output.stdout).expect("JSON summary");
    assert_eq!(first["interrupted"], true, "{first}");
    let first_redriven = first["redriven"].as_u64().expect("redriven");
    assert!(
        (1..N as u64).contains(&first_redriven),
        "interrupted part-way: {first}"
    );

    // The re-run continues: together exactly N replays, each key once.
    let (code, second, stderr) = redrive(&dlq, &["--rate", "1000"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        first_redriven + second["redriven"].as_u64().unwrap(),
        N as u64,
        "first {first}, second {second}"
    );
    assert_eq!(record_count(&source), N as i64, "N records, not 2N");
    assert_eq!(keys_in(&source), keys);

    // Once more: nothing left to do.
    let (code, third, stderr) = redrive(&dlq, &["--rate", "1000"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(third["redriven"], 0, "{third}");
    assert_eq!(record_count(&source), N as i64);

    // --again replays what was handled (here as a dry run).
    let (code, again, stderr) = redrive(&dlq, &["--again", "--dry-run"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(again["would_redrive"], N, "{again}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_source_topic_header_is_refused() {
    let source = orderflow_testkit::unique_name("orders");
    let victim = orderflow_testkit::unique_name("payments");
    let dlq = format!("{source}.dlq");
    orderflow_testkit::create_topic(&source, 1).await;
    orderflow_testkit::create_topic(&victim, 1).await;
    orderflow_testkit::create_topic(&dlq, 1).await;
    write_dlq(
        &dlq,
        &source,
        &["order-1".into(), "order-2".into()],
        "processing",
    )
    .await;
    write_dlq(&dlq, &victim, &["forged".into()], "processing").await;

    let (code, summary, stderr) = redrive(&dlq, &["--rate", "1000"]).await;
    assert_eq!(code, Some(1), "a refusal is not a success: {stderr}");
    assert_eq!(summary["redriven"], 2, "{summary}");
    assert_eq!(summary["refused_topic"], 1, "{summary}");
    assert!(
        stderr.contains("refused") && stderr.contains(&victim),
        "{stderr}"
    );
    assert_eq!(record_count(&victim), 0, "nothing written to {victim}");
    assert_eq!(record_count(&source), 2);

    // An operator may widen the list on purpose.
    let (code, widened, stderr) = redrive(
        &dlq,
        &["--again", "--dry-run", "--allow-topic", victim.as_str()],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(widened["would_redrive"], 3, "{widened}");
    assert_eq!(widened["by_target"][format!("{victim}[0]")], 1, "{widened}");

    // A DLQ whose name implies no source needs an explicit list.
    let odd = orderflow_testkit::unique_name("dead-letters");
    orderflow_testkit::create_topic(&odd, 1).await;
    let output = redrive_command(&odd, &["--dry-run"])
        .output()
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--allow-topic"), "{stderr}");
}
