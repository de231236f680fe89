//! PostgreSQL connections with start-up retries and password-free error messages.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::{Error, Result, backoff};

/// Connects a pool to `url`, retrying for `deadline` while the server is unreachable.
/// Errors name the host, port and database but never the password.
pub async fn connect(url: &str, max_connections: u32, deadline: Duration) -> Result<PgPool> {
    if crate::example_secrets::url_has_example_password(url) {
        return Err(Error::Config(format!(
            "database URL {}: the password is the example value of .env.example; set a \
             password of your own",
            redact(url)
        )));
    }
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

/// The URL with any password replaced by `***` (in the userinfo or a `?password=`
/// parameter), for logs and error messages.
pub fn redact(url: &str) -> String {
    crate::client_properties::mask_url(url).into_owned()
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
            redact("postgres://u@h/db?password=secret"),
            "postgres://u@h/db?password=***"
        );
        assert_eq!(
            redact("postgres:///db?host=/var/run/postgresql"),
            "postgres:///db?host=/var/run/postgresql"
        );
    }

    #[tokio::test]
    async fn the_example_password_is_refused_before_connecting() {
        let err = connect(
            "postgres://orderflow:change-me-postgres@127.0.0.1:1/db",
            1,
            Duration::from_secs(30),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains(".env.example"), "{err}");
        assert!(!err.contains("change-me-postgres"), "{err}");
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
