//! Where the order service's database is: one rule for the service and the ops CLI.

/// Environment variable consulted for the database URL when neither `--database-url`
/// nor `PRODUCER_DATABASE_URL` is set.
pub const FALLBACK_DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The order service's database URL: `explicit` (`--database-url` /
/// `PRODUCER_DATABASE_URL`) when set, else [`FALLBACK_DATABASE_URL_ENV`]; blank values
/// count as unset.
pub fn resolve_database_url(explicit: Option<&str>) -> Option<String> {
    explicit
        .map(str::to_owned)
        .filter(|url| !url.trim().is_empty())
        .or_else(|| {
            std::env::var(FALLBACK_DATABASE_URL_ENV)
                .ok()
                .filter(|url| !url.trim().is_empty())
        })
}
