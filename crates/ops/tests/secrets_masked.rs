//! No secret reaches a log line or `--help`: every secret-bearing setting (Kafka SASL
//! and OAUTHBEARER assertion keys, a database URL's userinfo and `?password=`, registry
//! basic auth and bearer token) is fed through the environment, and the output of each
//! command's `--help` and of a start-up that fails is searched for it.

use std::process::Command;

/// Each value appears nowhere in the output.
const SECRETS: [&str; 7] = [
    "SECRET-sasl-password",
    "SECRET-assertion-passphrase",
    "SECRET-assertion-key-pem",
    "SECRET-db-query-password",
    "SECRET-registry-userinfo",
    "SECRET-registry-bearer",
    "SECRET-producer-db-password",
];

fn orderflow(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(args)
        .env(
            "KAFKA_OPTIONS",
            "sasl.password=SECRET-sasl-password,\
             sasl.oauthbearer.assertion.private.key.passphrase=SECRET-assertion-passphrase,\
             sasl.oauthbearer.assertion.private.key.pem=SECRET-assertion-key-pem",
        )
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("KAFKA_CONNECT_TIMEOUT", "1s")
        .env(
            "DATABASE_URL",
            "postgres://orderflow@127.0.0.1:1/db?sslmode=disable&password=SECRET-db-query-password",
        )
        .env(
            "PRODUCER_DATABASE_URL",
            "postgres://orderflow:SECRET-producer-db-password@127.0.0.1:1/db",
        )
        .env(
            "SCHEMA_REGISTRY_URL",
            "http://reader:SECRET-registry-userinfo@127.0.0.1:1/apis/ccompat/v7",
        )
        .env(
            "SCHEMA_REGISTRY_BEARER_AUTH_TOKEN",
            "SECRET-registry-bearer",
        )
        .env("LOG_LEVEL", "debug")
        .output()
        .expect("run orderflow");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_clean(what: &str, output: &str) {
    for secret in SECRETS {
        assert!(!output.contains(secret), "{what} shows {secret}:\n{output}");
    }
}

#[test]
fn help_never_shows_a_secret_from_the_environment() {
    for command in [
        &["--help"][..],
        &["lag", "--help"],
        &["topics", "apply", "--help"],
        &["dlq", "redrive", "--help"],
        &["dlq", "list", "--help"],
        &["registry", "register", "--help"],
        &["outbox", "--help"],
        &["verify", "--help"],
    ] {
        let output = orderflow(command);
        assert!(output.contains("Usage"), "{command:?}: {output}");
        assert_clean(&format!("{command:?}"), &output);
    }
}

#[test]
fn failing_start_ups_never_log_a_secret() {
    for command in [
        &["lag", "--group", "g"][..],
        &["dlq", "list", "--topic", "orders.dlq"],
        &["topics", "diff"],
    ] {
        let output = orderflow(command);
        // The Kafka settings are described at start-up; the secrets in them are not.
        assert_clean(&format!("{command:?}"), &output);
    }
}
