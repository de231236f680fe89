//! An Apicurio Registry of a test's own, run with `scripts/apicurio.sh run` on a fresh
//! PostgreSQL database (optionally behind TLS and basic auth), stopped with SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Apicurio starts in about 10 s alone, 20 s on two busy cores.
const READY_DEADLINE: Duration = Duration::from_secs(120);
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// One Apicurio process, in a process group of its own so that a signal reaches the JVM
/// whether or not the script `exec`s it; killed on drop if a check fails first.
pub struct Apicurio {
    child: Child,
    /// Base URL of the Confluent-compatible API, e.g. `http://127.0.0.1:P/apis/ccompat/v7`.
    pub base: String,
    log: tempfile::NamedTempFile,
}

impl Apicurio {
    /// Runs `scripts/apicurio.sh run --port P --database-url URL EXTRA...` and waits until
    /// the Confluent-compatible API answers the request `probe` builds for a URL (with the
    /// CA and credentials the registry needs). With `--tls-cert` in `extra` the base URL is
    /// `https://`.
    pub async fn start(
        database_url: &str,
        extra: &[&str],
        probe: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Self {
        use std::os::unix::process::CommandExt;

        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/apicurio.sh");
        assert!(
            script.is_file(),
            "{} is missing: this test starts its own Apicurio Registry through it",
            script.display()
        );
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(&script)
            .args(["run", "--port", &port.to_string()])
            .args(["--database-url", database_url])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {}: {err}", script.display()));
        let scheme = if extra.contains(&"--tls-cert") {
            "https"
        } else {
            "http"
        };
        let mut apicurio = Self {
            child,
            base: format!("{scheme}://127.0.0.1:{port}/apis/ccompat/v7"),
            log,
        };
        let started = Instant::now();
        loop {
            if let Ok(response) = probe(&apicurio.url("/config")).send().await
                && response.status() == 200
            {
                return apicurio;
            }
            if let Some(status) = apicurio.child.try_wait().unwrap() {
                panic!("Apicurio exited with {status}:\n{}", apicurio.log_tail());
            }
            assert!(
                started.elapsed() < READY_DEADLINE,
                "Apicurio not ready after {READY_DEADLINE:?}:\n{}",
                apicurio.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn signal_group(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// SIGTERM, then wait for the process to exit (Quarkus shuts down gracefully; the JVM
    /// then exits with 143).
    pub fn stop(mut self) {
        assert!(self.signal_group("-TERM"), "send SIGTERM to Apicurio");
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < STOP_DEADLINE,
                "Apicurio still running {STOP_DEADLINE:?} after SIGTERM:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Apicurio {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal_group("-KILL");
            let _ = self.child.wait();
        }
    }
}

/// A port below the kernel's ephemeral range (32768 up), so that no client
/// connection of another test can take it, or the management port the script
/// picks above it, between this check and the registry's bind.
pub fn free_port() -> u16 {
    let start = 24_000 + (std::process::id() % 4_000) as u16;
    (start..start + 2_000)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port in 24000..30000 on 127.0.0.1")
}
