//! The HTTP workload: orders placed and moved through the order API as a careful client
//! does it, under faults. Four orders of five are created, paid (the order's total) and
//! shipped; every fifth is created and cancelled. Every write carries its own
//! Idempotency-Key and is retried with it after a connection error, a timeout, a 5xx, a
//! 429 (after Retry-After) or a 409 that says the key is in use, until a 2xx or the
//! deadline. Each 2xx is a JSON line `{"order_id", "event_id", "event_type"}` of the log
//! that `orderflow verify --http-log` checks.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What the workload did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct HttpSummary {
    /// Orders started.
    pub orders: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests sent again with the same key.
    pub retries: u64,
    /// 2xx answers.
    pub acknowledged: u64,
    /// Answers marked `Idempotent-Replayed: true`.
    pub replayed: u64,
    /// Changes that never got a 2xx, or got a 4xx they should not have.
    pub failed: u64,
}

/// How to run it.
pub struct HttpWorkload {
    /// Base URL of the order service.
    pub base: String,
    /// Bearer token.
    pub token: String,
    /// Orders to place.
    pub orders: u64,
    /// Orders started per second.
    pub rate: f64,
    /// Lifecycles at a time.
    pub concurrency: usize,
    /// How long one change may take, retries included.
    pub deadline: Duration,
}

struct Shared {
    client: reqwest::Client,
    base: String,
    token: String,
    deadline: Duration,
    log: Mutex<std::fs::File>,
    requests: AtomicU64,
    retries: AtomicU64,
    acknowledged: AtomicU64,
    replayed: AtomicU64,
    failed: AtomicU64,
    created: Option<mpsc::UnboundedSender<String>>,
}

impl HttpWorkload {
    /// Runs every lifecycle to its end; the order id of each acknowledged creation goes
    /// to `created` (the lane poisoner) when given.
    pub async fn run(
        self,
        log: PathBuf,
        created: Option<mpsc::UnboundedSender<String>>,
    ) -> anyhow::Result<HttpSummary> {
        let shared = Arc::new(Shared {
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            base: self.base.trim_end_matches('/').to_string(),
            token: self.token,
            deadline: self.deadline,
            log: Mutex::new(std::fs::File::create(&log).context("create the HTTP log")?),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            created,
        });
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for n in 0..self.orders {
            // Paced starts: order n starts n / rate seconds after the first.
            tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / self.rate)).await;
            let (shared, slots) = (shared.clone(), slots.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = slots.acquire().await;
                lifecycle(&shared, n).await;
            }));
        }
        for task in tasks {
            task.await?;
        }
        Ok(HttpSummary {
            orders: self.orders,
            requests: shared.requests.load(Ordering::Relaxed),
            retries: shared.retries.load(Ordering::Relaxed),
            acknowledged: shared.acknowledged.load(Ordering::Relaxed),
            replayed: shared.replayed.load(Ordering::Relaxed),
            failed: shared.failed.load(Ordering::Relaxed),
        })
    }
}

async fn lifecycle(shared: &Shared, n: u64) {
    let items = [
        json!({"sku": format!("SKU-{}", n % 97), "quantity": 1 + n % 3, "unit_price_cents": 500 + n % 1000}),
        json!({"sku": format!("SKU-{}-B", n % 89), "quantity": 1, "unit_price_cents": 250}),
    ];
    let total: u64 = (1 + n % 3) * (500 + n % 1000) + 250;
    let body =
        json!({"customer_id": format!("chaos-{}", n % 500), "currency": "EUR", "items": items});
    let Some(created) = write(shared, "/orders", &body, "OrderCreated").await else {
        return;
    };
    let Some(order_id) = created["order_id"].as_str().map(str::to_string) else {
        return;
    };
    if let Some(lane) = &shared.created {
        let _ = lane.send(order_id.clone());
    }
    let order = format!("/orders/{order_id}");
    if n % 5 == 4 {
        let body = json!({"reason": "changed my mind"});
        write(shared, &format!("{order}/cancel"), &body, "OrderCancelled").await;
        return;
    }
    let pay = json!({"payment_id": format!("pay-{n}"), "amount_cents": total});
    if write(shared, &format!("{order}/pay"), &pay, "OrderPaid")
        .await
        .is_some()
    {
        let ship = json!({"carrier": "DHL", "tracking_number": format!("TRK{n:08}")});
        write(shared, &format!("{order}/ship"), &ship, "OrderShipped").await;
    }
}

/// POSTs until a 2xx; the answer's JSON, or `None` after a failure.
async fn write(shared: &Shared, path: &str, body: &Value, event_type: &str) -> Option<Value> {
    let key = uuid::Uuid::new_v4().to_string();
    let first = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        shared.requests.fetch_add(1, Ordering::Relaxed);
        if attempt > 1 {
            shared.retries.fetch_add(1, Ordering::Relaxed);
        }
        let mut wait = Duration::from_millis(500);
        let answer = shared
            .client
            .post(format!("{}{path}", shared.base))
            .bearer_auth(&shared.token)
            .header("Idempotency-Key", &key)
            .json(body)
            .send()
            .await;
        if let Ok(answer) = answer {
            let status = answer.status();
            let replayed = answer
                .headers()
                .get("Idempotent-Replayed")
                .is_some_and(|v| v == "true");
            let retry_after = answer
                .headers()
                .get("Retry-After")
                .and_then(|v| v.to_str().ok()?.parse::<f64>().ok());
            // A body cut by a dying service is a failed attempt like a refused one.
            if let Ok(text) = answer.text().await {
                if status.is_success() {
                    if let Ok(payload) = serde_json::from_str::<Value>(&text) {
                        if replayed {
                            shared.replayed.fetch_add(1, Ordering::Relaxed);
                        }
                        acknowledge(shared, &payload, event_type);
                        return Some(payload);
                    }
                } else {
                    let code = status.as_u16();
                    let retryable = code >= 500
                        || code == 429
                        || (code == 409 && text.contains("Idempotency-Key"));
                    if !retryable {
                        fail(
                            shared,
                            format!("POST {path}: {code} {}", &text[..text.len().min(300)]),
                        );
                        return None;
                    }
                    wait = Duration::from_secs_f64(retry_after.unwrap_or(0.5));
                }
            }
        }
        if first.elapsed() > shared.deadline {
            fail(
                shared,
                format!(
                    "POST {path}: no 2xx in {:?} ({attempt} attempts)",
                    shared.deadline
                ),
            );
            return None;
        }
        tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
    }
}

fn acknowledge(shared: &Shared, payload: &Value, event_type: &str) {
    let line = json!({
        "order_id": payload["order_id"],
        "event_id": payload["event_id"],
        "event_type": event_type,
        "acked_ms": chrono::Utc::now().timestamp_millis(),
    });
    let mut log = shared.log.lock().expect("the log lock is never poisoned");
    let _ = writeln!(log, "{line}");
    shared.acknowledged.fetch_add(1, Ordering::Relaxed);
}

fn fail(shared: &Shared, why: String) {
    shared.failed.fetch_add(1, Ordering::Relaxed);
    tracing::warn!("HTTP workload: {why}");
}
