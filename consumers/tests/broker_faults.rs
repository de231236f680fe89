//! Broker faults the real broker cannot be told to produce, on librdkafka's mock
//! cluster: the dead-letter topic rejects produce requests with a retriable error
//! for a while. The poison record must not be skipped: its offset is committed
//! only after the DLQ write is acked.

use std::time::{Duration, Instant};

use order_consumer::MIGRATOR;
use order_consumer::engine::EngineDeps;
use order_consumer::worker::decode::EventDecoder;
use orderflow_runtime::kafka::KafkaArgs;
use orderflow_runtime::ops_server::Readiness;
use orderflow_schemas::{OrderEventDeserializer, RegistryClient};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

mod support;

fn committed(brokers: &str, group: &str, topic: &str) -> Option<i64> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("client");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let list = client.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    match list.elements()[0].offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

fn dlq_count(brokers: &str, topic: &str) -> usize {
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "dlq-reader")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    reader.assign(&tpl).unwrap();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_millis(1_500);
    while Instant::now() < deadline {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(100)) {
            assert_eq!(message.payload(), Some(&b"not avro"[..]));
            count += 1;
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_dead_letter_writes_are_retried_and_never_skipped() {
    let mock = MockCluster::new(1).expect("mock cluster");
    let brokers = mock.bootstrap_servers();
    let (topic, dlq) = ("orders-mock", "orders-mock.dlq");
    mock.create_topic(topic, 1, 1).unwrap();
    mock.create_topic(dlq, 1, 1).unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(topic).key("k").payload("not avro"),
            Duration::from_secs(5),
        )
        .await
        .expect("produce the poison record");
    // From now on, produce requests fail with a retriable error for a while.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 40],
    );

    let (_db_url, pool) = orderflow_testkit::fresh_database().await;
    MIGRATOR.run(&pool).await.unwrap();
    let env_settings = |group: &str| {
        let mut settings = support_settings();
        settings.kafka = KafkaArgs::for_brokers(brokers.clone());
        settings.topic = topic.into();
        settings.dlq_topic = dlq.into();
        settings.group = group.into();
        settings.exit_when_idle = None;
        settings.dlq_timeout = Duration::from_millis(800);
        // The mock cluster does not answer DescribeConfigs, so the start-up check of
        // the dedup retention against the topic's retention.ms is skipped.
        settings.dedup_retention = order_consumer::store::dedup_retention::KEEP_FOREVER;
        settings
    };
    let group = "mock-group";
    let deps = EngineDeps {
        pool,
        decoder: EventDecoder::new(OrderEventDeserializer::new(
            RegistryClient::new("http://127.0.0.1:1").unwrap(),
        )),
        registry: prometheus::Registry::new(),
        readiness: Readiness::default(),
    };
    let token = CancellationToken::new();
    let engine = tokio::spawn(order_consumer::run(
        env_settings(group),
        deps,
        token.clone(),
    ));

    // While the DLQ rejects writes, the record stays uncommitted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_ne!(
        committed(&brokers, group, topic),
        Some(1),
        "committed before the DLQ write"
    );

    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let commit = committed(&brokers, group, topic);
        if commit == Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the record was never dead-lettered and committed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        dlq_count(&brokers, dlq) >= 1,
        "committed only after the DLQ holds the record"
    );
    token.cancel();
    let summary = engine.await.unwrap().unwrap();
    assert_eq!(summary.dead_lettered, 1, "{summary:?}");
    assert!(
        summary.retried > 0,
        "the failed DLQ writes were retried: {summary:?}"
    );
}

fn support_settings() -> order_consumer::EngineSettings {
    // The broker and registry of the test env are not used here; only the tuning is.
    let mut settings = support::settings_template();
    settings.max_attempts = 3;
    settings
}
