//! The few statements the harness runs itself (creating databases, the fault triggers).

use anyhow::Context;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Runs `sql` on one connection to `url`.
pub async fn execute(url: &str, sql: &str) -> anyhow::Result<()> {
    let mut connection = PgConnection::connect(url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut connection)
        .await
        .with_context(|| format!("run {sql}"))?;
    connection.close().await?;
    Ok(())
}
