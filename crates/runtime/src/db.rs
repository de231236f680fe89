//! PostgreSQL connections with start-up retries and password-free error messages.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::{Error, Result, backoff};

/// Connects a pool to `url`, retrying for `deadline` while the server is unreachable.
/// Errors name the host, port and database but never the password.
pub async fn connect(url: &str, max_connections: u32, deadline: Duration) -> Result<PgPool> {
    let options: PgConnectOptions = url
        .parse()
        .map_err(|err| Error::Config(format!("database URL {}: {err}", redact(url))))?;
    let target = redact(url);
    // Probe with a single connection first: its error is the real cause ("connection
    // refused", "password authentication failed"), where a pool only says it timed out.
    backoff::retry_until(deadline, "PostgreSQL", &target, || {
        let options = options.clone();
        async move {
            let probe = PgConnection::connect_with(&options).await?;
            probe.close().await?;
            PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5).min(deadline.max(Duration::from_secs(1))))
                .connect_with(options)
                .await
        }
    })
    .await
}

/// The URL with any password replaced by `***`, for logs and error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres:///db?host=/var/run/postgresql"),
            "postgres:///db?host=/var/run/postgresql"
        );
    }

    #[tokio::test]
    async fn unreachable_database_fails_with_its_address() {
        let err = connect(
            "postgres://u:pw@127.0.0.1:1/db",
            1,
            Duration::from_millis(400),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("127.0.0.1:1/db") && !err.contains("pw"),
            "{err}"
        );
    }
}
