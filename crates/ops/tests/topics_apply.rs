//! Topics as code against the real broker (KAFKA_BROKERS), through the library API:
//! apply creates, a second apply changes nothing, more partitions are added, fewer
//! partitions are refused, and a config change leaves configs set outside the file alone.

mod topics_support;

use std::path::{Path, PathBuf};

use orderflow_ops::topics::{
    Change, DesiredTopic, Plan, PlanOptions, Refusal, ResolveOptions, TopicsAdmin, TopicsFile,
};
use orderflow_runtime::kafka::KafkaArgs;
use orderflow_testkit as testkit;
use topics_support::{configs, partition_count, set_config_outside_the_file, topic_level_configs};

/// A topics file with the two topics, the way topics.yaml declares orders and its DLQ.
fn write_topics_file(dir: &Path, orders: &str, dlq: &str, partitions: i32) -> PathBuf {
    let path = dir.join("topics.yaml");
    let text = format!(
        "\
defaults:
  replication_factor: 1
  configs:
    cleanup.policy: delete
topics:
  {orders}:
    partitions: {partitions}
    configs:
      retention.ms: 604800000
  {dlq}:
    partitions: 2
    configs:
      retention.ms: 1209600000
environments:
  local: {{}}
"
    );
    std::fs::write(&path, text).expect("write topics file");
    path
}

fn desired(path: &Path) -> Vec<DesiredTopic> {
    let options = ResolveOptions {
        environment: "local".into(),
        replication_factor: None,
    };
    TopicsFile::load(path)
        .expect("topics file parses")
        .resolve(path, &options)
        .expect("topics file resolves")
}

async fn admin() -> TopicsAdmin {
    TopicsAdmin::connect(&KafkaArgs::for_brokers(testkit::kafka_brokers()))
        .await
        .expect("connect to the test broker")
}

#[tokio::test]
async fn apply_creates_is_idempotent_raises_and_refuses_to_lower_partitions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let orders = testkit::unique_name("orders");
    let dlq = format!("{orders}.dlq");
    let admin = admin().await;

    // First apply: both topics are created with their partition counts.
    let path = write_topics_file(dir.path(), &orders, &dlq, 3);
    let plan = admin
        .plan(&desired(&path), PlanOptions::default())
        .await
        .expect("plan");
    assert_eq!(plan.changes.len(), 2, "{plan:?}");
    assert!(
        plan.changes
            .iter()
            .all(|change| matches!(change, Change::CreateTopic { .. }))
    );
    let applied = admin
        .apply(&plan)
        .await
        .expect("apply")
        .into_result()
        .expect("every change applied");
    assert_eq!(applied.len(), 2);
    assert_eq!(partition_count(&orders), 3);
    // The file gives the DLQ 2, but a DLQ never has fewer partitions than its source.
    assert_eq!(partition_count(&dlq), 3);

    // Second apply: nothing left to do, configs set at creation included.
    let plan = admin
        .plan(&desired(&path), PlanOptions::default())
        .await
        .expect("plan");
    assert!(plan.is_empty(), "second plan should be empty: {plan:?}");

    // More partitions: added.
    let path = write_topics_file(dir.path(), &orders, &dlq, 5);
    let plan = admin
        .plan(&desired(&path), PlanOptions::default())
        .await
        .expect("plan");
    let expected = [
        Change::AddPartitions {
            topic: orders.clone(),
            from: 3,
            to: 5,
            reason: None,
            key_moves: None,
        },
        Change::AddPartitions {
            topic: dlq.clone(),
            from: 3,
            to: 5,
            reason: Some(format!("in step with {orders}")),
            key_moves: None,
        },
    ];
    assert_eq!(plan.changes, expected);
    let applied = admin
        .apply(&plan)
        .await
        .expect("apply")
        .into_result()
        .expect("partitions added");
    assert_eq!(applied, expected);
    assert_eq!(partition_count(&orders), 5);
    assert_eq!(partition_count(&dlq), 5);
    assert!(
        admin
            .plan(&desired(&path), PlanOptions::default())
            .await
            .expect("plan")
            .is_empty()
    );
    let have = 5;

    // Fewer partitions: refused before anything is sent.
    let path = write_topics_file(dir.path(), &orders, &dlq, 1);
    let plan = admin
        .plan(&desired(&path), PlanOptions::default())
        .await
        .expect("plan");
    assert_eq!(
        plan.refusals,
        [
            Refusal::PartitionDecrease {
                topic: orders.clone(),
                from: have,
                to: 1
            },
            // The DLQ went to 5 with its source; the file's 2 is a decrease now.
            Refusal::PartitionDecrease {
                topic: dlq.clone(),
                from: have,
                to: 2
            }
        ]
    );
    let err = admin.apply(&plan).await.expect_err("a decrease is refused");
    let message = err.to_string();
    assert!(
        message.contains("Kafka cannot lower a partition count"),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(partition_count(&orders), have as usize);
}

#[tokio::test]
async fn config_change_keeps_configs_set_outside_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let orders = testkit::unique_name("orders");
    let dlq = format!("{orders}.dlq");
    let admin = admin().await;
    let path = write_topics_file(dir.path(), &orders, &dlq, 1);
    let created = admin
        .apply(
            &admin
                .plan(&desired(&path), PlanOptions::default())
                .await
                .unwrap(),
        )
        .await;
    created.expect("apply").into_result().expect("created");

    // An operator sets a config the file does not name, with Kafka's own tool.
    set_config_outside_the_file(&dlq, "segment.ms=3600000");

    // The file now asks for a shorter retention on the DLQ: exactly one config change,
    // the config set outside the file is not drift.
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("1209600000", "86400000");
    std::fs::write(&path, text).unwrap();
    let plan: Plan = admin
        .plan(&desired(&path), PlanOptions::default())
        .await
        .expect("plan");
    assert_eq!(
        plan.changes,
        [Change::SetConfig {
            topic: dlq.clone(),
            key: "retention.ms".into(),
            from: Some("1209600000".into()),
            to: "86400000".into(),
        }]
    );

    admin
        .apply(&plan)
        .await
        .expect("apply")
        .into_result()
        .expect("config changed");
    assert_eq!(
        topic_level_configs(&dlq).await,
        configs(&[
            ("cleanup.policy", "delete"),
            ("retention.ms", "86400000"),
            ("segment.ms", "3600000"),
        ]),
        "the new retention is set and the operator's segment.ms survived"
    );
    assert!(
        admin
            .plan(&desired(&path), PlanOptions::default())
            .await
            .unwrap()
            .is_empty()
    );
}
