//! The two commands: a chaos run over its scenarios, and a standalone verification.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::args::{RunArgs, VerifyArgs};
use crate::infra::{Cluster, PrivatePostgres, Registry};
use crate::report;
use crate::scenario::{self, Outcome, Run};
use crate::verifier::{self, DlqDuplicates, Target};

/// Runs every scenario; `Ok(false)` when one failed. SIGINT or SIGTERM stops the run and
/// every process it started.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    for s in &args.scenarios {
        if !('a'..='k').contains(s) {
            bail!("unknown scenario {s} (a to k)");
        }
    }
    for binary in ["orderflow", "order-producer", "order-consumer"] {
        let path = args.bin_dir.join(binary);
        if !path.exists() {
            bail!("{} missing: build it first", path.display());
        }
    }
    let root = std::fs::canonicalize(&args.root).context("--root")?;
    let work = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => root.join(".scratch").join(format!(
            "chaos-{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S"),
            std::process::id()
        )),
    };
    std::fs::create_dir_all(&work)?;
    let work = std::fs::canonicalize(&work)?;

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let cluster = Arc::new(Cluster::open(&root, args.cluster_dir.as_deref(), &work).await?);
    let outcome = tokio::select! {
        outcome = scenarios(&args, &root, &work, cluster.clone()) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        _ = terminate.recv() => Err(anyhow::anyhow!("terminated")),
    };
    cluster.stop_if_started(&work.join("cluster.log")).await;
    outcome
}

async fn scenarios(
    args: &RunArgs,
    root: &std::path::Path,
    work: &std::path::Path,
    cluster: Arc<Cluster>,
) -> anyhow::Result<bool> {
    let pg = Arc::new(PrivatePostgres::start(work).await?);
    println!(
        "private PostgreSQL on 127.0.0.1:{} ({}/pg)",
        pg.port,
        work.display()
    );
    let result = async {
        let registry = Registry::open(args.schema_registry_url.clone(), root, &pg, work).await?;
        let rate = args.rate.unwrap_or((args.events / 40).max(250));
        println!(
            "cluster {}, registry {}, {} events at {rate}/s, {} workers, protocol {}",
            cluster.bootstrap, registry.url, args.events, args.workers, args.group_protocol
        );
        let run = Run {
            bin: std::fs::canonicalize(&args.bin_dir)?,
            work: work.to_path_buf(),
            cluster: cluster.clone(),
            pg: pg.clone(),
            registry: registry.url.clone(),
            api_token: format!("chaos:{}", uuid::Uuid::new_v4().simple()),
            events: args.events,
            rate,
            workers: args.workers,
            protocol: args.group_protocol.clone(),
            drain_timeout: Duration::from_secs(args.drain_timeout),
            lane_poison: args.lane_poison,
            max_buffered: args.max_buffered,
            rss_bound_mib: args.rss_bound_mib,
        };
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut failed = false;
        for &s in &args.scenarios {
            match scenario::run(&run, s).await {
                Ok(outcome) => {
                    println!("scenario {s}: {}", if outcome.ok { "ok" } else { "FAILED" });
                    failed |= !outcome.ok;
                    outcomes.push(outcome);
                }
                Err(error) => {
                    println!("scenario {s}: FAILED to run: {error:#}");
                    failed = true;
                }
            }
        }
        print!("{}", report::table(&outcomes, work));
        print!("{}", report::independent_table(&outcomes));
        print!("{}", report::violations(&outcomes, 20));
        let path = args
            .report
            .clone()
            .unwrap_or_else(|| work.join("report.json"));
        let json = serde_json::json!({
            "protocol": args.group_protocol,
            "events": args.events,
            "rate": rate,
            "scenarios": outcomes,
            "ok": !failed,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
        println!("report: {}", path.display());
        drop(registry);
        anyhow::Ok(!failed)
    }
    .await;
    pg.shut_down().await;
    result
}

/// Verifies one target; prints the verdict as JSON, violations on stderr.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<bool> {
    let target = Target {
        brokers: args.brokers,
        registry: args.schema_registry_url,
        dlq_topic: args
            .dlq_topic
            .unwrap_or_else(|| orderflow_contracts::dead_letter::dlq_topic(&args.topic)),
        topic: args.topic,
        group: args.group,
        database_url: args.database_url,
        stall_timeout: args.stall_timeout,
    };
    let tolerance = if args.crash_window {
        DlqDuplicates::CrashWindow
    } else {
        DlqDuplicates::Forbidden
    };
    let verdict = verifier::verify(&target, tolerance).await?;
    println!("{}", serde_json::to_string(&verdict.ledger)?);
    for line in &verdict.tolerated {
        eprintln!("tolerated (crash window): {line}");
    }
    for line in &verdict.violations {
        eprintln!("violation: {line}");
    }
    Ok(verdict.violations.is_empty())
}
