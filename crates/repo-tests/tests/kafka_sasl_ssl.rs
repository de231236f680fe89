//! Every binary connects to a Kafka broker that takes only SASL_SSL (SCRAM-SHA-512 over
//! TLS with a private CA), given a client properties file: `orderflow topics apply`,
//! `order-producer generate`, `order-consumer` with its dead-letter writer, `orderflow
//! lag` and `orderflow dlq list`. The lag engine's own connections (batched offsets,
//! ConsumerGroupDescribe) speak SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN:
//! the members of a KIP-848 group are shown. A wrong password and an untrusted
//! certificate each fail at start-up with one line that names the settings to check
//! and no secret.
//!
//! The broker is our own (scripts/kafka-sasl-ssl.sh), started once for all cases. The
//! binaries come from the workspace's target directory, built first if stale.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use orderflow_testkit as testkit;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The broker started by scripts/kafka-sasl-ssl.sh; stopped on drop.
struct SecureBroker {
    dir: tempfile::TempDir,
    bootstrap: String,
    password: String,
}

impl SecureBroker {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(script())
            .args(["--dir", dir.path().to_str().expect("utf-8"), "start"])
            .output()
            .expect("run scripts/kafka-sasl-ssl.sh");
        assert!(
            out.status.success(),
            "the SASL_SSL broker did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |name: &str| {
            std::fs::read_to_string(dir.path().join(name))
                .expect(name)
                .trim()
                .to_string()
        };
        let (bootstrap, password) = (read("bootstrap"), read("password"));
        Self {
            dir,
            bootstrap,
            password,
        }
    }

    /// Writes a client properties file with this password and CA file.
    fn properties(&self, name: &str, password: &str, ca: &str) -> PathBuf {
        self.properties_with(name, "SCRAM-SHA-512", password, ca)
    }

    /// Writes a client properties file for `mechanism`.
    fn properties_with(&self, name: &str, mechanism: &str, password: &str, ca: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let text = format!(
            "# as a Kafka user writes it\n\
             bootstrap.servers={}\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism={mechanism}\n\
             sasl.username=orderflow\n\
             sasl.password={password}\n\
             ssl.ca.location={}\n",
            self.bootstrap,
            self.dir.path().join(ca).display()
        );
        std::fs::write(&path, text).expect("write properties");
        path
    }
}

impl Drop for SecureBroker {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["--dir", self.dir.path().to_str().expect("utf-8"), "stop"])
            .status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka-sasl-ssl.sh")
}

/// A workspace binary, built first ([`testkit::workspace_binary`]).
fn binary(name: &str) -> Command {
    let path = testkit::workspace_binary(name);
    let mut command = Command::new(path);
    command
        .env_remove("KAFKA_BROKERS")
        .env_remove("KAFKA_OPTIONS")
        .env_remove("METRICS_ADDR")
        .env("KAFKA_CONNECT_TIMEOUT", "60s")
        .env("NO_COLOR", "1");
    command
}

fn run(command: &mut Command, config: &Path) -> Output {
    command
        .env("KAFKA_CONFIG", config)
        .output()
        .expect("run binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A client of the secure broker for the test's own records, from the same settings.
fn client_config(broker: &SecureBroker) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.bootstrap)
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanism", "SCRAM-SHA-512")
        .set("sasl.username", "orderflow")
        .set("sasl.password", &broker.password)
        .set(
            "ssl.ca.location",
            broker.dir.path().join("ca.pem").to_str().expect("utf-8"),
        );
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_connects_over_sasl_ssl_and_refusals_fail_with_one_line() {
    let broker = SecureBroker::start();
    let good = broker.properties("client.properties", &broker.password, "ca.pem");
    let topic = testkit::unique_name("secure-orders");
    let dlq = format!("{topic}.dlq");
    let group = testkit::unique_name("secure-g");

    // topics apply: creates the topic and its dead-letter topic.
    let topics_file = broker.dir.path().join("topics.yaml");
    std::fs::write(
        &topics_file,
        format!(
            "defaults:\n  replication_factor: 1\ntopics:\n  {topic}:\n    partitions: 2\n  \
             {dlq}:\n    partitions: 2\nenvironments:\n  local: {{}}\n"
        ),
    )
    .expect("write topics file");
    let apply = run(
        binary("orderflow")
            .args(["topics", "apply", "--file"])
            .arg(&topics_file)
            .env_remove("ORDERFLOW_ENV")
            .env_remove("ORDERFLOW_TOPICS_FILE"),
        &good,
    );
    assert!(apply.status.success(), "apply: {}", text(&apply.stderr));
    assert!(
        text(&apply.stdout).contains("2 change(s) applied"),
        "{}",
        text(&apply.stdout)
    );

    // The producer: 30 orders, all acknowledged; its start-up line hides the password.
    let generate = run(
        binary("order-producer")
            .args(["generate", "--count", "30", "--rate", "0", "--orders", "6"])
            .args(["--topic", &topic, "--metrics-addr", ""])
            .args(["--registry-url", &testkit::registry_url()]),
        &good,
    );
    let stderr = text(&generate.stderr);
    assert!(generate.status.success(), "generate: {stderr}");
    let summary: serde_json::Value =
        serde_json::from_slice(&generate.stdout).expect("one JSON summary");
    assert_eq!(summary["acked"], 30);
    assert!(stderr.contains("sasl.password=***"), "{stderr}");
    assert!(!stderr.contains(&broker.password), "{stderr}");

    // One record the consumer cannot decode, for the dead-letter writer.
    let producer: FutureProducer = client_config(&broker).create().expect("producer");
    producer
        .send(
            FutureRecord::to(&topic)
                .partition(0)
                .key("poison")
                .payload("not avro"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(err, _)| err)
        .expect("poison record acked");

    // The consumer reads everything, dead-letters the poison record, commits, and exits
    // once idle.
    let (database_url, _pool) = testkit::fresh_database().await;
    let consume = run(
        binary("order-consumer")
            .args(["--topic", &topic, "--group", &group, "--dlq-topic", &dlq])
            .args(["--database-url", &database_url, "--metrics-addr", ""])
            .args(["--registry-url", &testkit::registry_url()])
            .args(["--commit-interval", "200ms", "--exit-when-idle", "2"])
            .args(["--session-timeout", "6s", "--drain-timeout", "3s"]),
        &good,
    );
    let stderr = text(&consume.stderr);
    assert!(consume.status.success(), "consumer: {stderr}");
    assert!(!stderr.contains(&broker.password), "{stderr}");

    // The lag engine sees the group caught up.
    let lag = run(
        binary("orderflow").args(["lag", "--group", &group, "--json"]),
        &good,
    );
    assert!(lag.status.success(), "lag: {}", text(&lag.stderr));
    let snapshot: serde_json::Value = serde_json::from_slice(&lag.stdout).expect("lag JSON");
    assert_eq!(snapshot["groups"][0]["lag"], 0, "{snapshot}");

    // A live consumer of the KIP-848 protocol: its member is described over the engine's
    // own SASL_SSL connections (ConsumerGroupDescribe), with every mechanism.
    let kip848_group = testkit::unique_name("secure-kip848");
    let member: rdkafka::consumer::BaseConsumer = client_config(&broker)
        .set("group.id", &kip848_group)
        .set("group.protocol", "consumer")
        .set("client.id", "kip848-member")
        .create()
        .expect("KIP-848 consumer");
    rdkafka::consumer::Consumer::subscribe(&member, &[topic.as_str()]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while rdkafka::consumer::Consumer::assignment(&member)
        .expect("assignment")
        .count()
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "no assignment");
        let _ = member.poll(Duration::from_millis(100));
    }
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] {
        let config = broker.properties_with(
            &format!("{mechanism}.properties"),
            mechanism,
            &broker.password,
            "ca.pem",
        );
        let lag = run(
            binary("orderflow").args(["lag", "--group", &kip848_group, "--json"]),
            &config,
        );
        let _ = member.poll(Duration::from_millis(10));
        assert!(
            lag.status.success(),
            "lag ({mechanism}): {}",
            text(&lag.stderr)
        );
        let snapshot: serde_json::Value = serde_json::from_slice(&lag.stdout).expect("lag JSON");
        let members = &snapshot["groups"][0]["membership"]["members"];
        assert_eq!(
            members.as_array().map(Vec::len),
            Some(1),
            "{mechanism}: one KIP-848 member shown: {snapshot}"
        );
        assert_eq!(members[0]["client_id"], "kip848-member", "{snapshot}");
    }
    drop(member);

    // dlq list reads the dead-lettered record.
    let list = run(
        binary("orderflow").args(["dlq", "list", "--topic", &dlq, "--json"]),
        &good,
    );
    assert!(list.status.success(), "dlq list: {}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert_eq!(
        listed
            .lines()
            .filter(|line| line.contains("\"source_topic\""))
            .count(),
        1,
        "{listed}"
    );

    // Refusals stop at once with one line on stderr naming what to check.
    let wrong_password = broker.properties("wrong.properties", "not-the-password", "ca.pem");
    let other_ca = broker.properties("other-ca.properties", &broker.password, "other-ca.pem");
    for (config, expected) in [
        (
            &wrong_password,
            "refused the credentials (check sasl.mechanism, sasl.username, sasl.password)",
        ),
        (
            &other_ca,
            "failed the TLS handshake (check ssl.ca.location and the broker's certificate)",
        ),
    ] {
        let out = run(
            binary("orderflow")
                .args(["lag", "--group", &group])
                .env("LOG_LEVEL", "warn"),
            config,
        );
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(lines[0].starts_with("orderflow: "), "{stderr}");
        assert!(lines[0].contains(expected), "{stderr}");
        assert!(!stderr.contains("not-the-password"), "{stderr}");
        assert!(!stderr.contains(&broker.password), "{stderr}");
    }
}
