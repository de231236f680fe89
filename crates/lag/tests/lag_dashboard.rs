//! The built-in dashboard in headless Chromium (Debian's chromium, driven with
//! playwright-core from the dashboard's npm lock file): it loads without console
//! errors, shows the group's lag equal to the JSON API's and its state and members,
//! updates without a reload after more records are produced, and a screenshot is
//! saved under target/.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orderflow_lag::serve::{ServeConfig, start};
use tokio_util::sync::CancellationToken;

fn chromium() -> PathBuf {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.is_file(),
        "{} not found: the dashboard test needs Debian's chromium (apt-get install chromium) or CHROMIUM=/path",
        path.display()
    );
    path
}

fn dashboard_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("vendor/uPlot.iife.min.js").is_file(),
        "playwright-core or uPlot missing in {}: run scripts/build-dashboard.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

async fn api_lag(base: &str, group: &str) -> Option<i64> {
    let body: serde_json::Value = reqwest::get(format!("{base}/api/groups"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["snapshot"]["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"] == group)
        .and_then(|g| g["lag"].as_i64())
}

async fn wait_for_api_lag(base: &str, group: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lag = api_lag(base, group).await;
        if lag == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "API lag of {group} is {lag:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Next JSON line of the driver, waiting at most a minute (Chromium start included).
fn next_event(lines: &std::sync::mpsc::Receiver<String>) -> serde_json::Value {
    let line = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("dashboard driver printed nothing for 60 s or ended early");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver printed {line:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_api_lag_and_updates_live() {
    let chromium = chromium();
    let dashboard = dashboard_dir();
    let topic = orderflow_testkit::unique_name("lag-dash");
    let group = orderflow_testkit::unique_name("lag-dash-g");
    orderflow_testkit::create_topic(&topic, 2).await;
    orderflow_testkit::create_topic(&format!("{topic}.dlq"), 1).await;
    support::produce(&topic, 0, 6).await;
    support::produce(&topic, 1, 4).await;
    support::produce(&format!("{topic}.dlq"), 0, 2).await;
    support::commit(&group, &topic, &[(0, 2), (1, 4)]);

    let token = CancellationToken::new();
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        interval: Duration::from_millis(500),
        history: Duration::from_secs(3600),
    };
    let running = start(
        support::engine(&group, Duration::from_secs(5)),
        config,
        token.clone(),
    )
    .await
    .expect("exporter starts");
    let base = format!("http://{}", running.addr);
    wait_for_api_lag(&base, &group, 4).await;

    let screenshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/lag-dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut driver = Command::new("node")
        .arg("tests/dashboard_check.mjs")
        .arg(format!("{base}/"))
        .arg(&group)
        .arg(&screenshot)
        .env("CHROMIUM", &chromium)
        .current_dir(&dashboard)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (Node.js 20+ needed)");
    let mut stdin = driver.stdin.take().expect("stdin");
    let stdout = driver.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });

    let shown = next_event(&lines);
    assert_eq!(shown["event"], "lag", "{shown}");
    let api = api_lag(&base, &group).await.expect("API lag");
    assert_eq!(
        shown["lag"].as_i64(),
        Some(api),
        "page shows {shown}, API says {api}"
    );
    // The group only committed: the coordinator describes it as Empty, without members.
    assert_eq!(
        shown["members_title"],
        format!("Members of {group} (Empty)").as_str(),
        "{shown}"
    );
    assert!(
        shown["members"]
            .as_str()
            .is_some_and(|m| m.contains("no active members")),
        "{shown}"
    );

    support::produce(&topic, 0, 5).await;
    wait_for_api_lag(&base, &group, api + 5).await;
    writeln!(stdin, "expect {}", api + 5).expect("tell driver");

    let updated = next_event(&lines);
    assert_eq!(updated["event"], "updated", "{updated}");
    assert_eq!(
        updated["not_reloaded"], true,
        "the page reloaded: {updated}"
    );
    assert_eq!(updated["charts"].as_i64(), Some(3), "{updated}");
    let done = next_event(&lines);
    assert_eq!(done["console_errors"], serde_json::json!([]), "{done}");
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = driver.try_wait().expect("driver status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = driver.kill();
            panic!("dashboard driver did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "driver exited with {status}");
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );

    // The DLQ table is fed by the same API.
    let body: serde_json::Value = reqwest::get(format!("{base}/api/groups"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dlq = body["snapshot"]["dlq"].as_array().unwrap();
    assert!(
        dlq.iter()
            .any(|d| d["source_topic"] == topic.as_str() && d["records"] == 2),
        "{dlq:?}"
    );
    token.cancel();
    for task in running.tasks {
        task.await.unwrap();
    }
}
