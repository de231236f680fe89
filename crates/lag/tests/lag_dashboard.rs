//! The built-in dashboard in headless Chromium (Debian's chromium, driven with
//! playwright-core from the dashboard's npm lock file), read as a first-time operator
//! would: a legend of every status; a lagging, a stalled and a caught-up group with
//! their status words, lag figures equal to the JSON API's and their members' client
//! ids, hosts and partitions, each screenshotted under target/; "measuring" instead of
//! "∞" or an empty chart while an exporter is in its first window; and a staleness
//! banner once that exporter's broker is gone; from the stalled group's card, a link to
//! its dead-letter records, counted by error category and listed newest first. The
//! page updates without reloading and logs no console errors.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use orderflow_lag::model::Status;
use orderflow_lag::{EngineConfig, LagEngine};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use support::dashboard::{Driver, chromium, dashboard_dir, exporter, wait_for_groups};
use tokio_util::sync::CancellationToken;

const LAGGING_CLIENT: &str = "dash-lagging-worker";
const STALLED_CLIENT: &str = "dash-stalled-worker";
const CAUGHT_UP_CLIENT: &str = "dash-caught-up-worker";

/// A member of `group` that commits one record of `topic[0]` every 100 ms while three
/// more are produced: its committed offset moves and its lag grows at every poll.
struct LaggingWorker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LaggingWorker {
    /// Joins `group` as `client_id` and starts working once it owns `topic[0]`.
    fn start(client_id: &str, group: &str, topic: &str) -> Self {
        let consumer: BaseConsumer = orderflow_testkit::kafka_config()
            .set("group.id", group)
            .set("client.id", client_id)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(30);
        while consumer.assignment().expect("assignment").count() == 0 {
            assert!(
                Instant::now() < deadline,
                "{client_id} got no assignment of {topic} within 30 s"
            );
            let _ = consumer.poll(Duration::from_millis(100));
        }
        let producer: BaseProducer = orderflow_testkit::kafka_config()
            .create()
            .expect("producer");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let topic = topic.to_owned();
        let thread = std::thread::spawn(move || {
            let mut committed = 0;
            while !flag.load(Ordering::Relaxed) {
                for _ in 0..3 {
                    producer
                        .send(BaseRecord::to(&topic).partition(0).key("k").payload("{}"))
                        .expect("queue record");
                }
                producer
                    .flush(Duration::from_secs(10))
                    .expect("records acked");
                committed += 1;
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, 0, Offset::Offset(committed))
                    .expect("tpl");
                consumer.commit(&tpl, CommitMode::Sync).expect("commit");
                let _ = consumer.poll(Duration::from_millis(100));
            }
            consumer.unsubscribe();
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LaggingWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Dead letters of the stalled group's topic, oldest first: (category, error, source offset).
const DEAD_LETTERS: [(&str, &str, i64); 3] = [
    ("validation", "total below zero (first)", 0),
    ("deserialization", "not Avro: magic byte 0x7b", 1),
    ("validation", "total below zero (third)", 2),
];

/// Writes [`DEAD_LETTERS`] to `dlq_topic[0]` with the headers order-consumer writes,
/// one after the other so that their timestamps and offsets ascend.
async fn dead_letter(dlq_topic: &str, source_topic: &str, group: &str) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = orderflow_testkit::kafka_config()
        .create()
        .expect("producer");
    for (category, error, offset) in DEAD_LETTERS {
        let offset = offset.to_string();
        let headers = [
            ("dlq-source-topic", source_topic),
            ("dlq-source-partition", "0"),
            ("dlq-source-offset", offset.as_str()),
            ("dlq-consumer-group", group),
            ("dlq-error-category", category),
            ("dlq-error-message", error),
            ("dlq-attempts", "1"),
        ]
        .into_iter()
        .fold(OwnedHeaders::new(), |all, (key, value)| {
            all.insert(Header {
                key,
                value: Some(value),
            })
        });
        producer
            .send(
                FutureRecord::to(dlq_topic)
                    .partition(0)
                    .key("order-1")
                    .payload("{}")
                    .headers(headers),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("dead letter acked");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Creates `topic` on the private broker, writes `records` records and commits
/// `committed` for `group`.
async fn fill_private(
    broker: &support::PrivateBroker,
    topic: &str,
    group: &str,
    records: usize,
    committed: i64,
) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let kafka = broker.client_config();
    let admin: AdminClient<_> = kafka.create().expect("admin");
    admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic on the private broker");
    let producer: BaseProducer = kafka.create().expect("producer");
    for _ in 0..records {
        producer
            .send(BaseRecord::to(topic).partition(0).key("k").payload("{}"))
            .expect("queue record");
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("records acked by the private broker");
    let consumer: BaseConsumer = kafka
        .clone()
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(committed))
        .expect("tpl");
    consumer
        .commit(&tpl, CommitMode::Sync)
        .expect("commit on the private broker");
}

/// 12345 as the page writes it: "12,345".
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn card<'a>(reading: &'a Value, group: &str) -> &'a Value {
    reading["cards"]
        .as_array()
        .and_then(|cards| cards.iter().find(|c| c["group"] == group))
        .unwrap_or_else(|| panic!("no card of {group} on the page: {}", reading["page_text"]))
}

/// The group in the /api/groups body the page rendered this reading from.
fn api_group<'a>(reading: &'a Value, group: &str) -> &'a Value {
    assert!(
        reading["api"].is_object(),
        "no /api/groups body matches the snapshot time the page shows ({})",
        reading["taken_at_ms"]
    );
    reading["api"]["snapshot"]["groups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["group"] == group))
        .unwrap_or_else(|| panic!("{group} not in the API body {}", reading["api"]))
}

/// The stalled group's card links to its DLQ topic, whose panel counts [`DEAD_LETTERS`]
/// by category and lists them newest first.
fn assert_dead_letters_shown(dlq: &Value, dlq_topic: &str, source_topic: &str, group: &str) {
    assert_eq!(
        dlq["card"],
        format!("DLQ: 3 record(s) in {dlq_topic}").as_str(),
        "{dlq}"
    );
    assert_eq!(dlq["topic"], dlq_topic, "{dlq}");
    assert_eq!(
        dlq["categories"],
        json!([["validation", "2"], ["deserialization", "1"]]),
        "{dlq}"
    );
    let rows = dlq["records"].as_array().expect("record rows");
    assert_eq!(rows.len(), DEAD_LETTERS.len(), "{dlq}");
    // Columns: dead-lettered at, category, error, source, group, attempts, DLQ position.
    for (row, (category, error, offset)) in rows.iter().zip(DEAD_LETTERS.iter().rev()) {
        assert_eq!(row[1], *category, "{row}");
        assert_eq!(row[2], *error, "{row}");
        assert_eq!(
            row[3],
            format!("{source_topic}[0]@{offset}").as_str(),
            "{row}"
        );
        assert_eq!(row[4], group, "{row}");
        assert_eq!(row[6], format!("[0]@{offset}").as_str(), "{row}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_explains_statuses_members_measuring_and_staleness() {
    let chromium = chromium();
    let dashboard = dashboard_dir();
    let private = tokio::task::spawn_blocking(support::PrivateBroker::start);

    let name = |prefix| orderflow_testkit::unique_name(prefix);
    let (lag_topic, stall_topic, done_topic) =
        (name("dash-lag"), name("dash-stall"), name("dash-done"));
    let (lagging, stalled, caught_up) = (
        name("dash-lagging"),
        name("dash-stalled"),
        name("dash-caught-up"),
    );
    let stall_dlq = format!("{stall_topic}.dlq");
    for topic in [&lag_topic, &stall_topic, &done_topic, &stall_dlq] {
        orderflow_testkit::create_topic(topic, 1).await;
    }
    dead_letter(&stall_dlq, &stall_topic, &stalled).await;
    support::produce(&lag_topic, 0, 10).await;
    support::produce(&stall_topic, 0, 10).await;
    support::produce(&done_topic, 0, 7).await;
    // Members join in parallel: each waits for its first assignment.
    let joins = [
        (STALLED_CLIENT, stalled.clone(), stall_topic.clone(), 3),
        (CAUGHT_UP_CLIENT, caught_up.clone(), done_topic.clone(), 7),
    ]
    .map(|(client, group, topic, commit)| {
        tokio::task::spawn_blocking(move || {
            support::IdleMember::join_as(client, &group, &topic, "classic", &[(0, commit)])
        })
    });
    let worker = {
        let (group, topic) = (lagging.clone(), lag_topic.clone());
        tokio::task::spawn_blocking(move || LaggingWorker::start(LAGGING_CLIENT, &group, &topic))
    };
    let mut members = Vec::new();
    for join in joins {
        members.push(join.await.expect("member joins"));
    }
    let worker = worker.await.expect("worker starts");
    // Records keep coming after the stalled group's last commit: lag 12, offset 3 for good.
    support::produce(&stall_topic, 0, 5).await;

    let token = CancellationToken::new();
    let groups = [lagging.as_str(), stalled.as_str(), caught_up.as_str()];
    // A window of 4 s: LAGGING and STALLED need a full one.
    let (main, main_base) =
        exporter(support::engine_of(&groups, Duration::from_secs(4)), &token).await;

    // An exporter whose window (60 s) will not fill during the test, on a broker that
    // will stop: lag 3 with no rates measured yet, then stale figures.
    let mut broker = private.await.expect("private broker starts");
    let (first_topic, first_group) = (name("dash-first"), name("dash-first-g"));
    fill_private(&broker, &first_topic, &first_group, 5, 2).await;
    let first_engine = LagEngine::new(
        &broker.client_config(),
        EngineConfig {
            groups: vec![first_group.clone()],
            window: Duration::from_secs(60),
            request_timeout: Duration::from_secs(1),
            timestamp_timeout: Duration::from_millis(500),
            ..EngineConfig::default()
        },
    )
    .expect("engine");
    let (first, first_base) = exporter(first_engine, &token).await;
    wait_for_groups(&first_base, &[&first_group]).await;
    wait_for_groups(&main_base, &groups).await;

    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    for kind in ["lagging", "stalled", "caught-up", "stale"] {
        let _ = std::fs::remove_file(screenshots.join(format!("lag-dashboard-{kind}.png")));
    }
    let mut driver = Driver::spawn(&dashboard, &chromium, "dashboard_check.mjs");
    driver.expect("ready");
    let plan = json!({
        "measuring_url": format!("{first_base}/"),
        "measuring_group": first_group,
        "main_url": format!("{main_base}/"),
        "groups": {"lagging": lagging, "stalled": stalled, "caught_up": caught_up},
        "dlq_group": stalled,
        "screenshots": screenshots,
    });
    driver.send(&plan.to_string());

    // First window: "measuring" where a catch-up time or rate cannot be known yet.
    let measuring = driver.expect("measuring");
    let shown = card(&measuring, &first_group);
    let api = api_group(&measuring, &first_group);
    assert_eq!(api["measuring"], true, "{api}");
    assert_eq!(api["lag"], 3, "{api}");
    assert_eq!(shown["lag"], "3", "{shown}");
    assert_eq!(shown["catch_up"], "measuring", "{shown}");
    assert!(
        shown["text"]
            .as_str()
            .is_some_and(|t| t.contains("rates measuring")),
        "{shown}"
    );
    let text = measuring["page_text"].as_str().unwrap_or_default();
    assert!(!text.contains('∞'), "the page shows ∞: {text}");
    let charts = measuring["charts"].as_array().expect("charts");
    for chart in charts {
        assert!(
            chart["drawn"] == true || chart["note"].as_str().is_some_and(|n| !n.is_empty()),
            "a blank chart panel in the first window: {chart}"
        );
    }
    assert!(
        charts.iter().any(|c| c["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("measuring: rates"))),
        "the rates chart draws unmeasured rates: {charts:?}"
    );
    assert_eq!(measuring["stale_banner"], Value::Null, "{measuring}");
    broker.kill();
    driver.send("killed");

    // The main page: legend, then each group as its screenshot shows it.
    let page = driver.expect("groups");
    assert_eq!(page["not_reloaded"], true, "the page reloaded");
    let legend = page["legend"].as_array().expect("legend");
    let words: Vec<String> = Status::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .chain(["measuring".to_owned()])
        .collect();
    for word in &words {
        let entry = legend
            .iter()
            .find(|e| e["status"] == word.as_str())
            .unwrap_or_else(|| panic!("no legend entry for {word}: {legend:?}"));
        assert_eq!(entry["word"], word.as_str(), "{entry}");
        assert_eq!(entry["visible"], true, "{entry}");
        assert!(
            entry["meaning"].as_str().is_some_and(|m| m.len() > 20),
            "{entry}"
        );
    }
    let readings = page["groups"].as_array().expect("group readings");
    let expected = [
        ("lagging", &lagging, &lag_topic, "LAGGING", LAGGING_CLIENT),
        ("stalled", &stalled, &stall_topic, "STALLED", STALLED_CLIENT),
        (
            "caught_up",
            &caught_up,
            &done_topic,
            "CAUGHT_UP",
            CAUGHT_UP_CLIENT,
        ),
    ];
    for (kind, group, topic, word, client) in expected {
        let reading = readings
            .iter()
            .find(|r| r["kind"] == kind)
            .unwrap_or_else(|| panic!("no reading of the {kind} group"));
        let shown = card(reading, group);
        let api = api_group(reading, group);
        assert_eq!(shown["status"], word, "{kind}: {shown}");
        assert_eq!(api["status"], word, "{kind}: {api}");
        let lag = api["lag"].as_i64().expect("lag");
        assert_eq!(
            shown["lag"],
            thousands(lag).as_str(),
            "{kind}: {shown} vs {api}"
        );
        match kind {
            "lagging" => assert!(lag > 10, "{api}"),
            "stalled" => assert_eq!(lag, 12, "{api}"),
            _ => assert_eq!(lag, 0, "{api}"),
        }
        assert!(
            !reading["page_text"]
                .as_str()
                .unwrap_or_default()
                .contains('∞')
        );
        // Members: on the card and in the table of the selected group.
        let member = &api["membership"]["members"][0];
        assert_eq!(member["client_id"], client, "{kind}: {api}");
        let host = member["client_host"].as_str().expect("client host");
        let on_card = shown["members"].as_str().unwrap_or_default();
        assert!(
            on_card.contains(client)
                && on_card.contains(host)
                && on_card.contains(&format!("{topic}[0]")),
            "{kind}: card members {on_card:?}"
        );
        assert_eq!(
            reading["members_title"],
            format!("Members of {group} (Stable)").as_str(),
            "{kind}"
        );
        let table = reading["members_table"].as_str().unwrap_or_default();
        assert!(
            table.contains(client)
                && table.contains(host)
                && table.contains(&format!("{topic}[0]")),
            "{kind}: members table {table:?}"
        );
        let drawn = reading["charts"].as_array().expect("charts");
        assert!(
            drawn.iter().all(|c| c["drawn"] == true),
            "{kind}: {drawn:?}"
        );
        if kind == "stalled" {
            assert_dead_letters_shown(&reading["dlq"], &stall_dlq, &stall_topic, &stalled);
        } else {
            assert_eq!(reading["dlq"], Value::Null, "{kind}");
        }
        let screenshot = reading["screenshot"].as_str().expect("screenshot path");
        assert!(
            Path::new(screenshot).is_file(),
            "no screenshot {screenshot}"
        );
    }

    // The records endpoint reads dead-letter topics only.
    let not_dlq = reqwest::get(format!("{main_base}/api/dlq?topic={lag_topic}"))
        .await
        .expect("GET /api/dlq");
    assert_eq!(
        not_dlq.status().as_u16(),
        404,
        "{lag_topic} is no DLQ topic"
    );

    // The broker of the first exporter is gone: its page says the figures are stale and
    // still shows the last ones.
    let stale = driver.expect("stale");
    let banner = stale["stale_banner"].as_str().unwrap_or_default();
    assert!(
        banner.starts_with("Stale figures:") && banner.contains("poll(s) of Kafka failed"),
        "{banner:?}"
    );
    assert_eq!(stale["api"]["stale"], true, "{}", stale["api"]);
    assert_eq!(card(&stale, &first_group)["lag"], "3", "{stale}");
    let done = driver.expect("done");
    assert_eq!(done["console_errors"], json!([]), "{done}");
    driver.wait();

    drop(worker);
    drop(members);
    token.cancel();
    for task in main.tasks.into_iter().chain(first.tasks) {
        let _ = task.await;
    }
}
