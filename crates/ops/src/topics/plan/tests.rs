//! Unit tests of the plan: what apply would change, and what it refuses.

use super::*;
use crate::topics::config_value::ConfigValue;
use crate::topics::topic_name::TopicName;

fn desired(name: &str, partitions: i32, configs: &[(&str, &str)]) -> DesiredTopic {
    DesiredTopic {
        name: TopicName::new(name).unwrap(),
        partitions,
        replication_factor: 1,
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), ConfigValue::new(*v)))
            .collect(),
    }
}

fn observed(partitions: i32, configs: &[(&str, &str)]) -> ObservedTopic {
    ObservedTopic {
        partitions,
        replication_factor: 1,
        configs: configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        keys: None,
    }
}

fn cluster(topics: &[(&str, ObservedTopic)]) -> BTreeMap<String, ObservedTopic> {
    topics
        .iter()
        .map(|(name, topic)| (name.to_string(), topic.clone()))
        .collect()
}

#[test]
fn missing_topic_is_created_with_its_configs() {
    let plan = Plan::compute(
        &[desired("orders", 12, &[("retention.ms", "1000")])],
        &BTreeMap::new(),
        PlanOptions::default(),
    );
    assert_eq!(
        plan.changes,
        [Change::CreateTopic {
            topic: "orders".into(),
            partitions: 12,
            replication_factor: 1,
            configs: [("retention.ms".to_string(), "1000".to_string())].into(),
        }]
    );
    assert!(plan.refusals.is_empty());
}

#[test]
fn matching_cluster_gives_an_empty_plan_and_ignores_unnamed_configs() {
    let want = [desired("orders", 12, &[("retention.ms", "1000")])];
    let have = cluster(&[(
        "orders",
        observed(12, &[("retention.ms", "1000"), ("segment.bytes", "1")]),
    )]);
    let plan = Plan::compute(&want, &have, PlanOptions::default());
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn more_partitions_and_changed_configs_are_planned() {
    let want = [desired(
        "orders",
        12,
        &[("retention.ms", "2000"), ("cleanup.policy", "delete")],
    )];
    let have = cluster(&[(
        "orders",
        observed(6, &[("retention.ms", "1000"), ("segment.ms", "60000")]),
    )]);
    let plan = Plan::compute(&want, &have, PlanOptions::default());
    assert_eq!(
        plan.changes,
        [
            Change::AddPartitions {
                topic: "orders".into(),
                from: 6,
                to: 12,
                reason: None,
                key_moves: None,
            },
            Change::SetConfig {
                topic: "orders".into(),
                key: "cleanup.policy".into(),
                from: None,
                to: "delete".into()
            },
            Change::SetConfig {
                topic: "orders".into(),
                key: "retention.ms".into(),
                from: Some("1000".into()),
                to: "2000".into()
            },
        ]
    );
}

#[test]
fn fewer_partitions_is_refused_with_what_to_do() {
    let plan = Plan::compute(
        &[desired("orders", 6, &[])],
        &cluster(&[("orders", observed(12, &[]))]),
        PlanOptions::default(),
    );
    assert!(plan.changes.is_empty());
    assert_eq!(
        plan.refusals,
        [Refusal::PartitionDecrease {
            topic: "orders".into(),
            from: 12,
            to: 6
        }]
    );
    let message = plan.refusals[0].to_string();
    assert!(
        message.contains("Kafka cannot lower a partition count"),
        "{message}"
    );
    assert!(message.contains("set partitions back to 12"), "{message}");
}

#[test]
fn replication_factor_drift_is_refused() {
    let mut want = desired("orders", 3, &[]);
    want.replication_factor = 3;
    let plan = Plan::compute(
        &[want],
        &cluster(&[("orders", observed(3, &[]))]),
        PlanOptions::default(),
    );
    assert_eq!(
        plan.refusals,
        [Refusal::ReplicationFactorChange {
            topic: "orders".into(),
            from: 1,
            to: 3
        }]
    );
}

#[test]
fn topics_only_in_the_cluster_are_left_alone() {
    let plan = Plan::compute(
        &[],
        &cluster(&[("legacy", observed(1, &[]))]),
        PlanOptions::default(),
    );
    assert!(plan.is_empty());
}

fn keyed(mut topic: ObservedTopic, keys: &[&str]) -> ObservedTopic {
    let partitions = u32::try_from(topic.partitions).unwrap();
    topic.keys = Some(KeySample {
        records: keys.len() as u64,
        keys: keys
            .iter()
            .map(|k| {
                let now =
                    orderflow_runtime::partitioner::partition_for_key(k.as_bytes(), partitions);
                (k.as_bytes().to_vec(), now)
            })
            .collect(),
    });
    topic
}

#[test]
fn a_keyed_topic_gains_partitions_only_with_allow_key_moves() {
    let keys: Vec<String> = (0..40).map(|n| format!("order-{n}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let have = cluster(&[("orders", keyed(observed(3, &[]), &keys))]);
    let want = [desired("orders", 6, &[])];
    let refused = Plan::compute(&want, &have, PlanOptions::default());
    assert!(refused.changes.is_empty(), "{refused:?}");
    let [Refusal::KeyedPartitionIncrease { key_moves, .. }] = refused.refusals.as_slice() else {
        panic!("expected a keyed refusal: {refused:?}");
    };
    assert!(key_moves.moving_keys > 0, "{key_moves:?}");
    let message = refused.refusals[0].to_string();
    assert!(message.contains("--allow-key-moves"), "{message}");
    assert!(
        message.contains("sampled keys change partition"),
        "{message}"
    );

    let allowed = Plan::compute(
        &want,
        &have,
        PlanOptions {
            allow_key_moves: true,
        },
    );
    assert!(allowed.refusals.is_empty());
    assert!(matches!(
        &allowed.changes[..],
        [Change::AddPartitions {
            to: 6,
            key_moves: Some(_),
            ..
        }]
    ));
    // No keys read (an empty topic, or null keys): nothing moves, nothing to refuse.
    let unkeyed = cluster(&[("orders", observed(3, &[]))]);
    assert!(
        Plan::compute(&want, &unkeyed, PlanOptions::default())
            .refusals
            .is_empty()
    );
}

#[test]
fn a_dlq_is_kept_in_step_with_its_source() {
    // The DLQ is not in the file: raised with the source.
    let plan = Plan::compute(
        &[desired("orders", 6, &[])],
        &cluster(&[
            ("orders", observed(3, &[])),
            ("orders.dlq", observed(3, &[])),
        ]),
        PlanOptions::default(),
    );
    assert_eq!(
        plan.changes,
        [
            Change::AddPartitions {
                topic: "orders".into(),
                from: 3,
                to: 6,
                reason: None,
                key_moves: None
            },
            Change::AddPartitions {
                topic: "orders.dlq".into(),
                from: 3,
                to: 6,
                reason: Some("in step with orders".into()),
                key_moves: None
            },
        ]
    );
    // The file gives the DLQ fewer partitions than its source: created with the source's.
    let plan = Plan::compute(
        &[desired("orders", 6, &[]), desired("orders.dlq", 2, &[])],
        &BTreeMap::new(),
        PlanOptions::default(),
    );
    assert!(matches!(
        &plan.changes[1],
        Change::CreateTopic { topic, partitions: 6, .. } if topic == "orders.dlq"
    ));
}

#[test]
fn changes_render_for_people_and_as_tagged_json() {
    let change = Change::SetConfig {
        topic: "orders".into(),
        key: "retention.ms".into(),
        from: None,
        to: "1000".into(),
    };
    assert_eq!(
        change.to_string(),
        "~ orders: retention.ms (not set) -> 1000"
    );
    let json = serde_json::to_value(&change).unwrap();
    assert_eq!(json["kind"], "set_config");
    assert_eq!(json["from"], serde_json::Value::Null);
}
