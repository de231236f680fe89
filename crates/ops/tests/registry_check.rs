//! The real `orderflow registry check` binary: the producer team's CI step. A candidate the
//! registry accepts under its BACKWARD rule (a new union branch) is still one this build's
//! reader cannot read: the check says so, naming the branch, and exits 2; the schemas the
//! pipeline registers pass. `--subject` checks the latest version in the real registry.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use orderflow_testkit as testkit;
use serde_json::Value;
use support::register;
use testkit::registry_cli::{registered_id, schema_file};

fn check(args: &[&str], file: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .env_remove("SCHEMA_REGISTRY_URL")
        .env("LOG_LEVEL", "warn")
        .args(["registry", "check"])
        .args(args);
    if let Some(file) = file {
        command.arg("--schema").arg(file);
    }
    command.output().expect("run orderflow registry check")
}

fn verdict(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).expect("check prints JSON")
}

/// v2 with an `OrderRefunded` branch added: BACKWARD compatible, unknown to this reader.
fn refund_candidate(dir: &Path) -> std::path::PathBuf {
    let v2 = std::fs::read_to_string(schema_file("order_event.v2.avsc")).unwrap();
    let mut schema: Value = serde_json::from_str(&v2).unwrap();
    let payload = schema["fields"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == "payload")
        .unwrap();
    payload["type"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "type": "record", "name": "OrderRefunded", "fields": [
                {"name": "payment_id", "type": "string"},
                {"name": "amount_cents", "type": "long"},
                {"name": "reason", "type": "string"}]
        }));
    let path = dir.join("refund.avsc");
    std::fs::write(&path, schema.to_string()).unwrap();
    path
}

#[test]
fn the_pipelines_schemas_pass_and_an_unknown_branch_fails_naming_it() {
    for name in ["order_event.v1.avsc", "order_event.v2.avsc"] {
        let output = check(&[], Some(&schema_file(name)));
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(verdict(&output)["readable"], true);
    }
    let dir = tempfile::tempdir().unwrap();
    let output = check(&[], Some(&refund_candidate(dir.path())));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(verdict(&output)["readable"], false);
    assert!(
        stderr.contains("payload") && stderr.contains("OrderRefunded"),
        "{stderr}"
    );
}

#[test]
fn subject_form_checks_the_latest_registered_version() {
    let url = testkit::registry_url();
    let subject = format!("{}-value", testkit::unique_name("orders"));
    registered_id(&register(
        &url,
        &subject,
        &schema_file("order_event.v2.avsc"),
    ));
    let output = check(
        &["--schema-registry-url", &url, "--subject", &subject],
        None,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The registry accepts the new branch (BACKWARD); this reader cannot read it.
    let dir = tempfile::tempdir().unwrap();
    let id = registered_id(&register(&url, &subject, &refund_candidate(dir.path())));
    let output = check(
        &["--schema-registry-url", &url, "--subject", &subject],
        None,
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(verdict(&output)["candidate"]["id"], id);
}
