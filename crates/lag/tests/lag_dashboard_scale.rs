//! The dashboard with 200 real consumer groups (on the shared broker, under a random
//! prefix), in headless Chromium: the groups that need attention come first (status
//! severity, then lag), the groups without members and with nothing to read fold away
//! behind one line that unfolds them, and the filter box narrows the groups by name as
//! a person types. Screenshots under target/.
//!
//! The 198 groups without members are made the cheap way a manually assigned consumer
//! makes one: an offset commit per group, no membership; two more have live members.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::dashboard::{Driver, chromium, dashboard_dir, exporter, wait_for_groups};
use tokio_util::sync::CancellationToken;

const GROUPS: usize = 200;
const RECORDS: i64 = 15;

/// Waits until `/api/groups` shows each (group, status) of `expected` (90 s bound), so
/// the page is opened on figures that are already there.
async fn wait_for_statuses(base: &str, expected: &[(&str, &str)]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let body: Option<Value> = match reqwest::get(format!("{base}/api/groups")).await {
            Ok(res) if res.status().is_success() => res.json().await.ok(),
            _ => None,
        };
        let status_of = |group: &str| {
            body.as_ref()
                .and_then(|b| b["snapshot"]["groups"].as_array())
                .and_then(|all| all.iter().find(|g| g["group"] == group))
                .map(|g| g["status"].clone())
        };
        let missing: Vec<_> = expected
            .iter()
            .filter(|(group, status)| status_of(group) != Some(json!(status)))
            .map(|(group, status)| (group, status, status_of(group)))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "statuses not reached within 90 s (group, wanted, shown): {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn names(cards: &Value) -> Vec<String> {
    cards
        .as_array()
        .expect("cards")
        .iter()
        .map(|c| c["group"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_groups_attention_first_the_idle_folded_and_a_filter() {
    let chromium = chromium();
    let dashboard = dashboard_dir();
    let prefix = orderflow_testkit::unique_name("dash200");
    let topic = format!("{prefix}-orders");
    orderflow_testkit::create_topic(&topic, 1).await;
    support::produce(&topic, 0, RECORDS as usize).await;

    let name = |i: usize, what: &str| format!("{prefix}-{i:03}-{what}");
    // Severity first: both STOPPED groups before the STALLED one, whose lag (12) is the
    // largest; within STOPPED, the larger lag first. A caught-up group with a member
    // stays in view, after them.
    let stopped_big = name(10, "stopped"); // no member, committed 5: lag 10
    let working = name(100, "working"); // a member, caught up
    let stalled = name(150, "stalled"); // a member that stays at offset 3: lag 12
    let stopped_small = name(190, "stopped"); // no member, committed 11: lag 4
    let special = [10, 100, 150, 190];
    let idle: Vec<String> = (0..GROUPS)
        .filter(|i| !special.contains(i))
        .map(|i| name(i, "idle"))
        .collect();

    // Offset commits without membership, eight threads at a time.
    let mut commits: Vec<(String, i64)> = idle.iter().map(|g| (g.clone(), RECORDS)).collect();
    commits.push((stopped_big.clone(), 5));
    commits.push((stopped_small.clone(), 11));
    let chunks: Vec<Vec<(String, i64)>> = commits.chunks(25).map(<[_]>::to_vec).collect();
    let committers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let topic = topic.clone();
            tokio::task::spawn_blocking(move || {
                for (group, offset) in chunk {
                    support::commit(&group, &topic, &[(0, offset)]);
                }
            })
        })
        .collect();
    for committer in committers {
        committer.await.expect("offsets committed");
    }
    let joins = [(working.clone(), RECORDS), (stalled.clone(), 3)].map(|(group, commit)| {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            support::IdleMember::join_as(
                "dash200-member",
                &group,
                &topic,
                "classic",
                &[(0, commit)],
            )
        })
    });
    let mut members = Vec::new();
    for join in joins {
        members.push(join.await.expect("member joins"));
    }

    let all: Vec<&str> = idle
        .iter()
        .chain([&stopped_big, &working, &stalled, &stopped_small])
        .map(String::as_str)
        .collect();
    assert_eq!(all.len(), GROUPS);
    let token = CancellationToken::new();
    let (main, base) = exporter(support::engine_of(&all, Duration::from_secs(4)), &token).await;
    wait_for_groups(&base, &all).await;
    let expected = [
        (stopped_big.as_str(), "STOPPED"),
        (stopped_small.as_str(), "STOPPED"),
        (stalled.as_str(), "STALLED"),
        (working.as_str(), "CAUGHT_UP"),
    ];
    wait_for_statuses(&base, &expected).await;

    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    // Groups 190 to 199: the small STOPPED one in view and nine folded.
    let filter = format!("{prefix}-19").to_uppercase();
    let mut driver = Driver::spawn(&dashboard, &chromium, "dashboard_scale_check.mjs");
    driver.expect("ready");
    driver.send(
        &json!({
            "url": format!("{base}/"),
            "expect": expected.iter().map(|(g, s)| (g.to_string(), json!(s))).collect::<serde_json::Map<_, _>>(),
            "filter": filter,
            "screenshots": screenshots,
        })
        .to_string(),
    );
    let page = driver.expect("page");

    // Attention first, then the caught-up group with a member; nothing else in view.
    let first = &page["first"];
    assert_eq!(
        names(&first["in_view"]),
        [
            stopped_big.clone(),
            stopped_small.clone(),
            stalled.clone(),
            working.clone()
        ],
        "{first}"
    );
    assert_eq!(first["count"], "200 group(s)", "{first}");
    // The lag chart draws at most ten groups, those in view before any folded one.
    let charted: Vec<String> = first["chart"]
        .as_array()
        .expect("chart legend")
        .iter()
        .filter_map(|label| label.as_str())
        .filter(|label| label.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    assert_eq!(charted.len(), 10, "{charted:?}");
    for group in [&stopped_big, &stopped_small, &stalled, &working] {
        assert!(charted.contains(group), "{group} not charted: {charted:?}");
    }
    let folded = &first["folded"];
    assert_eq!(folded["hidden"], false, "{folded}");
    assert_eq!(folded["open"], false, "folded at first: {folded}");
    assert!(
        folded["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("196 group(s) without members")),
        "{folded}"
    );
    let folded_cards = folded["cards"].as_array().expect("folded cards");
    assert_eq!(folded_cards.len(), idle.len(), "{folded}");
    assert!(
        folded_cards
            .iter()
            .all(|c| c["visible"] == false && c["status"] == "CAUGHT_UP"),
        "folded cards are out of view: {folded}"
    );

    // Unfolded on a click, every idle group is there to see.
    let expanded = &page["expanded"]["folded"];
    assert_eq!(expanded["open"], true, "{expanded}");
    let shown: Vec<String> = names(&expanded["cards"]);
    let mut wanted = idle.clone();
    wanted.sort();
    assert_eq!(shown, wanted, "the idle groups, by name");
    assert!(
        expanded["cards"]
            .as_array()
            .is_some_and(|cards| cards.iter().all(|c| c["visible"] == true)),
        "{expanded}"
    );

    // The filter (any case) narrows to groups 190-199.
    let filtered = &page["filtered"];
    assert_eq!(
        names(&filtered["in_view"]),
        std::slice::from_ref(&stopped_small),
        "{filtered}"
    );
    assert_eq!(
        names(&filtered["folded"]["cards"]),
        (191..200).map(|i| name(i, "idle")).collect::<Vec<_>>(),
        "{filtered}"
    );
    assert_eq!(filtered["count"], "10 of 200 group(s) match", "{filtered}");
    for shot in page["screenshots"].as_array().expect("screenshots") {
        let shot = shot.as_str().unwrap_or_default();
        assert!(Path::new(shot).is_file(), "no screenshot {shot}");
    }
    let done = driver.expect("done");
    assert_eq!(done["console_errors"], json!([]), "{done}");
    driver.wait();

    drop(members);
    token.cancel();
    for task in main.tasks {
        let _ = task.await;
    }
}
