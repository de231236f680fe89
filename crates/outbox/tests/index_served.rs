//! Every statement run on the outbox is served by an index when the table holds a long
//! history: 1,000,000 sent rows (a few minutes of the API's saturated rate; sent rows are
//! kept 24 h) beside a small unsent backlog. A sequential scan of `outbox` (or `orders`)
//! costs time in proportion to that history on every relay round, while holding the
//! orders' locks the API waits for.
//!
//! Each statement is planned twice: with its arguments (the custom plan) and as the
//! generic plan PostgreSQL switches a prepared statement to after five executions.

use orderflow_outbox::queries::STATEMENTS;
use orderflow_outbox::schema;
use orderflow_testkit as testkit;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgConnection};

/// Sent rows in the seeded history.
const SENT_ROWS: i64 = 1_000_000;
/// Sent events per seeded order.
const EVENTS_PER_ORDER: i64 = 4;
/// Orders with an unsent backlog: one pending row and two waiting rows each.
const LIVE_ORDERS: i64 = 500;

/// Arguments of each statement, as SQL literals: the shapes the relay and the API use.
fn arguments(name: &str) -> Option<Vec<String>> {
    let live_orders = format!(
        "ARRAY[{}]::text[]",
        (1..=LIVE_ORDERS)
            .map(|n| format!("'live-{n}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let literal: &[&str] = match name {
        "insert_outbox" => &[
            "'live-7'",
            "'7d444840-9dc0-11d1-b245-5ffdce74fad2'",
            "'OrderPaid'",
            "'00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'",
            "'\\x00'::bytea",
            "NULL",
        ],
        "claim_slot_batch" => &["7", "ARRAY[1000001]::bigint[]", "500"],
        "mark_outbox_sent" => &["ARRAY[1000001, 1000002, 1000003]::bigint[]"],
        "lock_orders" | "promote_waiting_outbox" => return Some(vec![live_orders]),
        "mark_outbox_failed" => &["1000001", "'broker down'", "5"],
        "park_outbox_row" => &["1000001", "'too large'"],
        "count_outbox_unsent" => &[],
        "delete_sent_outbox" => &["86400", "10000"],
        "list_outbox" => &["'parked'", "100"],
        "retry_parked_outbox"
        | "parked_orders"
        | "skip_parked_outbox"
        | "discard_parked_outbox" => &["ARRAY[1000001]::bigint[]"],
        "sweep_stranded_outbox" => &[],
        "sweep_slot_outbox" => &["ARRAY[1, 2, 3]::smallint[]"],
        _ => return None,
    };
    Some(literal.iter().map(|arg| (*arg).to_string()).collect())
}

/// A history of sent rows and a live backlog, with fresh statistics.
async fn seed(conn: &mut PgConnection) {
    let orders = SENT_ROWS / EVENTS_PER_ORDER;
    let statements = [
        format!(
            "INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
             SELECT 'done-' || g, 'shipped', 'c', 'EUR', 100 FROM generate_series(1, {orders}) g"
        ),
        format!(
            "INSERT INTO order_service.outbox
                 (order_id, event_id, event_type, traceparent, payload, state, sent_at, created_at, attempts)
             SELECT 'done-' || ((g - 1) / {EVENTS_PER_ORDER} + 1), gen_random_uuid(), 'OrderCreated', 'tp',
                    '\\x00'::bytea, 'sent', now() - interval '1 hour', now() - interval '1 hour', 1
             FROM generate_series(1, {SENT_ROWS}) g"
        ),
        format!(
            "INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
             SELECT 'live-' || g, 'created', 'c', 'EUR', 100 FROM generate_series(1, {LIVE_ORDERS}) g"
        ),
        format!(
            "INSERT INTO order_service.outbox (order_id, event_id, event_type, traceparent, payload, state)
             SELECT 'live-' || g, gen_random_uuid(), 'OrderCreated', 'tp', '\\x00'::bytea,
                    CASE WHEN k = 1 THEN 'pending' ELSE 'waiting' END
             FROM generate_series(1, 3) k, generate_series(1, {LIVE_ORDERS}) g
             ORDER BY k, g"
        ),
        "UPDATE order_service.outbox SET state = 'parked', parked_at = now()
         WHERE id IN (SELECT id FROM order_service.outbox WHERE state = 'pending' ORDER BY id LIMIT 5)"
            .to_string(),
        "ANALYZE order_service.orders".to_string(),
        "ANALYZE order_service.outbox".to_string(),
    ];
    for statement in statements {
        sqlx::raw_sql(AssertSqlSafe(statement.as_str()))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|error| panic!("seeding failed: {error}\n{statement}"));
    }
}

/// The tables a plan reads with a sequential scan, among `outbox` and `orders`.
fn sequential_scans(plan: &Value, found: &mut Vec<String>) {
    if let Some(node) = plan.as_object() {
        let seq_scan = node.get("Node Type").and_then(Value::as_str) == Some("Seq Scan");
        let relation = node.get("Relation Name").and_then(Value::as_str);
        if let (true, Some(table @ ("outbox" | "orders"))) = (seq_scan, relation) {
            found.push(table.to_string());
        }
        for child in node.values() {
            sequential_scans(child, found);
        }
    } else if let Some(items) = plan.as_array() {
        for item in items {
            sequential_scans(item, found);
        }
    }
}

async fn explain(conn: &mut PgConnection, name: &str, sql: &str, args: &[String]) -> Value {
    // Named apart from the statements the driver prepares on this connection.
    sqlx::raw_sql(AssertSqlSafe(format!("PREPARE {name} AS {sql}")))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|error| panic!("{name} does not prepare: {error}"));
    let call = if args.is_empty() {
        format!("EXPLAIN (FORMAT JSON) EXECUTE {name}")
    } else {
        format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({})", args.join(", "))
    };
    let plan: Value = sqlx::query_scalar(AssertSqlSafe(call))
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|error| panic!("{name} does not explain: {error}"));
    plan
}

#[tokio::test]
async fn every_outbox_statement_is_index_served_with_a_million_sent_rows() {
    let (url, pool) = testkit::fresh_database().await;
    schema::migrator().run(&pool).await.expect("migrations");
    let mut conn = pool.acquire().await.expect("connection");
    seed(&mut conn).await;

    let mut failures = Vec::new();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        sqlx::raw_sql(AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
            .execute(&mut *conn)
            .await
            .expect("plan_cache_mode");
        for (name, sql) in STATEMENTS {
            let args = arguments(name)
                .unwrap_or_else(|| panic!("give the statement {name} its arguments in this test"));
            let prepared = format!("{name}_{mode}");
            let plan = explain(&mut conn, &prepared, sql, &args).await;
            let mut scanned = Vec::new();
            sequential_scans(&plan, &mut scanned);
            if !scanned.is_empty() {
                failures.push(format!(
                    "{name} ({mode}) reads {scanned:?} with a sequential scan:\n{}",
                    serde_json::to_string_pretty(&plan).unwrap_or_default()
                ));
            }
        }
    }
    // A million rows are a quarter of a gigabyte: give the space back before judging.
    drop(conn);
    pool.close().await;
    let base = url.split('?').next().unwrap_or(&url);
    let name = base.rsplit('/').next().expect("a database name");
    let admin = sqlx::PgPool::connect(&testkit::database_url())
        .await
        .expect("admin connection");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE \"{name}\" WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .expect("drop the seeded database");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
