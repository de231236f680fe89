//! Schemas survive a registry restart: an Apicurio Registry of this test's own, started
//! with `scripts/apicurio.sh run` on a fresh PostgreSQL database, is stopped with SIGTERM
//! and started again on the same database; subjects, versions, ids and the subject's
//! compatibility setting read back the same, and still drive `orderflow registry register`.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{
    assert_refused_as_incompatible, breaking_schema_file, register, registered_id, schema_file,
};

/// Apicurio starts in about 10 s alone, 20 s on two busy cores.
const READY_DEADLINE: Duration = Duration::from_secs(120);
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// One Apicurio process, in a process group of its own so that a signal reaches the JVM
/// whether or not the script `exec`s it; killed on drop if a check fails first.
struct Apicurio {
    child: Child,
    base: String,
    log: tempfile::NamedTempFile,
}

impl Apicurio {
    /// Runs `scripts/apicurio.sh run --port P --database-url URL` and waits until the
    /// Confluent-compatible API answers.
    async fn start(database_url: &str) -> Self {
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
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| panic!("spawn {}: {err}", script.display()));
        let mut apicurio = Self {
            child,
            base: format!("http://127.0.0.1:{port}/apis/ccompat/v7"),
            log,
        };
        let started = Instant::now();
        loop {
            if let Ok(response) = http().get(apicurio.url("/config")).send().await
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

    fn url(&self, path: &str) -> String {
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
    fn stop(mut self) {
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
fn free_port() -> u16 {
    let start = 24_000 + (std::process::id() % 4_000) as u16;
    (start..start + 2_000)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port in 24000..30000 on 127.0.0.1")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str) -> Value {
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// What a client can read about `subject`: its versions, the id and schema of each, and
/// its compatibility setting.
async fn subject_state(registry: &Apicurio, subject: &str) -> Value {
    let versions = get(&registry.url(&format!("/subjects/{subject}/versions"))).await;
    let mut each = Vec::new();
    for version in versions.as_array().unwrap() {
        let found = get(&registry.url(&format!("/subjects/{subject}/versions/{version}"))).await;
        let id = found["id"].as_u64().unwrap();
        let by_id = get(&registry.url(&format!("/schemas/ids/{id}"))).await;
        each.push(json!({
            "version": found["version"],
            "id": id,
            "schema": found["schema"],
            "schema_by_id": by_id["schema"],
        }));
    }
    let config = get(&registry.url(&format!("/config/{subject}"))).await;
    json!({ "versions": versions, "each": each, "config": config })
}

#[tokio::test]
async fn subjects_versions_and_ids_survive_a_restart() {
    let (database_url, _pool) = orderflow_testkit::fresh_database().await;
    let subject = format!("{}-value", orderflow_testkit::unique_name("orders"));
    let v1 = schema_file("order_event.v1.avsc");
    let v2 = schema_file("order_event.v2.avsc");
    let dir = tempfile::tempdir().unwrap();
    let breaking = breaking_schema_file(dir.path());

    let first = Apicurio::start(&database_url).await;
    let id1 = registered_id(&register(&first.base, &subject, &v1));
    let id2 = registered_id(&register(&first.base, &subject, &v2));
    assert_ne!(id1, id2);
    // A fresh Apicurio has no global rule: give the subject one, to see it survive too.
    let put = http()
        .put(first.url(&format!("/config/{subject}")))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(r#"{"compatibility":"FULL"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        200,
        "{}",
        put.text().await.unwrap_or_default()
    );
    let before = subject_state(&first, &subject).await;
    assert_eq!(before["versions"], json!([1, 2]));
    assert_eq!(
        (
            before["each"][0]["id"].as_u64(),
            before["each"][1]["id"].as_u64()
        ),
        (Some(id1), Some(id2))
    );
    for each in before["each"].as_array().unwrap() {
        let schema = each["schema"].as_str().unwrap_or_default();
        assert!(schema.contains("OrderEvent"), "{each}");
        assert_eq!(each["schema_by_id"], each["schema"]);
    }
    assert_eq!(before["config"]["compatibilityLevel"], "FULL");
    first.stop();

    let second = Apicurio::start(&database_url).await;
    assert_eq!(subject_state(&second, &subject).await, before);
    assert_eq!(
        registered_id(&register(&second.base, &subject, &v2)),
        id2,
        "the same file answers the same id after the restart"
    );
    assert_refused_as_incompatible(&register(&second.base, &subject, &breaking), &subject);
    // A new schema gets an id that was not handed out before the restart.
    let other = format!("{}-value", orderflow_testkit::unique_name("other"));
    let id3 = registered_id(&register(&second.base, &other, &breaking));
    assert!(
        ![id1, id2].contains(&id3),
        "ids are not reused: {id3} after {id1}, {id2}"
    );
    second.stop();
}
