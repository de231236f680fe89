//! The table chaos.sh printed (same columns), a second table with the independent
//! verifier's ledger and the workers' memory, and the JSON report of the whole run.

use serde_json::Value;

use crate::scenario::Outcome;

fn n(v: &Value, key: &str) -> String {
    v.get(key).map_or("?".into(), |x| x.to_string())
}

/// The first table: one row per scenario, as chaos.sh printed it.
pub fn table(outcomes: &[Outcome], work: &std::path::Path) -> String {
    let mut out = format!(
        "\n{:<9} {:>8} {:>8} {:>5} {:>13} {:>13} {:>8} {:<16} {:>7} {:>11} {:>13} {}\n",
        "scenario",
        "events",
        "distinct",
        "lost",
        "applied_twice",
        "dlq exp/act",
        "dlq_dups",
        "http ack/mis/2x/cp",
        "drain",
        "assignments",
        "retries db/http",
        "verdict"
    );
    for o in outcomes {
        let s = &o.verify;
        if s.is_null() {
            out.push_str(&format!(
                "{:<9} verifier failed (exit {})\n",
                o.scenario, o.verify_exit
            ));
            continue;
        }
        let http_retries = o
            .http
            .as_ref()
            .map_or("?".into(), |h| h.retries.to_string());
        out.push_str(&format!(
            "{:<9} {:>8} {:>8} {:>5} {:>13} {:>6}/{:<6} {:>8} {:>6}/{}/{}/{:<4} {:>7} {:>11} {:>7}/{:<5} {}\n",
            o.scenario,
            n(s, "events"),
            n(s, "distinct"),
            n(s, "lost"),
            n(s, "applied_twice"),
            n(s, "dlq_expected"),
            n(s, "dlq_actual"),
            n(s, "dlq_duplicates"),
            n(s, "http_acknowledged"),
            n(s, "http_missing"),
            n(s, "http_changed_twice"),
            n(s, "http_record_copies"),
            format!("{}s{}", o.drain_seconds, if o.drained { "" } else { "!" }),
            o.logs.assignments,
            o.logs.db_retries,
            http_retries,
            if o.verify_exit == 0 { "ok" } else { "VIOLATION" },
        ));
    }
    out.push_str(
        "(events: valid records incl. duplicates; http: changes the order API acknowledged /\n \
         missing from the topic / in it as two events / records the relay sent again;\n \
         drain: from the workloads' end to lag 0; assignments: \"partitions assigned\" log\n \
         lines over all workers; retries: records the workers retried after a database\n \
         failure / HTTP requests the client sent again; ",
    );
    out.push_str(&format!("logs in {})\n", work.display()));
    out
}

/// The second table: the independent verifier's ledger and memory.
pub fn independent_table(outcomes: &[Outcome]) -> String {
    let mut out = format!(
        "\n{:<9} {:>7} {:>7} {:>6} {:>6} {:>7} {:>6} {:>9} {:>9} {:>8} {:>9} {:>10} {}\n",
        "scenario",
        "seen",
        "applied",
        "dlq",
        "dups",
        "skipped",
        "poison",
        "valid>dlq",
        "dlq_dups",
        "proj_bad",
        "rss MiB",
        "buffered",
        "independent"
    );
    for o in outcomes {
        let rss = o.memory.iter().map(|m| m.peak_rss_kib).max().unwrap_or(0) / 1024;
        let buffered = o
            .memory
            .iter()
            .map(|m| m.peak_buffered as u64)
            .max()
            .unwrap_or(0);
        let Some(v) = &o.independent else {
            out.push_str(&format!(
                "{:<9} verifier failed; {:>50} {:>10}\n",
                o.scenario, rss, buffered
            ));
            continue;
        };
        let l = &v.ledger;
        let verdict = if v.violations.is_empty() {
            "ok".to_string()
        } else {
            format!("{} VIOLATIONS", v.violations.len())
        };
        let tolerated = if v.tolerated.is_empty() {
            String::new()
        } else {
            " (dlq dups tolerated: crash window)".into()
        };
        out.push_str(&format!(
            "{:<9} {:>7} {:>7} {:>6} {:>6} {:>7} {:>6} {:>9} {:>9} {:>8} {:>9} {:>10} {verdict}{tolerated}\n",
            o.scenario, l.seen, l.applied, l.dead_lettered, l.duplicates, l.skipped, l.poison,
            l.valid_dead_lettered, l.dlq_duplicates, l.projection_mismatches, rss, buffered,
        ));
    }
    out.push_str(
        "(independent verifier, its own Avro decoding and projection model: every source record\n \
         by (partition, offset) is applied, dead-lettered or a copy of an event applied before\n \
         it; valid>dlq: valid events dead-lettered; proj_bad: orders whose row differs from the\n \
         replay of their applied events; rss/buffered: peak over the workers, sampled each second)\n",
    );
    out
}

/// Violations of each scenario, named per record (at most `limit` lines a scenario).
pub fn violations(outcomes: &[Outcome], limit: usize) -> String {
    let mut out = String::new();
    for o in outcomes {
        for error in &o.errors {
            out.push_str(&format!("scenario {}: {error}\n", o.scenario));
        }
        if let Some(v) = &o.independent {
            for line in v.tolerated.iter().take(limit) {
                out.push_str(&format!(
                    "scenario {} tolerated (crash window): {line}\n",
                    o.scenario
                ));
            }
            for line in v.violations.iter().take(limit) {
                out.push_str(&format!("scenario {} independent: {line}\n", o.scenario));
            }
            if v.violations.len() > limit {
                out.push_str(&format!(
                    "scenario {} independent: ... {} more in {}/independent.json\n",
                    o.scenario,
                    v.violations.len() - limit,
                    o.dir.display()
                ));
            }
        }
        if o.verify_exit != 0 {
            out.push_str(&format!(
                "scenario {}: orderflow verify exited {} (see {}/verify.log)\n",
                o.scenario,
                o.verify_exit,
                o.dir.display()
            ));
        }
    }
    out
}
