//! Reading a test topic back from its start while the records a test waits for are
//! still arriving (a relay or a producer writes them in the background).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// How long a read waits for the records it expects.
const READ_LIMIT: Duration = Duration::from_secs(60);
/// How long it then watches for a record too many.
const SETTLE: Duration = Duration::from_secs(2);

/// Reads partitions `0..partitions` of `topic` on the test broker from their start
/// until `expected` records arrived, each mapped by `map` (fails after 60 s, saying
/// how many came); then fails if one more arrives within 2 s: a duplicate or a stray
/// record. Blocking: call it from a blocking task in async tests.
pub fn read_expected<T>(
    topic: &str,
    partitions: i32,
    expected: usize,
    map: impl FnMut(&BorrowedMessage<'_>) -> T,
) -> Vec<T> {
    read_expected_from(&crate::kafka_config(), topic, partitions, expected, map)
}

/// [`read_expected`] with the reader's settings from `base` (brokers, isolation level).
/// A read_committed reader waits for the records too: a transaction's commit returns
/// before its markers reach the partitions, so a reader that read "to the end" right
/// after a commit could stop short of the committed records.
pub fn read_expected_from<T>(
    base: &ClientConfig,
    topic: &str,
    partitions: i32,
    expected: usize,
    mut map: impl FnMut(&BorrowedMessage<'_>) -> T,
) -> Vec<T> {
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", crate::unique_name("test-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("test reader");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assign a partition");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::with_capacity(expected);
    let deadline = Instant::now() + READ_LIMIT;
    while records.len() < expected {
        assert!(
            Instant::now() < deadline,
            "only {} of {expected} records on {topic} after {READ_LIMIT:?}",
            records.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            records.push(map(&message.expect("consume")));
        }
    }
    let settle = Instant::now() + SETTLE;
    while Instant::now() < settle {
        if let Some(extra) = consumer.poll(Duration::from_millis(200)) {
            let extra = extra.expect("consume");
            panic!(
                "a record too many on {topic}: partition {} offset {} key {:?}",
                extra.partition(),
                extra.offset(),
                String::from_utf8_lossy(extra.key().unwrap_or_default())
            );
        }
    }
    records
}
