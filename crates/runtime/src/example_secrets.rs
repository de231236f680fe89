//! The placeholder secrets of `.env.example`. A deployment that copied the file and
//! kept them runs with passwords anyone can read in this repository, so start-up
//! refuses them rather than warning.

/// Every secret value `.env.example` ships (a test keeps this list and the file in step).
pub const EXAMPLE_SECRETS: [&str; 7] = [
    "change-me-postgres",
    "change-me-order-migration",
    "change-me-order-service",
    "change-me-consumer-migration",
    "change-me-consumer",
    "change-me-grafana",
    "change-me-order-api-token",
];

/// Whether `value` is one of the example secrets.
pub fn is_example_secret(value: &str) -> bool {
    EXAMPLE_SECRETS.contains(&value.trim())
}

/// Whether the password of a database URL (userinfo or `?password=`) is an example
/// secret. Percent-encoding is not undone: the examples contain nothing it would touch.
pub fn url_has_example_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let in_userinfo = authority
        .rsplit_once('@')
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .is_some_and(|(_, password)| is_example_secret(password));
    let in_query = url
        .split_once('?')
        .map(|(_, query)| query.split('#').next().unwrap_or_default())
        .is_some_and(|query| {
            query.split('&').any(|pair| {
                pair.split_once('=')
                    .is_some_and(|(name, value)| name == "password" && is_example_secret(value))
            })
        });
    in_userinfo || in_query
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `...PASSWORD=` and token value in `.env.example` is on the list.
    #[test]
    fn the_list_matches_env_example() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example");
        let text = std::fs::read_to_string(path).expect(".env.example");
        let mut found = 0;
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if key.ends_with("PASSWORD") || key.ends_with("TOKENS") {
                for secret in value.split(',') {
                    let secret = secret.rsplit_once(':').map_or(secret, |(_, t)| t);
                    assert!(is_example_secret(secret), "{key}: {secret} is not listed");
                    found += 1;
                }
            }
        }
        assert_eq!(found, EXAMPLE_SECRETS.len());
    }

    #[test]
    fn database_urls_with_an_example_password_are_recognised() {
        assert!(url_has_example_password(
            "postgres://orderflow:change-me-postgres@postgres:5432/orderflow_producer"
        ));
        assert!(url_has_example_password(
            "postgres://orderflow@postgres/db?sslmode=disable&password=change-me-postgres"
        ));
        assert!(!url_has_example_password(
            "postgres://orderflow:s3cret-of-mine@db/x"
        ));
        assert!(!url_has_example_password(
            "postgres:///db?host=/var/run/postgresql"
        ));
    }
}
