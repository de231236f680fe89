//! Driving the dashboard in headless Chromium (Debian's chromium, playwright-core from the
//! dashboard's npm lock file) and serving it from an exporter: shared by the dashboard
//! tests.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orderflow_lag::LagEngine;
use orderflow_lag::serve::{Running, ServeConfig, start};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Debian's chromium, or `CHROMIUM`; fails (never skips) when missing.
pub fn chromium() -> PathBuf {
    let path =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    assert!(
        path.is_file(),
        "{} not found: the dashboard test needs Debian's chromium (apt-get install chromium) or CHROMIUM=/path",
        path.display()
    );
    path
}

/// The dashboard's folder, with playwright-core and uPlot installed.
pub fn dashboard_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("vendor/uPlot.iife.min.js").is_file(),
        "playwright-core or uPlot missing in {}: run scripts/build-dashboard.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// Starts an exporter polling every 500 ms.
pub async fn exporter(engine: LagEngine, token: &CancellationToken) -> (Running, String) {
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        interval: Duration::from_millis(500),
        history: Duration::from_secs(600),
    };
    let running = start(engine, config, token.clone())
        .await
        .expect("exporter starts");
    let base = format!("http://{}", running.addr);
    (running, base)
}

/// Waits until `/api/groups` shows every group of `groups`, so the page's first
/// request is answered (a 503 would be a console error).
pub async fn wait_for_groups(base: &str, groups: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Option<Value> = match reqwest::get(format!("{base}/api/groups")).await {
            Ok(res) if res.status().is_success() => res.json().await.ok(),
            _ => None,
        };
        let shown = |g: &&str| {
            body.as_ref()
                .and_then(|b| b["snapshot"]["groups"].as_array())
                .is_some_and(|all| all.iter().any(|x| x["group"] == *g))
        };
        if groups.iter().all(shown) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{base}/api/groups does not show {groups:?} within 30 s: {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The page's driver: JSON lines in and out.
pub struct Driver {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Driver {
    /// Starts `node tests/SCRIPT` in `dashboard`, driving `chromium`.
    pub fn spawn(dashboard: &Path, chromium: &Path, script: &str) -> Self {
        let mut child = Command::new("node")
            .arg(format!("tests/{script}"))
            .env("CHROMIUM", chromium)
            .current_dir(dashboard)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs (Node.js 20+ needed)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// Writes one line to the driver.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("tell the driver");
    }

    /// The next event, which must be `event`; waits at most a minute.
    pub fn expect(&self, event: &str) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!("the driver printed nothing for 60 s (waiting for {event:?})")
            });
        let value: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("driver printed {line:?}: {e}"));
        assert_eq!(value["event"], event, "{value}");
        value
    }

    /// Waits for the driver to exit successfully.
    pub fn wait(mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("driver status") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("dashboard driver did not exit within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "driver exited with {status}");
    }
}
