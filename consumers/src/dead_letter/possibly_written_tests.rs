//! A dead-letter write whose ack did not come in time may have been persisted all
//! the same (the idempotent producer reports it as timed out). Retried, the write
//! must not leave a second copy. The broker must persist the record and answer
//! too late: only librdkafka's mock cluster can be told to do that.

use std::time::Duration;

use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::mocking::MockCluster;
use rdkafka::{ClientConfig, Offset, Timestamp, TopicPartitionList};

use super::*;

fn record(offset: i64) -> OwnedMessage {
    OwnedMessage::new(
        Some(b"not avro".to_vec()),
        Some(b"order-1".to_vec()),
        "orders".into(),
        Timestamp::CreateTime(Utc::now().timestamp_millis()),
        0,
        offset,
        None,
    )
}

fn report() -> FailureReport {
    let now = Utc::now();
    FailureReport {
        category: DlqCategory::Deserialization,
        message: "not in the wire format".into(),
        attempts: 1,
        first_failure_at: now,
        last_failure_at: now,
    }
}

/// Source offsets of the records in `topic`'s partition 0.
fn dlq_source_offsets(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let (_, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(5))
        .expect("watermarks");
    let mut offsets = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let source = message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == headers::SOURCE_OFFSET))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            offsets.push(source);
            if message.offset() + 1 >= high {
                break;
            }
        }
    }
    offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_timed_out_but_was_persisted_is_not_written_again() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders.dlq", 1, 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", &bootstrap);
    let writer = DeadLetterWriter::new(&base, "orders.dlq", "g", Duration::from_millis(1_500))
        .expect("writer");
    // Connected, with a producer id: the next record is sent at once.
    writer
        .write(&record(1), &report())
        .await
        .expect("first record");

    // The broker appends the record but answers after the delivery timeout.
    cluster
        .broker_round_trip_time(-1, Duration::from_secs(4))
        .expect("rtt");
    let timed_out = writer.write(&record(2), &report()).await;
    assert!(timed_out.is_err(), "the ack came too late: {timed_out:?}");
    cluster
        .broker_round_trip_time(-1, Duration::ZERO)
        .expect("rtt");
    tokio::time::sleep(Duration::from_secs(5)).await;
    writer
        .write(&record(2), &report())
        .await
        .expect("the retried write succeeds");

    let offsets = tokio::task::spawn_blocking(move || dlq_source_offsets(&bootstrap, "orders.dlq"))
        .await
        .expect("reader");
    assert_eq!(offsets, ["1", "2"], "record 2 once in the DLQ");
}
