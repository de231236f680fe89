//! The real `orderflow registry` binary against real PostgreSQL: ids, versions and
//! settings survive a restart; `register` fails clearly on a bad file or an incompatible
//! schema; `serve` fails with one line naming an unreachable database.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn orderflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .env_remove("REGISTRY_DATABASE_URL")
        .env_remove("SCHEMA_REGISTRY_LISTEN")
        .env_remove("SCHEMA_REGISTRY_URL")
        .env("LOG_LEVEL", "warn");
    command
}

fn schema_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/avro")
        .join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    url: String,
    log: tempfile::NamedTempFile,
}

impl Server {
    /// Starts `orderflow registry serve` and waits until /readyz answers 200.
    async fn start(database_url: &str) -> Self {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = orderflow()
            .args([
                "registry",
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--database-url", database_url])
            .env("LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("spawn orderflow registry serve");
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = http.get(format!("{}/readyz", server.url)).send().await
                && response.status() == 200
            {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("registry exited with {status}: {}", server.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "registry not ready after 30 s: {}",
                server.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "exit after SIGTERM: {status}: {}",
                    self.log_text()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "registry still running 20 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(url: &str) -> Value {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

fn register(url: &str, subject: &str, file: &std::path::Path) -> Output {
    orderflow()
        .args(["registry", "register", "--url", url, "--subject", subject])
        .arg("--schema")
        .arg(file)
        .args(["--wait-secs", "5"])
        .output()
        .expect("run orderflow registry register")
}

fn registered_id(output: &Output) -> i64 {
    assert!(
        output.status.success(),
        "register failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("register prints JSON");
    answer["id"].as_i64().expect("an id")
}

#[tokio::test]
async fn ids_versions_and_config_survive_a_restart() {
    let (database_url, _pool) = orderflow_testkit::fresh_database().await;
    let v1 = schema_file("order_event.v1.avsc");
    let v2 = schema_file("order_event.v2.avsc");

    let first = Server::start(&database_url).await;
    let id1 = registered_id(&register(&first.url, "orders-value", &v1));
    let id2 = registered_id(&register(&first.url, "orders-value", &v2));
    assert_ne!(id1, id2);
    let put = client()
        .put(format!("{}/config/orders-value", first.url))
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(r#"{"compatibility":"FULL"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    // A schema v2 readers cannot handle (a new required field): 409, said plainly.
    let dir = tempfile::tempdir().unwrap();
    let mut breaking: Value = serde_json::from_str(&std::fs::read_to_string(&v2).unwrap()).unwrap();
    breaking["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "region", "type": "string"}));
    let breaking_file = dir.path().join("breaking.avsc");
    std::fs::write(&breaking_file, breaking.to_string()).unwrap();
    let rejected = register(&first.url, "orders-value", &breaking_file);
    let stderr = String::from_utf8_lossy(&rejected.stderr);
    assert!(!rejected.status.success());
    assert!(
        stderr.contains("incompatible") && stderr.contains("region"),
        "{stderr}"
    );
    first.stop();

    let second = Server::start(&database_url).await;
    let versions = get(&format!("{}/subjects/orders-value/versions", second.url)).await;
    assert_eq!(versions, json!([1, 2]));
    let latest = get(&format!(
        "{}/subjects/orders-value/versions/latest",
        second.url
    ))
    .await;
    assert_eq!(
        (latest["id"].as_i64(), latest["version"].as_i64()),
        (Some(id2), Some(2))
    );
    let by_id = get(&format!("{}/schemas/ids/{id1}", second.url)).await;
    assert_eq!(
        by_id["schema"],
        std::fs::read_to_string(&v1).unwrap().as_str()
    );
    let config = get(&format!("{}/config/orders-value", second.url)).await;
    assert_eq!(config, json!({"compatibilityLevel": "FULL"}));
    // The same file again answers the same id; a new schema gets a fresh id.
    assert_eq!(
        registered_id(&register(&second.url, "orders-value", &v1)),
        id1
    );
    let id3 = registered_id(&register(&second.url, "other-value", &breaking_file));
    assert!(id3 > id2, "ids are never reused: {id3} after {id2}");
    second.stop();
}

#[tokio::test]
async fn register_and_serve_fail_with_one_clear_line() {
    // An invalid schema file fails before any network call: the URL is unreachable and
    // would otherwise be retried.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.avsc");
    std::fs::write(
        &bad,
        r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"strng"}]}"#,
    )
    .unwrap();
    let started = Instant::now();
    let output = register("http://127.0.0.1:1", "orders-value", &bad);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("bad.avsc")
            && stderr.contains("not a valid Avro schema")
            && stderr.contains("strng"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no retries for a bad file"
    );

    // An unreachable database: bounded retries, then one line naming the address.
    let output = orderflow()
        .args(["registry", "serve", "--listen", "127.0.0.1:0"])
        .args([
            "--database-url",
            "postgres://orderflow:secret@127.0.0.1:1/registry",
        ])
        .args(["--connect-timeout-secs", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("127.0.0.1:1/registry") && !last.contains("secret"),
        "{stderr}"
    );
}
