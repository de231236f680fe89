//! The Prometheus and Grafana configuration under deploy/: promtool accepts it, and
//! every metric the dashboard and the alert rules query is one the binaries export.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    let full = repo().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// Every `orderflow_...` identifier in `text`.
fn metric_tokens(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("orderflow_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary {
            out.insert(text[start..end].to_owned());
        }
        i = end;
    }
    out
}

/// Metric names the binaries register: the lag crate's list, plus the names written
/// as string literals in the producer's and consumer's metrics modules.
fn exported() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = orderflow_lag::metrics::METRIC_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    for module in ["producers/src/metrics.rs", "consumers/src/metrics.rs"] {
        let source = read(module);
        for piece in source.split('"').skip(1).step_by(2) {
            if piece.starts_with("orderflow_")
                && piece
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                names.insert(piece.to_owned());
            }
        }
    }
    names
}

fn is_exported(name: &str, exported: &BTreeSet<String>) -> bool {
    if exported.contains(name) {
        return true;
    }
    // Histogram series: <name>_bucket, <name>_count, <name>_sum.
    ["_bucket", "_count", "_sum"].iter().any(|suffix| {
        name.strip_suffix(suffix)
            .is_some_and(|base| exported.contains(base))
    })
}

fn promtool() -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("promtool not found on PATH: install Debian's prometheus package (apt-get install prometheus) to check deploy/prometheus")
    })
}

#[test]
fn promtool_accepts_config_and_alert_rules() {
    let promtool = promtool();
    for args in [
        ["check", "config", "deploy/prometheus/prometheus.yml"],
        ["check", "rules", "deploy/prometheus/alerts.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(repo())
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Names of the alerts in alerts.yml.
fn alert_names() -> BTreeSet<String> {
    let rules: serde_json::Value =
        serde_saphyr::from_str(&read("deploy/prometheus/alerts.yml")).expect("alerts.yml is YAML");
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_alert_has_a_promtool_test_that_fires_and_one_that_does_not() {
    let out = Command::new(promtool())
        .args(["test", "rules", "deploy/prometheus/alerts_test.yml"])
        .current_dir(repo())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool test rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let tests: serde_json::Value =
        serde_saphyr::from_str(&read("deploy/prometheus/alerts_test.yml"))
            .expect("alerts_test.yml is YAML");
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for case in tests["tests"].as_array().expect("tests") {
        for check in case["alert_rule_test"].as_array().expect("alert_rule_test") {
            let name = check["alertname"].as_str().expect("alertname").to_owned();
            let expected = check["exp_alerts"]
                .as_array()
                .map_or(0, |alerts| alerts.len());
            if expected > 0 {
                fires.insert(name);
            } else {
                silent.insert(name);
            }
        }
    }
    for alert in alert_names() {
        assert!(
            fires.contains(&alert),
            "{alert}: no promtool case where it fires"
        );
        assert!(
            silent.contains(&alert),
            "{alert}: no promtool case where it stays silent"
        );
    }
}

#[test]
fn alerts_on_lasting_problems_use_levels_and_absent() {
    let alerts = read("deploy/prometheus/alerts.yml");
    assert!(
        !alerts.contains("increase(orderflow_consumergroup_lost_records"),
        "lost records must be alerted on as a level: increase() resolves while the group is still below the log start"
    );
    assert!(
        alerts.contains("absent(orderflow_consumergroup_status{group=\"order-projection\"})"),
        "the expected group order-projection needs an absent() alert"
    );
}

#[test]
fn dashboard_and_alerts_query_only_exported_metrics() {
    let exported = exported();
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/dashboards/orderflow-lag.json"))
            .expect("dashboard is JSON");
    let alerts = read("deploy/prometheus/alerts.yml");
    let used = metric_tokens(&dashboard.to_string())
        .union(&metric_tokens(&alerts))
        .cloned()
        .collect::<BTreeSet<_>>();
    let unknown: Vec<&String> = used.iter().filter(|n| !is_exported(n, &exported)).collect();
    assert!(
        unknown.is_empty(),
        "queried but never exported: {unknown:?}; exported: {exported:?}"
    );

    // The panels the dashboard promises.
    for wanted in [
        "orderflow_consumergroup_lag_sum",
        "orderflow_consumergroup_lag_seconds",
        "orderflow_consumergroup_consume_rate",
        "orderflow_consumergroup_status",
        "orderflow_consumer_processing_seconds_bucket",
        "orderflow_consumer_event_age_seconds_bucket",
        "orderflow_consumer_paused_partitions",
        "orderflow_consumer_circuit_breaker_state",
        "orderflow_dlq_records",
    ] {
        assert!(used.contains(wanted), "dashboard lacks {wanted}");
    }
    assert!(metric_tokens(&alerts).contains("orderflow_consumergroup_lag_seconds"));
    assert!(
        alerts.contains("orderflow_consumergroup_status == 4"),
        "STOPPED alert missing"
    );
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(
        panels
            .iter()
            .filter(|p| p["type"] != "row")
            .all(|p| p["datasource"]["uid"] == "prometheus")
    );
}

#[test]
fn metric_tokens_finds_names_at_word_boundaries() {
    let t =
        metric_tokens(r#"sum(rate(orderflow_a_total[1m])) / x_orderflow_b + orderflow_c_bucket"#);
    assert_eq!(
        t,
        BTreeSet::from([
            "orderflow_a_total".to_owned(),
            "orderflow_c_bucket".to_owned()
        ])
    );
}
