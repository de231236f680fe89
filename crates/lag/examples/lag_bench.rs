//! Benchmark of one lag poll cycle: GROUPS groups, each committed on its own topic of
//! PARTITIONS partitions (2,000 partitions across 50 groups by default), a few records
//! per partition so every partition has lag and a record timestamp to read.
//! Run by scripts/bench-lag.sh; prints one line per cycle, a summary, the process's
//! threads and TCP connections to the broker, then times the committed-offset read
//! alone both ways (batched OffsetFetch, and the per-group client pool the engine
//! keeps for TLS/SASL clusters). Deletes its topics at the end.
//!
//! Environment: KAFKA_BROKERS (required), LAG_BENCH_GROUPS (50), LAG_BENCH_PARTITIONS
//! (40 per group), LAG_BENCH_CYCLES (10), LAG_BENCH_GROUP_CLIENTS and
//! LAG_BENCH_CONCURRENCY (the pool's size and parallelism; the engine's defaults).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderflow_lag::kafka::broker_connection::WireSecurity;
use orderflow_lag::kafka::committed::CommittedReader;
use orderflow_lag::kafka::committed_source::CommittedSource;
use orderflow_lag::kafka::group_offsets::GroupOffsetReader;
use orderflow_lag::{EngineConfig, LagEngine};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Threads of this process.
fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Established TCP connections of this process to `broker` (host:port), by `ss`.
fn connections_to(broker: &str) -> usize {
    let port = broker.rsplit(':').next().unwrap_or_default();
    let out = std::process::Command::new("ss")
        .args(["-tnpH", "state", "established"])
        .output()
        .expect("ss (iproute2) runs");
    let me = format!("pid={},", std::process::id());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&me))
        .filter(|l| {
            l.split_whitespace()
                .nth(3)
                .is_some_and(|peer| peer.rsplit(':').next() == Some(port))
        })
        .count()
}

#[tokio::main]
async fn main() {
    let brokers =
        std::env::var("KAFKA_BROKERS").expect("KAFKA_BROKERS must name the benchmark broker");
    let groups = env_usize("LAG_BENCH_GROUPS", 50);
    let partitions = env_usize("LAG_BENCH_PARTITIONS", 40) as i32;
    let cycles = env_usize("LAG_BENCH_CYCLES", 10);
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &brokers);
    let run = std::process::id();

    let setup = Instant::now();
    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin");
    let topics: Vec<String> = (0..groups)
        .map(|i| format!("bench-lag-{run}-{i}"))
        .collect();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    for result in admin
        .create_topics(
            &new,
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create topics")
    {
        result.expect("topic created");
    }
    let producer: FutureProducer = config
        .clone()
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let mut sends = Vec::new();
    for topic in &topics {
        for p in 0..partitions {
            for r in 0..3 {
                let producer = producer.clone();
                let topic = topic.clone();
                sends.push(async move {
                    producer
                        .send(
                            FutureRecord::to(&topic)
                                .partition(p)
                                .key(&format!("k{r}"))
                                .payload("v"),
                            Duration::from_secs(30),
                        )
                        .await
                        .map_err(|(e, _)| e)
                });
            }
        }
    }
    for sent in futures::future::join_all(sends).await {
        sent.expect("record acked");
    }
    for (i, topic) in topics.iter().enumerate() {
        let consumer: BaseConsumer = config
            .clone()
            .set("group.id", format!("bench-lag-{run}-g{i}"))
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(1))
                .expect("tpl");
        }
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    println!(
        "setup: {groups} groups x {partitions} partitions = {} partitions, 3 records each, in {:.1}s",
        groups as i32 * partitions,
        setup.elapsed().as_secs_f64()
    );

    let defaults = EngineConfig::default();
    let group_clients = env_usize("LAG_BENCH_GROUP_CLIENTS", defaults.group_clients);
    let concurrency = env_usize(
        "LAG_BENCH_CONCURRENCY",
        defaults.concurrency.min(group_clients),
    );
    let engine_config = EngineConfig {
        groups: (0..groups)
            .map(|i| format!("bench-lag-{run}-g{i}"))
            .collect(),
        group_clients,
        concurrency,
        ..defaults
    };
    println!(
        "harness alone (admin client, producer): {} threads, {} TCP connections to the broker",
        threads(),
        connections_to(&brokers)
    );
    let mut engine = LagEngine::new(&config, engine_config).expect("engine");
    let mut warm = Vec::new();
    for cycle in 0..cycles {
        let started = Instant::now();
        let snapshot = engine.poll().await.expect("poll");
        let took = started.elapsed();
        let parts: usize = snapshot
            .groups
            .iter()
            .flat_map(|g| g.topics.iter())
            .map(|t| t.partitions.len())
            .sum();
        let lag: i64 = snapshot.groups.iter().map(|g| g.lag).sum();
        let timed = snapshot
            .groups
            .iter()
            .flat_map(|g| g.topics.iter().flat_map(|t| t.partitions.iter()))
            .filter(|p| p.lag_seconds.is_some())
            .count();
        println!(
            "cycle {cycle}: {:.3}s groups={} partitions={parts} lag={lag} lag_seconds_known={timed} warnings={}",
            took.as_secs_f64(),
            snapshot.groups.len(),
            snapshot.warnings.len()
        );
        if cycle > 0 {
            warm.push(took.as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    warm.sort_by(|a, b| a.total_cmp(b));
    if !warm.is_empty() {
        println!(
            "steady-state cycle: median {:.3}s, max {:.3}s over {} cycles",
            warm[warm.len() / 2],
            warm[warm.len() - 1],
            warm.len()
        );
    }
    println!(
        "engine: {} threads in the process, {} TCP connections to the broker",
        threads(),
        connections_to(&brokers)
    );
    drop(engine);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The committed-offset read alone, both ways, three reads each (the first opens
    // connections or clients).
    let group_names: Vec<String> = (0..groups)
        .map(|i| format!("bench-lag-{run}-g{i}"))
        .collect();
    let every_partition = Arc::new(
        topics
            .iter()
            .flat_map(|t| (0..partitions).map(move |p| (t.clone(), p)))
            .collect::<Vec<_>>(),
    );
    let sources = [
        (
            "batched OffsetFetch".to_owned(),
            CommittedSource::Batched(GroupOffsetReader::new(&brokers, WireSecurity::plaintext())),
        ),
        (
            format!(
                "per-group pool ({} clients, {} at once)",
                group_clients, concurrency
            ),
            CommittedSource::PerGroup {
                reader: Arc::new(CommittedReader::new(&config, group_clients)),
                concurrency,
            },
        ),
    ];
    for (name, source) in sources {
        let before = threads();
        let mut took = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let reads = source
                .read(
                    &group_names,
                    every_partition.clone(),
                    Duration::from_secs(30),
                )
                .await;
            took.push(started.elapsed().as_secs_f64());
            let failed = reads.values().filter(|r| r.is_err()).count();
            assert_eq!(failed, 0, "{name}: {failed} groups failed");
        }
        println!(
            "committed offsets of {groups} groups, {name}: {:.3}s, {:.3}s, {:.3}s; {} threads (+{}), {} TCP connections to the broker",
            took[0],
            took[1],
            took[2],
            threads(),
            threads().saturating_sub(before),
            connections_to(&brokers)
        );
        source.retain(&HashSet::new()).await;
        drop(source);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    for result in admin
        .delete_topics(&names, &AdminOptions::new())
        .await
        .expect("delete topics")
    {
        result.expect("topic deleted");
    }
}
