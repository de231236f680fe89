//! A private Jaeger (v2 all-in-one, in-memory) for the tracing tests: the binary that
//! `scripts/lib/jaeger.sh` builds and caches, started with that script's loopback config
//! on free ports below 32768, and its HTTP query API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running Jaeger; stopped when dropped.
pub struct Jaeger {
    child: Child,
    /// Base URL for `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP/HTTP).
    pub otlp_endpoint: String,
    /// Base URL of the UI and the query API (`/api/traces`, ...).
    pub query_base: String,
    /// Jaeger's own log.
    pub log_path: PathBuf,
    client: reqwest::Client,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the Jaeger binary is: `JAEGER_BIN`, else the cache `scripts/lib/jaeger.sh`
/// builds into.
pub fn jaeger_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("JAEGER_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
        });
    cache.join("orderflow/jaeger-v1.75.0/jaeger")
}

/// `count` ports below 32768 that nothing listens on now (the kernel hands out
/// ephemeral ports above it, so a client connection cannot take one meanwhile).
pub fn free_ports(count: usize) -> Vec<u16> {
    let start = 20_000 + (rand::random::<u16>() % 10_000);
    let mut ports = Vec::with_capacity(count);
    let mut port = start;
    while ports.len() < count {
        assert!(port < 32_000, "no {count} free ports from {start}");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
        port += 1;
    }
    ports
}

impl Jaeger {
    /// Starts Jaeger and waits until its query API answers. Fails (never skips) when the
    /// binary is missing.
    pub async fn start() -> Self {
        let binary = jaeger_binary();
        assert!(
            binary.is_file(),
            "the Jaeger binary is missing at {}: scripts/test.sh builds it once \
             (jaeger_ensure_binary in scripts/lib/jaeger.sh: Jaeger v1.75.0 with Go, several \
             minutes the first time, then cached), or set JAEGER_BIN",
            binary.display()
        );
        let dir = std::env::temp_dir().join(crate::unique_name("jaeger"));
        std::fs::create_dir_all(&dir).expect("jaeger dir");
        let config = dir.join("jaeger.yaml");
        let ports = free_ports(6);
        let script = r#"ROOT="$1"; shift
            source "$ROOT/scripts/lib/log.sh"
            source "$ROOT/scripts/lib/install.sh"
            source "$ROOT/scripts/lib/services.sh"
            source "$ROOT/scripts/lib/jaeger.sh"
            jaeger_write_config "$@""#;
        let status = Command::new("bash")
            .args(["-c", script, "jaeger-config"])
            .arg(repo_root())
            .arg(&config)
            .args(ports.iter().map(u16::to_string))
            .status()
            .expect("run bash");
        assert!(
            status.success(),
            "scripts/lib/jaeger.sh could not write {}",
            config.display()
        );
        let log_path = dir.join("jaeger.log");
        let log = std::fs::File::create(&log_path).expect("jaeger log");
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let jaeger = Self {
            child,
            otlp_endpoint: format!("http://127.0.0.1:{}", ports[1]),
            query_base: format!("http://127.0.0.1:{}", ports[2]),
            log_path,
            client: reqwest::Client::new(),
        };
        jaeger.wait_ready().await;
        jaeger
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let url = format!("{}/api/services", self.query_base);
            if let Ok(answer) = self.client.get(&url).send().await
                && answer.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Jaeger did not answer {url} within 60 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Jaeger's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// GETs a query API path (`/api/...`) as JSON.
    pub async fn get(&self, path_and_query: &str) -> Value {
        let url = format!("{}{path_and_query}", self.query_base);
        let answer = self
            .client
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(
            answer.status().is_success(),
            "GET {url}: {}",
            answer.status()
        );
        answer.json().await.expect("JSON")
    }

    /// The trace with `trace_id` (Jaeger's JSON: `spans`, `processes`), or `None` when
    /// Jaeger has no span of it yet.
    pub async fn trace(&self, trace_id: &str) -> Option<Value> {
        let url = format!("{}/api/traces/{trace_id}", self.query_base);
        let answer = self.client.get(&url).send().await.ok()?;
        if !answer.status().is_success() {
            return None;
        }
        let body: Value = answer.json().await.ok()?;
        body["data"].as_array()?.first().cloned()
    }
}

impl Drop for Jaeger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
