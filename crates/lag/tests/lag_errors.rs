//! Errors must not look like data: a group asked for by name that the cluster does not
//! know is NOT_FOUND (not CAUGHT_UP in green), and when the broker goes away the
//! exporter says its figures are stale and stops being ready instead of serving the
//! last ones forever.

mod support;

use std::time::{Duration, Instant};

use orderflow_lag::serve::{ServeConfig, start};
use orderflow_lag::{EngineConfig, LagEngine};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn misspelt_group_is_not_found_not_caught_up() {
    let topic = orderflow_testkit::unique_name("lag-nf");
    let group = orderflow_testkit::unique_name("lag-nf-g");
    orderflow_testkit::create_topic(&topic, 1).await;
    support::produce(&topic, 0, 3).await;
    support::commit(&group, &topic, &[(0, 3)]);
    let misspelt = format!("{group}-typo");
    let mut engine = support::engine(&misspelt, Duration::from_secs(2));

    let snapshot = engine.poll().await.expect("poll");
    let g = snapshot
        .groups
        .iter()
        .find(|g| g.group == misspelt)
        .expect("a group asked for by name is always shown");
    assert_eq!(g.status.as_str(), "NOT_FOUND", "{}", g.reason);
    assert!(g.reason.contains("does not list"), "{}", g.reason);
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

fn gauge(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn stopped_broker_makes_the_figures_stale_and_the_exporter_unready() {
    let mut broker = support::PrivateBroker::start();
    let kafka = broker.client_config();
    let topic = orderflow_testkit::unique_name("lag-stale");
    let group = orderflow_testkit::unique_name("lag-stale-g");
    {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        let admin: AdminClient<_> = kafka.create().expect("admin");
        admin
            .create_topics(
                &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
                &AdminOptions::new(),
            )
            .await
            .expect("create topic");
    }
    let consumer: rdkafka::consumer::BaseConsumer = kafka
        .clone()
        .set("group.id", &group)
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, rdkafka::Offset::Offset(0))
        .expect("tpl");
    let commit_deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) =
        rdkafka::consumer::Consumer::commit(&consumer, &tpl, rdkafka::consumer::CommitMode::Sync)
    {
        assert!(
            Instant::now() < commit_deadline,
            "commit on the private broker: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(consumer);

    let config = EngineConfig {
        groups: vec![group.clone()],
        window: Duration::from_secs(2),
        request_timeout: Duration::from_secs(1),
        timestamp_timeout: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let engine = LagEngine::new(&kafka, config).expect("engine");
    let token = CancellationToken::new();
    let running = start(
        engine,
        ServeConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            interval: Duration::from_millis(250),
            history: Duration::from_secs(60),
        },
        token.clone(),
    )
    .await
    .expect("exporter starts");
    let base = format!("http://{}", running.addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ready, _) = get(&format!("{base}/readyz")).await;
        let (_, metrics) = get(&format!("{base}/metrics")).await;
        if ready == 200 && metrics.contains(&format!("group=\"{group}\"")) {
            break;
        }
        assert!(Instant::now() < deadline, "exporter never ready: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    broker.kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (ready, metrics) = loop {
        let (ready, _) = get(&format!("{base}/readyz")).await;
        let (_, metrics) = get(&format!("{base}/metrics")).await;
        let age = gauge(&metrics, "orderflow_lag_snapshot_age_seconds");
        if ready == 503 && age.is_some_and(|a| a >= 1.0) {
            break (ready, metrics);
        }
        assert!(
            Instant::now() < deadline,
            "60 s after the broker stopped: /readyz {ready}, snapshot age {age:?}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(ready, 503);
    assert!(
        gauge(&metrics, "orderflow_lag_failed_polls").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    // The last figures stay, marked by their age, so alert timers are not reset.
    assert!(
        metrics.contains(&format!(
            "orderflow_consumergroup_status{{group=\"{group}\"}}"
        )),
        "{metrics}"
    );
    let (_, api) = get(&format!("{base}/api/groups")).await;
    let api: serde_json::Value = serde_json::from_str(&api).expect("json");
    assert_eq!(api["stale"], true, "{api}");
    token.cancel();
    for task in running.tasks {
        let _ = task.await;
    }
}
