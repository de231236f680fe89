//! Records the broker refuses are counted as failed and fail the run. The refusal comes
//! from librdkafka's mock cluster (no real broker can be told to refuse a Produce); the
//! schema registry is the real one.

use std::time::Duration;

use order_producer::metrics::ProducerMetrics;
use order_producer::{GenerateArgs, generate};
use orderflow_testkit as testkit;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_records_are_counted_as_failed_and_fail_the_run() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topic = testkit::unique_name("orders-refused");
    cluster.create_topic(&topic, 3, 1).expect("mock topic");
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 100],
    );
    let mut args = GenerateArgs::new(
        &cluster.bootstrap_servers(),
        &testkit::registry_url(),
        &topic,
        20,
    );
    args.seed = Some(1);
    args.producer.delivery_timeout = Duration::from_secs(5);
    args.flush_timeout = Duration::from_secs(15);
    let metrics = ProducerMetrics::register(&prometheus::Registry::new()).unwrap();

    let summary = generate(&args, &metrics, None, CancellationToken::new())
        .await
        .expect("the run itself completes");

    assert_eq!(summary.sent, 20);
    assert_eq!(summary.acked, 0, "{summary:?}");
    assert_eq!(summary.failed, 20, "{summary:?}");
    let error = summary.check_delivered().unwrap_err().to_string();
    assert!(
        error.contains("20 of 20") && error.contains("uthorization"),
        "{error}"
    );
}
