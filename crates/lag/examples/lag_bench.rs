//! Benchmark of one lag poll cycle: GROUPS groups, each committed on its own topic of
//! PARTITIONS partitions (2,000 partitions across 50 groups by default), a few records
//! per partition so every partition has lag and a record timestamp to read.
//! Run by scripts/bench-lag.sh; prints one line per cycle and a summary.
//!
//! Each cycle sends one OffsetFetch per group naming every partition of the cluster.
//!
//! Environment: KAFKA_BROKERS (required), LAG_BENCH_GROUPS (50), LAG_BENCH_PARTITIONS
//! (40 per group), LAG_BENCH_CYCLES (10), LAG_BENCH_GROUP_CLIENTS (the engine's default;
//! fewer than the groups makes every cycle close and reopen OffsetFetch clients) and
//! LAG_BENCH_CONCURRENCY (the engine's default, at most the group clients).

use std::time::{Duration, Instant};

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
    let engine_config = EngineConfig {
        groups: (0..groups)
            .map(|i| format!("bench-lag-{run}-g{i}"))
            .collect(),
        group_clients,
        concurrency: env_usize(
            "LAG_BENCH_CONCURRENCY",
            defaults.concurrency.min(group_clients),
        ),
        ..defaults
    };
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
}
