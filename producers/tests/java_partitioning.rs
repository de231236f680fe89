//! Kafka's Java client is the reference for key partitioning: the same order ids written by
//! Kafka's own console producer and by orderflow's producer land on the same partitions,
//! and `partition_for_key` predicts them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use order_producer::partition_for_key;
use order_producer::producer_settings::ProducerSettings;
use orderflow_runtime::kafka::KafkaArgs;
use orderflow_testkit as testkit;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

const PARTITIONS: i32 = 12;
const JAVA: &str = "java";
const ORDERFLOW: &str = "orderflow";

/// Realistic order ids (UUID strings), keys whose hash is negative or whose length leaves
/// each murmur2 tail length, and non-ASCII keys (multi-byte UTF-8 in the tail and body).
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..40).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    keys.extend(
        [
            "21",
            "a",
            "ab",
            "abc",
            "ord-000042",
            "café",
            "Bestellung-größe-ß",
            "заказ-1001",
            "注文-7",
            "📦order-9",
            "é",
        ]
        .map(String::from),
    );
    keys
}

/// Writes each key with the value `java` through Kafka's ConsoleProducer.
fn write_with_console_producer(topic: &str, keys: &[String]) {
    let input: String = keys.iter().map(|key| format!("{key}:{JAVA}\n")).collect();
    testkit::run_kafka_tool(
        "org.apache.kafka.tools.ConsoleProducer",
        &[
            "--bootstrap-server",
            &testkit::kafka_brokers(),
            "--topic",
            topic,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        input.as_bytes(),
    );
}

/// Writes each key with the value `orderflow` through a producer configured the way
/// `order-producer` configures its own (no partition chosen by the caller).
async fn write_with_orderflow_producer(topic: &str, keys: &[String]) {
    let producer: FutureProducer = ProducerSettings::default()
        .client_config(&KafkaArgs::for_brokers(testkit::kafka_brokers()))
        .create()
        .expect("producer");
    for key in keys {
        producer
            .send(
                FutureRecord::to(topic).key(key).payload(ORDERFLOW),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(err, _)| panic!("write {key:?}: {err}"));
    }
}

/// Reads every record of `topic` back, and no record more: (writer, key) -> partition.
fn read_partitions(topic: &str, expected: usize) -> BTreeMap<(String, String), i32> {
    let records = testkit::read_expected(topic, PARTITIONS, expected, |message| {
        let key = String::from_utf8(message.key().expect("keyed").to_vec()).expect("UTF-8 key");
        let writer = String::from_utf8_lossy(message.payload().expect("value")).into_owned();
        ((writer, key), message.partition())
    });
    let mut seen = BTreeMap::new();
    for ((writer, key), partition) in records {
        let earlier = seen.insert((writer.clone(), key.clone()), partition);
        assert!(earlier.is_none(), "{writer} wrote {key:?} twice");
    }
    seen
}

#[tokio::test]
async fn console_producer_and_orderflow_put_each_key_on_the_same_partition() {
    let topic = testkit::unique_name("partitioning");
    testkit::create_topic(&topic, PARTITIONS).await;
    let keys = keys();

    write_with_console_producer(&topic, &keys);
    write_with_orderflow_producer(&topic, &keys).await;
    let seen = read_partitions(&topic, 2 * keys.len());

    let partitions_used: BTreeSet<i32> = seen.values().copied().collect();
    assert!(
        partitions_used.len() > PARTITIONS as usize / 2,
        "{} keys should spread over most of {PARTITIONS} partitions, used {partitions_used:?}",
        keys.len()
    );
    for key in &keys {
        let java = seen.get(&(JAVA.to_owned(), key.clone()));
        let orderflow = seen.get(&(ORDERFLOW.to_owned(), key.clone()));
        let predicted = partition_for_key(key.as_bytes(), PARTITIONS as u32);
        assert_eq!(
            java,
            Some(&predicted),
            "key {key:?}: the console producer chose {java:?}, partition_for_key {predicted}"
        );
        assert_eq!(
            orderflow,
            Some(&predicted),
            "key {key:?}: orderflow's producer chose {orderflow:?}, the console producer {java:?}"
        );
    }
}
