//! `fill-dedup`: a dedup table already holding millions of rows of the group that
//! runs next, as a week of retention leaves it. Loaded the way a bulk load is done: the table's
//! keys and indexes are dropped, the rows written, then the keys and indexes built
//! again from their own definitions (a sort per index instead of millions of random
//! inserts into a growing B-tree: minutes instead of tens of minutes at 50 million).

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection, Row};

/// Rows written per statement.
const SLICE: u64 = 1_000_000;

/// Writes `count` rows of `group` into the `processed_events` of the migrated
/// database at `database_url`.
pub async fn run(database_url: &str, count: u64, group: &str) -> anyhow::Result<()> {
    let mut db = PgConnection::connect(database_url).await?;
    db.execute("SET maintenance_work_mem = '1GB'").await?;
    let rebuild = drop_keys_and_indexes(&mut db).await?;
    let mut start = 0u64;
    while start < count {
        let end = (start + SLICE).min(count);
        // Random-looking UUID event and order ids like the real ones (three events
        // an order), spread over 12 partitions, a day old (inside the retention,
        // so cleanup keeps them).
        sqlx::query(
            "INSERT INTO processed_events (consumer_group, order_id, event_id, topic, \"partition\", \"offset\", processed_at)
             SELECT $3, md5('order' || (i / 3)::text)::uuid::text, md5(i::text)::uuid::text,
                    'retained-topic', (i % 12)::int, i / 12, now() - interval '1 day'
             FROM generate_series($1::bigint, $2::bigint - 1) AS i",
        )
        .bind(i64::try_from(start)?)
        .bind(i64::try_from(end)?)
        .bind(group)
        .execute(&mut db)
        .await?;
        start = end;
    }
    for statement in rebuild {
        db.execute(sqlx::AssertSqlSafe(statement.clone()))
            .await
            .with_context(|| format!("rebuild: {statement}"))?;
    }
    db.execute("VACUUM ANALYZE processed_events").await?;
    Ok(())
}

/// Drops the table's constraints and indexes; returns the statements that build
/// them again, exactly as the migrations defined them.
async fn drop_keys_and_indexes(db: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    let constraints = sqlx::query(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = 'processed_events'::regclass AND contype IN ('p', 'u')",
    )
    .fetch_all(&mut *db)
    .await?;
    let indexes = sqlx::query(
        "SELECT indexname::text, indexdef FROM pg_indexes
         WHERE schemaname = current_schema() AND tablename = 'processed_events'
           AND indexname NOT IN (SELECT conname FROM pg_constraint
                                 WHERE conrelid = 'processed_events'::regclass)",
    )
    .fetch_all(&mut *db)
    .await?;
    let mut rebuild = Vec::new();
    for row in &constraints {
        let (name, definition): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        db.execute(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE processed_events DROP CONSTRAINT \"{name}\""
        )))
        .await?;
        rebuild.push(format!(
            "ALTER TABLE processed_events ADD CONSTRAINT \"{name}\" {definition}"
        ));
    }
    for row in &indexes {
        let (name, definition): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        db.execute(sqlx::AssertSqlSafe(format!("DROP INDEX \"{name}\"")))
            .await?;
        rebuild.push(definition);
    }
    Ok(rebuild)
}
