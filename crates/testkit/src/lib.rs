//! Test support for integration tests: where the real broker, PostgreSQL and registry
//! started by `scripts/test.sh` are, random names so runs never share data, and small
//! set-up helpers. A missing service makes the test fail with a message saying how to
//! run the suite; it never skips.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use sqlx::{Connection, Executor, PgConnection, PgPool};

mod cluster;
mod jaeger;
mod kafka_tool;
pub mod registry_cli;
mod single_broker;
mod topic_read;
mod workspace_binary;

pub use cluster::{KilledNode, cluster_script};
pub use jaeger::{Jaeger, free_ports, jaeger_binary};
pub use kafka_tool::run_kafka_tool;
pub use single_broker::SingleBroker;
pub use topic_read::{read_expected, read_expected_from};
pub use workspace_binary::workspace_binary;

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value,
        _ => panic!(
            "{name} is not set: integration tests need the real services; run them with scripts/test.sh \
             (it starts Kafka, PostgreSQL and the registry and exports KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL, \
             and for failover tests a 3-broker cluster as KAFKA_CLUSTER_BROKERS and KAFKA_CLUSTER_DIR)"
        ),
    }
}

/// Bootstrap address of the test broker (`KAFKA_BROKERS`).
pub fn kafka_brokers() -> String {
    required_env("KAFKA_BROKERS")
}

/// Bootstrap address of the 3-broker test cluster (`KAFKA_CLUSTER_BROKERS`), for failover tests.
pub fn kafka_cluster_brokers() -> String {
    required_env("KAFKA_CLUSTER_BROKERS")
}

/// State directory of the 3-broker test cluster (`KAFKA_CLUSTER_DIR`), the `--dir` of
/// `scripts/kafka-cluster.sh`.
pub fn kafka_cluster_dir() -> String {
    required_env("KAFKA_CLUSTER_DIR")
}

/// Base URL of the test schema registry (`SCHEMA_REGISTRY_URL`).
pub fn registry_url() -> String {
    required_env("SCHEMA_REGISTRY_URL")
}

/// Admin URL of the test PostgreSQL server (`DATABASE_URL`), a role that may create databases.
pub fn database_url() -> String {
    required_env("DATABASE_URL")
}

/// The committed corpus of the fuzz target `target` (`fuzz/corpus/<target>/`: its seeds
/// and every input a fuzzer found to crash), as (file name, bytes) in name order.
pub fn fuzz_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// `prefix` plus a random suffix: a topic, group or database name no other run uses.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

/// A client configuration for the test broker.
pub fn kafka_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", kafka_brokers());
    config
}

/// A producer on `config`'s brokers with a transactional id of its own, its
/// transactions initialised: ready for `begin_transaction`.
pub fn transactional_producer(config: &ClientConfig) -> rdkafka::producer::FutureProducer {
    use rdkafka::producer::Producer;

    let producer: rdkafka::producer::FutureProducer = config
        .clone()
        .set("transactional.id", unique_name("test-tx"))
        .create()
        .expect("transactional producer");
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("init transactions");
    producer
}

/// Creates `name` with `partitions` partitions (replication 1) on the test broker and
/// waits until its metadata shows every partition, so producers and consumers see it at once.
pub async fn create_topic(name: &str, partitions: i32) {
    create_replicated_topic(&kafka_brokers(), name, partitions, 1).await;
}

/// Creates `name` on the cluster at `brokers` with `partitions` partitions of
/// `replication` replicas each, and waits until its metadata shows every partition.
pub async fn create_replicated_topic(brokers: &str, name: &str, partitions: i32, replication: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    let results = admin
        .create_topics(
            &[topic],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap_or_else(|err| panic!("create topic {name} on {brokers}: {err}"));
    for result in results {
        if let Err((topic, code)) = result {
            panic!("create topic {topic} on {brokers} (replication {replication}): {code}");
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let metadata = admin
            .inner()
            .fetch_metadata(Some(name), Duration::from_secs(5))
            .expect("metadata");
        let seen = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        if seen == partitions as usize {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "topic {name}: metadata shows {seen} of {partitions} partitions after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The URL of database `name` on the test server.
pub fn database_url_for(name: &str) -> String {
    let admin = database_url();
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base.to_string(), format!("?{query}")),
        None => (admin.clone(), String::new()),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("://").map(|j| j + 2).unwrap_or(0) => &base[..i],
        _ => base.as_str(),
    };
    format!("{prefix}/{name}{query}")
}

/// Creates a new empty database and returns its URL and a pool on it.
pub async fn fresh_database() -> (String, PgPool) {
    let admin_url = database_url();
    let name = unique_name("test").replace('-', "_");
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|err| panic!("PostgreSQL at DATABASE_URL is not reachable ({err}); run the tests with scripts/test.sh"));
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|err| panic!("CREATE DATABASE {name}: {err}"));
    let url = database_url_for(&name);
    let pool = PgPool::connect(&url)
        .await
        .unwrap_or_else(|err| panic!("connect to fresh database {name}: {err}"));
    (url, pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_keep_the_prefix() {
        let a = unique_name("orders");
        let b = unique_name("orders");
        assert_ne!(a, b);
        assert!(a.starts_with("orders-"));
    }
}
