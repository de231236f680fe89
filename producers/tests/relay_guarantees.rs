//! The relay refuses, at start-up and with one line, producer settings that would break
//! its guarantee: `acks` other than `all` or idempotence off (rows marked sent that no
//! broker stored), and a delivery timeout its lease cannot cover (unbounded, or the two
//! aliases set to different values, where the winner depends on hash order). The check
//! runs before anything is contacted, so no broker or database is needed here.

use std::process::Command;

/// Runs `order-producer serve` with `options` as `--kafka-option`s; returns the exit
/// code and standard error. Nothing listens at the addresses given: a run that went on
/// past the check would fail on them with another message.
fn serve_with(options: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_order-producer"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args(["--database-url", "postgres://nobody@127.0.0.1:1/none"])
        .args(["--database-connect-timeout", "1s"])
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:1")
        .env_remove("PRODUCER_DATABASE_URL")
        .env_remove("DATABASE_URL");
    for option in options {
        command.args(["--kafka-option", option]);
    }
    let output = command.output().expect("order-producer runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_refused(options: &[&str], naming: &str) {
    let (code, stderr) = serve_with(options);
    assert_eq!(
        code,
        Some(2),
        "{options:?} must be refused; stderr:\n{stderr}"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line for {options:?}, got:\n{stderr}");
    assert!(
        lines[0].contains(naming),
        "the line for {options:?} must name {naming}: {stderr}"
    );
}

#[test]
fn acks_other_than_all_is_refused() {
    assert_refused(&["acks=1"], "acks");
    assert_refused(&["request.required.acks=0"], "acks");
}

#[test]
fn idempotence_off_is_refused() {
    assert_refused(&["enable.idempotence=false"], "enable.idempotence");
}

#[test]
fn an_unbounded_delivery_timeout_is_refused() {
    assert_refused(&["message.timeout.ms=0"], "timeout");
    assert_refused(&["delivery.timeout.ms=0"], "timeout");
}

#[test]
fn a_delivery_timeout_above_what_the_lease_covers_is_refused() {
    assert_refused(&["delivery.timeout.ms=3600000"], "timeout");
}

#[test]
fn both_timeout_aliases_with_different_values_are_refused() {
    assert_refused(
        &["delivery.timeout.ms=30000", "message.timeout.ms=600000"],
        "delivery.timeout.ms",
    );
}
