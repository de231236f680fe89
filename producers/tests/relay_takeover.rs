//! A relay that dies (kill -9) or stops without dying (a long GC-like pause: SIGSTOP)
//! while a real `order-producer serve` process has records in its producer's queue must
//! not hold its orders' events back for long: another relay on the same database takes
//! its work over and publishes every order's events once and in order. A paused relay
//! that wakes up must not publish a stale copy after a newer event: it is fenced.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orderflow_testkit as testkit;
use reqwest::StatusCode;
use support::{ORDER, Service, read_committed_event_types, unsent};

/// Orders the paused relay has in hand when it stops.
const ORDERS: usize = 12;

/// An `order-producer serve` process; killed on drop.
struct ServeProcess {
    child: Child,
    api: String,
    log: std::path::PathBuf,
}

impl ServeProcess {
    /// Starts the service on `database_url` publishing to `topic`, its producer holding
    /// records for `linger` before it sends them (so that a pause finds them in hand).
    async fn start(database_url: &str, topic: &str, linger: &str) -> Self {
        let port = testkit::free_ports(1)[0];
        let log = std::env::temp_dir().join(testkit::unique_name("relay-takeover-log"));
        let output = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_order-producer"))
            // No metrics endpoint: its default port is one for every process, and the
            // tests of this file run side by side.
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--metrics-addr",
                "",
            ])
            .args(["--database-url", database_url, "--topic", topic])
            .args(["--linger", linger, "--delivery-timeout", "300s"])
            .args(["--rate-limit-per-second", "0"])
            .env("KAFKA_BROKERS", testkit::kafka_brokers())
            .env("SCHEMA_REGISTRY_URL", testkit::registry_url())
            // The pause the server waits before it ends the paused relay's session.
            .env("OUTBOX_SESSION_TIMEOUT", "3s")
            .env_remove("PRODUCER_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("order-producer starts");
        let process = Self {
            child,
            api: format!("http://127.0.0.1:{port}"),
            log,
        };
        support::eventually("the paused relay's API answers", || async {
            reqwest::get(format!("{}/orders/none", process.api))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        process
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }

    /// kill -9, and reaps the process.
    fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal("CONT");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_relay_is_taken_over_and_fenced_so_no_event_is_late_twice_or_out_of_order() {
    let brokers = testkit::kafka_brokers();
    let topic = testkit::unique_name("orders-paused-relay");
    testkit::create_topic(&topic, 3).await;
    let (database_url, pool) = testkit::fresh_database().await;

    // The first relay alone, holding each batch 10 s in its producer before sending.
    let paused = ServeProcess::start(&database_url, &topic, "10s").await;
    let order_ids = place_orders_held_by(&paused, &pool).await;
    paused.signal("STOP");

    // A second instance on the same database, its relay sending at once; the orders'
    // next events are written through it while the first relay is stopped.
    // Every event is published while the first relay is still stopped (the paused
    // relay's lease would hold its rows 330 s).
    let survivor = take_over(
        (&brokers, &topic, &database_url),
        &pool,
        &order_ids,
        "every event published while the first relay is paused",
    )
    .await;

    // The paused relay wakes up with its stale records and tries to send them.
    paused.signal("CONT");
    tokio::time::sleep(Duration::from_secs(12)).await;
    let paused_log = paused.log();
    drop(paused);
    survivor.stop().await;

    let by_order = read_committed_event_types(&brokers, &topic, 3, 3 * ORDERS).await;
    let lifecycle = ["OrderCreated", "OrderPaid", "OrderShipped"].map(String::from);
    for order_id in &order_ids {
        assert_eq!(
            by_order.get(order_id).map(Vec::as_slice),
            Some(lifecycle.as_slice()),
            "{order_id}: each event once and in order; paused relay's log:\n{paused_log}"
        );
    }
}

/// A second service on the same database (brokers, topic, database URL), its relay
/// sending at once, writes each order's next events (pay, ship); returns once every
/// event is published, bounded by `support::eventually`'s 60 s.
async fn take_over(
    (brokers, topic, database_url): (&str, &str, &str),
    pool: &sqlx::PgPool,
    order_ids: &[String],
    what: &str,
) -> Service {
    let survivor = Service::start_sharing(brokers, topic, database_url, pool.clone(), |args| {
        args.producer.linger = Duration::from_millis(5);
    })
    .await;
    for order_id in order_ids {
        survivor.pay(order_id).await;
        survivor.ship(order_id).await;
    }
    support::all_sent(pool, what).await;
    survivor
}

/// Places [`ORDERS`] orders through `relay`'s API and checks that its producer holds
/// their records (none can be acknowledged before its linger ends).
async fn place_orders_held_by(relay: &ServeProcess, pool: &sqlx::PgPool) -> Vec<String> {
    let client = reqwest::Client::new();
    let placing = (0..ORDERS).map(|_| {
        let client = client.clone();
        let api = relay.api.clone();
        async move {
            let placed = client
                .post(format!("{api}/orders"))
                .header("content-type", "application/json")
                .body(ORDER)
                .send()
                .await
                .expect("POST /orders");
            let status = placed.status();
            let body: serde_json::Value = placed.json().await.unwrap_or_default();
            assert_eq!(status, StatusCode::CREATED, "{body}");
            body["order_id"].as_str().unwrap().to_string()
        }
    });
    let order_ids: Vec<String> = futures::future::join_all(placing).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        unsent(pool).await,
        ORDERS as i64,
        "no row is sent before the first relay's linger ends; log:\n{}",
        relay.log()
    );
    order_ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_relays_events_are_published_by_another_in_seconds_once_and_in_order() {
    let brokers = testkit::kafka_brokers();
    let topic = testkit::unique_name("orders-killed-relay");
    testkit::create_topic(&topic, 3).await;
    let (database_url, pool) = testkit::fresh_database().await;

    let mut killed = ServeProcess::start(&database_url, &topic, "10s").await;
    let order_ids = place_orders_held_by(&killed, &pool).await;
    killed.kill();
    let killed_log = killed.log();

    // A second instance on the same database takes the dead relay's work over; the
    // orders' next events are written through it.
    let started = std::time::Instant::now();
    // The dead relay's lease held its rows for the delivery timeout plus 30 s (330 s
    // here).
    let survivor = take_over(
        (&brokers, &topic, &database_url),
        &pool,
        &order_ids,
        "every event published after the first relay was killed",
    )
    .await;
    println!(
        "all {} events published {:.1} s after the survivor started (kill -9 takeover)",
        3 * ORDERS,
        started.elapsed().as_secs_f64()
    );
    survivor.stop().await;

    let by_order = read_committed_event_types(&brokers, &topic, 3, 3 * ORDERS).await;
    let lifecycle = ["OrderCreated", "OrderPaid", "OrderShipped"].map(String::from);
    for order_id in &order_ids {
        assert_eq!(
            by_order.get(order_id).map(Vec::as_slice),
            Some(lifecycle.as_slice()),
            "{order_id}: each event once and in order; killed relay's log:\n{killed_log}"
        );
    }
}
