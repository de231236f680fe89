//! Shared set-up of the consumer integration tests: a topic and its DLQ, a fresh
//! database, an event factory, an in-process engine, and readers for the results.
#![allow(dead_code)]

mod shipped;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use order_consumer::GroupProtocol;
use order_consumer::MIGRATOR;
use order_consumer::Ordering;
use order_consumer::engine::{EngineDeps, EngineSettings};
use order_consumer::store::dedup_retention::DedupRetention;
use order_consumer::worker::decode::EventDecoder;
use order_consumer::{Summary, run};
use orderflow_runtime::backoff::Backoff;
use orderflow_runtime::kafka::KafkaArgs;
use orderflow_runtime::ops_server::Readiness;
use orderflow_schemas::{
    LineItem, OrderCancelled, OrderCreated, OrderEvent, OrderEventDeserializer,
    OrderEventSerializer, OrderPaid, OrderPayload, OrderShipped, RegistryClient,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sqlx::{PgPool, Row};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One test's world: topic + DLQ, a fresh database, a serializer.
pub struct TestEnv {
    /// Bootstrap address of the broker or cluster the topics live on.
    pub brokers: String,
    pub topic: String,
    pub dlq_topic: String,
    pub group: String,
    pub partitions: i32,
    pub db_url: String,
    pub pool: PgPool,
    pub registry: RegistryClient,
    pub serializer: OrderEventSerializer,
    pub producer: FutureProducer,
}

impl TestEnv {
    /// Topics (replication 1) on the single test broker.
    pub async fn new(prefix: &str, partitions: i32) -> Self {
        Self::on(orderflow_testkit::kafka_brokers(), 1, prefix, partitions).await
    }

    /// Topics (replication 3) on the 3-broker test cluster.
    pub async fn on_cluster(prefix: &str, partitions: i32) -> Self {
        Self::on(
            orderflow_testkit::kafka_cluster_brokers(),
            3,
            prefix,
            partitions,
        )
        .await
    }

    async fn on(brokers: String, replication: i32, prefix: &str, partitions: i32) -> Self {
        let topic = orderflow_testkit::unique_name(prefix);
        let dlq_topic = format!("{topic}.dlq");
        for name in [&topic, &dlq_topic] {
            orderflow_testkit::create_replicated_topic(&brokers, name, partitions, replication)
                .await;
        }
        let (db_url, pool) = orderflow_testkit::fresh_database().await;
        MIGRATOR.run(&pool).await.expect("migrations run");
        let registry =
            RegistryClient::new(orderflow_testkit::registry_url()).expect("registry url");
        let serializer = OrderEventSerializer::new(&registry, &topic)
            .await
            .expect("register the order schema");
        let producer: FutureProducer = client_config(&brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()
            .expect("producer");
        Self {
            brokers,
            group: orderflow_testkit::unique_name("group"),
            topic,
            dlq_topic,
            partitions,
            db_url,
            pool,
            registry,
            serializer,
            producer,
        }
    }

    /// Engine settings tuned for fast tests.
    pub fn settings(&self) -> EngineSettings {
        EngineSettings {
            kafka: KafkaArgs::for_brokers(&self.brokers),
            topic: self.topic.clone(),
            group: self.group.clone(),
            dlq_topic: self.dlq_topic.clone(),
            ..settings_template()
        }
    }
}

/// Settings tuned for fast tests; broker, topic and group are placeholders.
pub fn settings_template() -> EngineSettings {
    {
        EngineSettings {
            kafka: KafkaArgs::for_brokers("127.0.0.1:1"),
            topic: String::new(),
            group: String::new(),
            dlq_topic: String::new(),
            ordering: Ordering::Key,
            max_in_flight: 200,
            max_buffered: 2_000,
            batch_size: 100,
            db_concurrency: 4,
            max_attempts: 3,
            retry_backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(1_000),
                multiplier: 2.0,
            },
            breaker_threshold: 3,
            drain_timeout: Duration::from_secs(5),
            group_protocol: GroupProtocol::Classic,
            session_timeout: Duration::from_secs(10),
            commit_interval: Duration::from_millis(200),
            dedup_retention: DedupRetention::Topic,
            dedup_cleanup_interval: Duration::from_secs(600),
            dlq_timeout: Duration::from_secs(10),
            exit_when_idle: Some(Duration::from_secs(2)),
            effect_delay: Duration::ZERO,
        }
    }
}

impl TestEnv {
    /// Runs the engine in this process until it exits (idle) or `token` is cancelled.
    pub fn spawn_engine(
        &self,
        settings: EngineSettings,
        token: CancellationToken,
    ) -> JoinHandle<order_consumer::Result<Summary>> {
        self.spawn_engine_observed(settings, token, prometheus::Registry::new())
    }

    /// Starts the engine with `settings` and returns the start-up refusal it must end
    /// with within 60 s, checked to be one line.
    pub async fn startup_refusal(&self, settings: EngineSettings) -> String {
        let outcome = tokio::time::timeout(
            Duration::from_secs(60),
            self.spawn_engine(settings, CancellationToken::new()),
        )
        .await
        .expect("engine returns within 60 s")
        .expect("engine task");
        match outcome {
            Err(order_consumer::Error::Startup(message)) => {
                assert!(!message.contains('\n'), "one line: {message}");
                message
            }
            other => panic!("expected a start-up refusal, got {other:?}"),
        }
    }

    /// [`TestEnv::spawn_engine`] with the engine's metrics registered in `metrics`,
    /// for a test to watch while it runs.
    pub fn spawn_engine_observed(
        &self,
        settings: EngineSettings,
        token: CancellationToken,
        metrics: prometheus::Registry,
    ) -> JoinHandle<order_consumer::Result<Summary>> {
        let decoder = EventDecoder::new(OrderEventDeserializer::new(self.registry.clone()));
        self.spawn_engine_decoding(settings, decoder, token, metrics)
    }

    /// [`TestEnv::spawn_engine_observed`] with its own record decoder.
    pub fn spawn_engine_decoding(
        &self,
        settings: EngineSettings,
        decoder: EventDecoder,
        token: CancellationToken,
        metrics: prometheus::Registry,
    ) -> JoinHandle<order_consumer::Result<Summary>> {
        let deps = EngineDeps {
            pool: self.pool.clone(),
            decoder,
            registry: metrics,
            readiness: Readiness::default(),
        };
        tokio::spawn(run(settings, deps, token))
    }

    /// Runs the engine until idle and returns its summary (bounded by 90 s).
    pub async fn run_until_idle(&self, settings: EngineSettings) -> Summary {
        let handle = self.spawn_engine(settings, CancellationToken::new());
        tokio::time::timeout(Duration::from_secs(90), handle)
            .await
            .expect("engine exits when idle within 90 s")
            .expect("engine task")
            .expect("engine run")
    }

    /// Sends an encoded event keyed by its order id.
    pub async fn send_event(&self, event: &OrderEvent) {
        let value = self.serializer.serialize(event);
        self.send_raw(event.order_id.as_bytes(), &value, event.event_type())
            .await;
    }

    /// Sends raw bytes with a traceparent and event-type header.
    pub async fn send_raw(&self, key: &[u8], value: &[u8], event_type: &str) -> (i32, i64) {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "traceparent",
                value: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            })
            .insert(Header {
                key: "event-type",
                value: Some(event_type),
            });
        self.producer
            .send(
                FutureRecord::to(&self.topic)
                    .key(key)
                    .payload(value)
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map(|delivery| (delivery.partition, delivery.offset))
            .unwrap_or_else(|(error, _)| panic!("produce to {}: {error}", self.topic))
    }

    /// Sends many events concurrently (order across keys is not kept; each key's
    /// events are sent in order because each key is sent sequentially).
    pub async fn send_lifecycles(&self, lifecycles: &[Vec<OrderEvent>]) {
        let sends = lifecycles.iter().map(|events| async move {
            for event in events {
                self.send_event(event).await;
            }
        });
        futures::future::join_all(sends).await;
    }

    /// `(status, events_applied)` of every order.
    pub async fn orders(&self) -> BTreeMap<String, (String, i32)> {
        sqlx::query("SELECT order_id, status, events_applied FROM orders")
            .fetch_all(&self.pool)
            .await
            .expect("read orders")
            .into_iter()
            .map(|row| {
                (
                    row.get::<String, _>("order_id"),
                    (
                        row.get::<String, _>("status"),
                        row.get::<i32, _>("events_applied"),
                    ),
                )
            })
            .collect()
    }

    /// Rows in processed_events for the group.
    pub async fn processed_count(&self) -> i64 {
        sqlx::query("SELECT count(*) AS n FROM processed_events WHERE consumer_group = $1")
            .bind(&self.group)
            .fetch_one(&self.pool)
            .await
            .expect("count processed")
            .get("n")
    }

    /// Every record in the DLQ topic (reads until `expected` arrived or `wait` passed).
    pub fn dlq_records(&self, expected: usize, wait: Duration) -> Vec<OwnedMessage> {
        read_all(
            &self.brokers,
            &self.dlq_topic,
            self.partitions,
            expected,
            wait,
        )
    }

    /// Committed offsets of the group on the source topic.
    pub fn committed_offsets(&self) -> BTreeMap<i32, i64> {
        committed_offsets(&self.brokers, &self.group, &self.topic, self.partitions)
    }

    /// High watermarks of the partitions that hold records.
    pub fn non_empty_end_offsets(&self) -> BTreeMap<i32, i64> {
        self.end_offsets()
            .into_iter()
            .filter(|(_, end)| *end > 0)
            .collect()
    }

    /// High watermarks of the source topic.
    pub fn end_offsets(&self) -> BTreeMap<i32, i64> {
        self.end_offsets_of(&self.topic)
    }

    /// Records in the DLQ topic, by its high watermarks (final once the workers
    /// that could write to it have stopped).
    pub fn dlq_record_count(&self) -> i64 {
        self.end_offsets_of(&self.dlq_topic).values().sum()
    }

    fn end_offsets_of(&self, topic: &str) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = client_config(&self.brokers).create().expect("client");
        (0..self.partitions)
            .map(|p| {
                let (_, high) = consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .expect("watermarks");
                (p, high)
            })
            .collect()
    }
}

/// Reads every partition of `topic` from the beginning without a group.
pub fn read_all(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    wait: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = client_config(brokers)
        .set("group.id", orderflow_testkit::unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + wait;
    let mut records = Vec::new();
    while Instant::now() < deadline && records.len() < expected {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            records.push(message.expect("read").detach());
        }
    }
    // A short extra read catches records beyond the expected count.
    let extra_deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra_deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            records.push(message.detach());
        }
    }
    records
}

/// Committed offsets of `group` on `topic` (partitions without a commit are absent).
pub fn committed_offsets(
    brokers: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = client_config(brokers)
        .set("group.id", group)
        .create()
        .expect("client");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets")
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// The sum over every label set of counter `name` in `metrics` (0 when absent).
pub fn counter_total(metrics: &prometheus::Registry, name: &str) -> f64 {
    metrics
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric())
        .map(|metric| metric.get_counter().get_value())
        .sum()
}

/// The sum over every label set of gauge `name` in `metrics` (0 when absent).
pub fn gauge_total(metrics: &prometheus::Registry, name: &str) -> f64 {
    metrics
        .gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric())
        .map(|metric| metric.get_gauge().get_value())
        .sum()
}

/// The value of header `name`, as text.
pub fn header(record: &OwnedMessage, name: &str) -> Option<String> {
    record.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == name)
            .map(|h| String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())
    })
}

/// An order's lifecycle: created, paid, then shipped (or cancelled when `cancel`).
pub fn lifecycle(order_id: &str, cancel: bool) -> Vec<OrderEvent> {
    let created = OrderEvent::new(
        order_id,
        "consumer-tests",
        OrderPayload::Created(OrderCreated {
            customer_id: format!("cust-{order_id}"),
            items: vec![
                LineItem {
                    sku: "sku-1".into(),
                    quantity: 2,
                    unit_price_cents: 250,
                },
                LineItem {
                    sku: "sku-2".into(),
                    quantity: 1,
                    unit_price_cents: 1_000,
                },
            ],
            currency: "EUR".into(),
            total_cents: 1_500,
        }),
    );
    let paid = OrderEvent::new(
        order_id,
        "consumer-tests",
        OrderPayload::Paid(OrderPaid {
            payment_id: format!("pay-{order_id}"),
            amount_cents: 1_500,
        }),
    );
    let last = if cancel {
        OrderEvent::new(
            order_id,
            "consumer-tests",
            OrderPayload::Cancelled(OrderCancelled {
                reason: "changed mind".into(),
            }),
        )
    } else {
        OrderEvent::new(
            order_id,
            "consumer-tests",
            OrderPayload::Shipped(OrderShipped {
                carrier: "DHL".into(),
                tracking_number: format!("trk-{order_id}"),
            }),
        )
    };
    vec![created, paid, last]
}

/// Client config for ad-hoc clients of the single test broker.
pub fn kafka_config() -> ClientConfig {
    orderflow_testkit::kafka_config()
}

/// Client config for ad-hoc clients of `brokers`.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    config
}

/// A worker process running the real `order-consumer` binary.
pub struct WorkerProcess {
    pub child: std::process::Child,
    pub log_path: std::path::PathBuf,
}

impl TestEnv {
    /// Starts `order-consumer` for this env; `extra` flags are appended.
    pub fn start_worker(&self, name: &str, extra: &[&str]) -> WorkerProcess {
        self.start_worker_at(name, &orderflow_testkit::registry_url(), extra, &[])
    }

    /// [`TestEnv::start_worker`] reading writer schemas from `registry_url`, with
    /// `envs` set in its environment.
    pub fn start_worker_at(
        &self,
        name: &str,
        registry_url: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> WorkerProcess {
        let log_path = std::env::temp_dir().join(format!("{}-{name}.log", self.topic));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_order-consumer"))
            .args([
                "--brokers",
                &self.brokers,
                "--topic",
                &self.topic,
                "--group",
                &self.group,
                "--database-url",
                &self.db_url,
                "--registry-url",
                registry_url,
                "--metrics-addr",
                "",
                "--session-timeout",
                "6s",
                "--drain-timeout",
                "3s",
                "--commit-interval",
                "200ms",
                "--retry-initial",
                "50ms",
                "--retry-max",
                "1s",
            ])
            .args(extra)
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start order-consumer");
        WorkerProcess { child, log_path }
    }
}

impl WorkerProcess {
    /// Sends SIGTERM (graceful stop).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Waits for exit (bounded) and returns the exit status and stdout.
    pub fn wait(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut out = String::new();
                if let Some(mut stdout) = self.child.stdout.take() {
                    use std::io::Read;
                    stdout.read_to_string(&mut out).expect("stdout");
                }
                return (status, out);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
                panic!("worker did not exit within {limit:?}; log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The worker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// Waits until `check` holds, polling, for at most `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
