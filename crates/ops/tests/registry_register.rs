//! The real `orderflow registry register` binary against the test registry
//! (`SCHEMA_REGISTRY_URL`, Apicurio's Confluent-compatible API under its global BACKWARD
//! rule): v1 then v2 of the order schema get ids, registering again answers the same id,
//! and a schema the rule refuses fails with one line.

mod support;

use orderflow_testkit as testkit;
use support::register;
use testkit::registry_cli::{
    assert_refused_as_incompatible, breaking_schema_file, registered_id, schema_file,
};

#[test]
fn versions_register_idempotently_and_a_breaking_schema_is_refused() {
    let url = testkit::registry_url();
    let subject = format!("{}-value", testkit::unique_name("orders"));
    let v1 = schema_file("order_event.v1.avsc");
    let v2 = schema_file("order_event.v2.avsc");

    let id1 = registered_id(&register(&url, &subject, &v1));
    let id2 = registered_id(&register(&url, &subject, &v2));
    assert_ne!(id1, id2, "v2 is a new schema");
    assert_eq!(registered_id(&register(&url, &subject, &v2)), id2);
    assert_eq!(
        registered_id(&register(&url, &subject, &v1)),
        id1,
        "an older version registered again keeps its id"
    );

    let dir = tempfile::tempdir().unwrap();
    let breaking = breaking_schema_file(dir.path());
    assert_refused_as_incompatible(&register(&url, &subject, &breaking), &subject);
}

#[test]
fn an_invalid_schema_file_fails_before_any_network_call() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.avsc");
    std::fs::write(
        &bad,
        r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"strng"}]}"#,
    )
    .unwrap();
    // Nothing listens on port 1: a network call would log a retry warning per attempt
    // and end in an "unreachable" error naming the URL.
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
        !stderr.contains("127.0.0.1:1"),
        "no call was made: {stderr}"
    );
}
