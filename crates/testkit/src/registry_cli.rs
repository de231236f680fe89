//! Running `orderflow registry register` as a script would, and reading its answer: for
//! the ops CLI's own tests and the repository-wide ones (a registry restart).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

/// `schemas/avro/<name>`, the schema files the pipeline registers.
pub fn schema_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/avro")
        .join(name)
}

/// Writes a copy of v2 with a new required field (no default) into `dir`: a v3 reader
/// cannot read v1/v2 data, so BACKWARD, FORWARD-TRANSITIVE and FULL all refuse it.
pub fn breaking_schema_file(dir: &Path) -> PathBuf {
    let v2 = std::fs::read_to_string(schema_file("order_event.v2.avsc")).unwrap();
    let mut breaking: Value = serde_json::from_str(&v2).unwrap();
    breaking["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "region", "type": "string"}));
    let path = dir.join("breaking.avsc");
    std::fs::write(&path, breaking.to_string()).unwrap();
    path
}

/// `orderflow registry register --schema-registry-url URL --subject SUBJECT --schema FILE`
/// with the `orderflow` binary at `orderflow`, a short retry budget and warnings only on
/// stderr.
pub fn register(orderflow: &Path, url: &str, subject: &str, file: &Path) -> Output {
    Command::new(orderflow)
        .env_remove("SCHEMA_REGISTRY_URL")
        .env_remove("SCHEMA_REGISTRY_WAIT_SECS")
        .env("LOG_LEVEL", "warn")
        .args([
            "registry",
            "register",
            "--schema-registry-url",
            url,
            "--subject",
            subject,
        ])
        .arg("--schema")
        .arg(file)
        .args(["--wait-secs", "5"])
        .output()
        .expect("run orderflow registry register")
}

/// The id printed by a successful `register`.
pub fn registered_id(output: &Output) -> u64 {
    assert!(
        output.status.success(),
        "register failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).expect("register prints JSON");
    answer["id"].as_u64().expect("an id")
}

/// Asserts that `output` is a refusal of an incompatible schema: non-zero exit and one
/// stderr line that names the subject and the field the registry objected to.
pub fn assert_refused_as_incompatible(output: &Output, subject: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("incompatible")
            && stderr.contains(subject)
            && stderr.contains("HTTP 409")
            && stderr.contains("region"),
        "{stderr}"
    );
}
