//! How a plan is shown: lines for people, JSON for scripts.

use std::path::Path;

use serde_json::json;

use super::plan::Plan;

/// Where a plan came from, for its heading.
#[derive(Debug, Clone, Copy)]
pub struct PlanSource<'a> {
    /// The topics file.
    pub file: &'a Path,
    /// The environment it was resolved for.
    pub environment: &'a str,
    /// The bootstrap brokers it was compared with.
    pub brokers: &'a str,
}

/// The plan as lines for a terminal: `+` create, `~` change, `!` refused, then a summary.
pub fn render_plan(plan: &Plan, source: PlanSource<'_>) -> String {
    let PlanSource {
        file,
        environment,
        brokers,
    } = source;
    if plan.is_empty() {
        return format!(
            "no drift: {brokers} matches {} (env {environment})\n",
            file.display()
        );
    }
    let mut out = format!(
        "drift between {} (env {environment}) and {brokers}:\n",
        file.display()
    );
    for change in &plan.changes {
        out.push_str(&format!("{change}\n"));
    }
    for refusal in &plan.refusals {
        out.push_str(&format!("{refusal}\n"));
    }
    out.push_str(&format!(
        "{} change(s) to apply, {} refused\n",
        plan.changes.len(),
        plan.refusals.len()
    ));
    out
}

/// The plan as one JSON document: `drift`, `changes` and `refusals` (each tagged by `kind`,
/// refusals with the `message` shown to people).
pub fn plan_json(plan: &Plan, source: PlanSource<'_>) -> serde_json::Value {
    let refusals: Vec<serde_json::Value> = plan
        .refusals
        .iter()
        .map(|refusal| {
            let mut value = serde_json::to_value(refusal).unwrap_or_default();
            value["message"] = json!(refusal.to_string().trim_start_matches("! "));
            value
        })
        .collect();
    json!({
        "file": source.file.display().to_string(),
        "environment": source.environment,
        "brokers": source.brokers,
        "drift": !plan.is_empty(),
        "changes": plan.changes,
        "refusals": refusals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::plan::Change;
    use crate::topics::refusal::Refusal;

    fn source() -> PlanSource<'static> {
        PlanSource {
            file: Path::new("topics.yaml"),
            environment: "local",
            brokers: "127.0.0.1:9092",
        }
    }

    fn drifted() -> Plan {
        Plan {
            changes: vec![Change::AddPartitions {
                topic: "orders".into(),
                from: 6,
                to: 12,
                reason: None,
                key_moves: None,
            }],
            refusals: vec![Refusal::PartitionDecrease {
                topic: "orders.dlq".into(),
                from: 12,
                to: 3,
            }],
        }
    }

    #[test]
    fn empty_plan_says_no_drift() {
        let text = render_plan(&Plan::default(), source());
        assert_eq!(
            text,
            "no drift: 127.0.0.1:9092 matches topics.yaml (env local)\n"
        );
    }

    #[test]
    fn drift_lists_changes_refusals_and_a_summary() {
        let text = render_plan(&drifted(), source());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "drift between topics.yaml (env local) and 127.0.0.1:9092:"
        );
        assert_eq!(lines[1], "~ orders: partitions 6 -> 12");
        assert!(lines[2].starts_with("! orders.dlq: the file asks for 3 partitions"));
        assert_eq!(lines[3], "1 change(s) to apply, 1 refused");
    }

    #[test]
    fn json_is_tagged_and_carries_messages() {
        let value = plan_json(&drifted(), source());
        assert_eq!(value["drift"], true);
        assert_eq!(value["changes"][0]["kind"], "add_partitions");
        assert_eq!(value["changes"][0]["to"], 12);
        assert_eq!(value["refusals"][0]["kind"], "partition_decrease");
        let message = value["refusals"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with("orders.dlq: the file asks for 3"),
            "{message}"
        );
    }
}
