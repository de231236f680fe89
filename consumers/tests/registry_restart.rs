//! No valid event is lost to a registry restart: the consumer's registry, an Apicurio
//! Registry of this test's own (`scripts/apicurio.sh run` on a fresh PostgreSQL
//! database, never the shared one), is stopped before the consumer has fetched the
//! writer schema and started again on the same port and database. The records wait
//! for it, none is dead-lettered, and every order is applied once it answers.

mod support;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use order_consumer::worker::decode::EventDecoder;
use orderflow_schemas::{OrderEventDeserializer, OrderEventSerializer, RegistryClient};
use support::{TestEnv, gauge_total, lifecycle};
use tokio_util::sync::CancellationToken;

/// Apicurio starts in about 10 s alone, 20 s on two busy cores.
const READY_DEADLINE: Duration = Duration::from_secs(120);

/// One Apicurio process in a process group of its own (the script may not `exec` the
/// JVM), stopped with SIGTERM, killed on drop if a check failed first.
struct OwnRegistry {
    child: Child,
    log: PathBuf,
}

impl OwnRegistry {
    /// Starts Apicurio on `port` over `database_url` and waits until it answers.
    async fn start(port: u16, database_url: &str, log: PathBuf) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/apicurio.sh");
        assert!(script.is_file(), "{} is missing", script.display());
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("registry log");
        let child = Command::new(&script)
            .args(["run", "--port", &port.to_string()])
            .args(["--database-url", database_url])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {}: {err}", script.display()));
        let mut registry = Self { child, log };
        let url = format!("{}/config", base_url(port));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let started = Instant::now();
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status() == 200
            {
                return registry;
            }
            if let Some(status) = registry.child.try_wait().unwrap() {
                panic!("Apicurio exited with {status}:\n{}", registry.log_tail());
            }
            assert!(
                started.elapsed() < READY_DEADLINE,
                "Apicurio not ready after {READY_DEADLINE:?}:\n{}",
                registry.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// SIGTERM, then waits for the process to exit.
    fn stop(mut self) {
        assert!(self.signal("-TERM"), "send SIGTERM to Apicurio");
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "Apicurio still running 30 s after SIGTERM:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal("-KILL");
            let _ = self.child.wait();
        }
    }
}

fn base_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/apis/ccompat/v7")
}

/// A port below the kernel's ephemeral range, so no client connection takes it
/// between this check and the registry's (second) bind.
fn free_port() -> u16 {
    let start = 20_000 + (std::process::id() % 4_000) as u16;
    (start..start + 2_000)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port in 20000..26000 on 127.0.0.1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_event_is_lost_while_the_registry_restarts() {
    let env = TestEnv::new("registry-restart", 2).await;
    let (registry_db, _registry_pool) = orderflow_testkit::fresh_database().await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{}-apicurio.log", env.topic));

    let first = OwnRegistry::start(port, &registry_db, log.clone()).await;
    let client = RegistryClient::new(base_url(port)).expect("registry url");
    let serializer = OrderEventSerializer::new(&client, &env.topic)
        .await
        .expect("register the order schema in the test's registry");
    first.stop();

    let metrics = prometheus::Registry::new();
    // A client of its own: the registering one keeps the schema it registered.
    let consumer_client = RegistryClient::new(base_url(port)).expect("registry url");
    let decoder =
        EventDecoder::new(OrderEventDeserializer::new(consumer_client)).with_metrics(&metrics);
    let settings = order_consumer::EngineSettings {
        exit_when_idle: None,
        ..env.settings()
    };
    let token = CancellationToken::new();
    let engine = env.spawn_engine_decoding(settings, decoder, token.clone(), metrics.clone());
    let orders: Vec<String> = (0..10).map(|i| format!("restart-{i}")).collect();
    for order in &orders {
        for event in lifecycle(order, false) {
            let value = serializer.serialize(&event);
            env.send_raw(order.as_bytes(), &value, event.event_type())
                .await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while gauge_total(&metrics, "orderflow_consumer_registry_waiting_records") == 0.0 {
        assert!(
            Instant::now() < deadline,
            "no record waits on the stopped registry: {} dead-lettered, applied {:?}, metrics {}",
            env.dlq_record_count(),
            env.orders().await,
            prometheus::TextEncoder::new()
                .encode_to_string(&metrics.gather())
                .unwrap_or_default()
                .lines()
                .filter(|line| line.contains("registry")
                    || line.contains("consumed")
                    || line.contains("dead"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Down for a while: longer than a few backoff rounds of the waiting records.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        env.orders().await.is_empty(),
        "nothing applied without the writer schema"
    );

    let second = OwnRegistry::start(port, &registry_db, log.clone()).await;
    env.wait_until_shipped(
        &orders,
        Duration::from_secs(90),
        "every order applied once the registry is back",
    )
    .await;
    assert_eq!(env.dlq_record_count(), 0, "nothing dead-lettered");
    assert_eq!(env.processed_count().await, 30, "each event applied once");
    token.cancel();
    engine.await.expect("engine task").expect("engine run");
    second.stop();
    let _ = std::fs::remove_file(log);
}
