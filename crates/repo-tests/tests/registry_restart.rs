//! Schemas survive a registry restart: an Apicurio Registry of this test's own, started
//! with `scripts/apicurio.sh run` on a fresh PostgreSQL database, is stopped with SIGTERM
//! and started again on the same database; subjects, versions, ids and the subject's
//! compatibility setting read back the same, and still drive `orderflow registry register`.

mod apicurio;

use std::path::Path;
use std::process::Output;

use apicurio::Apicurio;
use orderflow_testkit::registry_cli::{
    assert_refused_as_incompatible, breaking_schema_file, registered_id, schema_file,
};
use serde_json::{Value, json};

/// `orderflow registry register` against `url`.
fn register(url: &str, subject: &str, file: &Path) -> Output {
    let orderflow = orderflow_testkit::workspace_binary("orderflow");
    orderflow_testkit::registry_cli::register(&orderflow, url, subject, file)
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

    let first = Apicurio::start(&database_url, &[], |url| http().get(url)).await;
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

    let second = Apicurio::start(&database_url, &[], |url| http().get(url)).await;
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
