//! Schema registry client (Confluent REST API) with its own caches, so each schema id is fetched
//! once per process and each (subject, schema) registered once.
//!
//! The REST calls go through `schema_registry_converter`'s low-level `async_impl::schema_registry`
//! functions. That crate does not expose the HTTP status of a failed call: it keeps the registry's
//! JSON error body (`RawError`, whose `error_code` starts with the HTTP status, e.g. 40403) as the
//! error's source, writes the status into the error text, and marks only transport errors and
//! 502/503 as retriable. [`RegistryClient`] recovers the status from those to tell "not found"
//! (poison) from "unreachable / 5xx" (transient); see `classify`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use apache_avro::Schema;
use rand::Rng;
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_schema_by_id, get_schema_by_subject_and_version, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{RawError, SchemaType, SuppliedSchema};
use tokio::sync::OnceCell;

use crate::error::RegistryError;
use crate::registry_settings::{RegistryAuth, RegistrySettings};

/// Registry URL every command uses unless told otherwise: the Confluent-compatible API of
/// the Apicurio Registry that `scripts/dev-up.sh` runs.
pub const DEFAULT_REGISTRY_URL: &str = "http://127.0.0.1:8081/apis/ccompat/v7";

/// A cheap-to-clone handle on one schema registry; clones share the caches.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    settings: SrSettings,
    /// One cell per id: concurrent first lookups of an id share a single fetch.
    by_id: Mutex<HashMap<u32, Arc<OnceCell<Arc<Schema>>>>>,
    /// (subject, schema text) -> id of registrations done by this process.
    registered: Mutex<HashMap<(String, String), u32>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for the registry at `url` (e.g. `http://127.0.0.1:8081`), with
    /// [`DEFAULT_REQUEST_TIMEOUT`](crate::DEFAULT_REQUEST_TIMEOUT) per call and no other
    /// setting. Nothing is contacted yet.
    pub fn new(url: impl Into<String>) -> Result<Self, RegistryError> {
        Self::with_settings(RegistrySettings::new(&url.into())?)
    }

    /// Like [`RegistryClient::new`] with a per-call timeout.
    pub fn with_timeout(url: impl Into<String>, timeout: Duration) -> Result<Self, RegistryError> {
        Self::with_settings(RegistrySettings::new(&url.into())?.with_timeout(timeout))
    }

    /// A client with `settings`: its CA file is read here, so a missing or empty file fails
    /// before any call. Nothing is contacted yet.
    pub fn with_settings(settings: RegistrySettings) -> Result<Self, RegistryError> {
        let mut http = reqwest::Client::builder();
        if let Some(path) = settings.ca_location() {
            // The file replaces the system's trust store, as ssl.ca.location does for Kafka.
            http = http.tls_certs_only(read_ca_file(path)?);
        }
        let mut builder = SrSettings::new_builder(settings.url().to_owned());
        builder.set_timeout(settings.timeout());
        match settings.auth() {
            RegistryAuth::None => {}
            RegistryAuth::Basic { user, password } => {
                builder.set_basic_authorization(user, Some(password));
            }
            RegistryAuth::Bearer(token) => {
                builder.set_token_authorization(token);
            }
        }
        let sr_settings = builder
            .build_with(http)
            .map_err(|e| RegistryError::InvalidUrl {
                url: settings.url().to_owned(),
                reason: error_chain(&e),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                url: settings.url().to_owned(),
                settings: sr_settings,
                by_id: Mutex::default(),
                registered: Mutex::default(),
            }),
        })
    }

    /// The registry base URL, without userinfo and trailing slash.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Registers the Avro `schema` under `subject` (or finds it, when already registered) and
    /// returns its id. The schema is parsed locally first, so invalid Avro never reaches the
    /// network. The result is cached, and the id is cached for [`RegistryClient::schema_by_id`].
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let key = (subject.to_owned(), schema.to_owned());
        if let Some(id) = lock(&self.inner.registered).get(&key) {
            return Ok(*id);
        }
        let what = format!("registering a schema under subject {subject}");
        let parsed = Schema::parse_str(schema).map_err(|e| RegistryError::InvalidSchema {
            url: self.url().to_owned(),
            what: format!("subject {subject}"),
            reason: e.to_string(),
        })?;
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        let registered = post_schema(&self.inner.settings, subject.to_owned(), supplied)
            .await
            .map_err(|e| self.classify(&what, e))?;
        let id = registered.id;
        lock(&self.inner.registered).insert(key, id);
        // The registry keeps this exact text under `id`: no need to fetch it back.
        let cell = self.cell(id);
        let _ = cell.set(Arc::new(parsed));
        Ok(id)
    }

    /// [`RegistryClient::register`], retrying transient failures with exponential backoff and
    /// jitter for up to `max_wait` (for start-up, when the registry may still be starting). The
    /// final error names the registry URL and how long it was tried.
    pub async fn register_with_retry(
        &self,
        subject: &str,
        schema: &str,
        max_wait: Duration,
    ) -> Result<u32, RegistryError> {
        retry_unreachable(max_wait, || self.register(subject, schema)).await
    }

    /// Proves that the registry answers, that its certificate is trusted and that it takes
    /// the credentials, retrying while it is unreachable for up to `max_wait` (start-up of a
    /// process that only reads schemas). It looks up schema id 0, which registries never
    /// hand out: "not found" is the answer of a registry that let the call in.
    pub async fn check_with_retry(&self, max_wait: Duration) -> Result<(), RegistryError> {
        retry_unreachable(max_wait, || self.check("a start-up check")).await
    }

    /// One call that proves the registry answers and takes the credentials (the lookup of
    /// schema id 0, as [`check_with_retry`](Self::check_with_retry)): what tells a 5xx
    /// for one schema id (that id's trouble) from a registry that is down.
    pub async fn answers(&self) -> Result<(), RegistryError> {
        self.check("a probe").await
    }

    async fn check(&self, what: &str) -> Result<(), RegistryError> {
        match get_schema_by_id(0, &self.inner.settings).await {
            Ok(_) => Ok(()),
            Err(error) => match self.classify(what, error) {
                RegistryError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    /// The latest version registered under `subject`: its id and its schema (not cached:
    /// the latest version changes).
    pub async fn latest_schema(&self, subject: &str) -> Result<(u32, Schema), RegistryError> {
        let what = format!("the latest version of subject {subject}");
        let registered = get_schema_by_subject_and_version(&self.inner.settings, subject, None)
            .await
            .map_err(|e| self.classify(&what, e))?;
        let schema =
            Schema::parse_str(&registered.schema).map_err(|e| RegistryError::InvalidSchema {
                url: self.url().to_owned(),
                what,
                reason: e.to_string(),
            })?;
        Ok((registered.id, schema))
    }

    /// The schema with `id` if it is already cached (no network).
    pub fn cached_schema(&self, id: u32) -> Option<Arc<Schema>> {
        lock(&self.inner.by_id)
            .get(&id)
            .and_then(|cell| cell.get().cloned())
    }

    /// The schema with `id`, fetched once and then served from the cache.
    ///
    /// [`RegistryError::NotFound`] means the id does not exist (poison for a record carrying it);
    /// [`RegistryError::Unreachable`] is transient. Failures are not cached.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        let cell = self.cell(id);
        let result = cell
            .get_or_try_init(|| self.fetch_schema(id))
            .await
            .cloned();
        if result.is_err() {
            // Do not let lookups of ids that failed grow the map.
            let mut by_id = lock(&self.inner.by_id);
            if by_id.get(&id).is_some_and(|c| !c.initialized()) {
                by_id.remove(&id);
            }
        }
        result
    }

    /// Puts a schema into the id cache, as if fetched: lookups of `id` then never touch the
    /// network. For callers that know their writer schemas up front (offline decoding in
    /// tests and the fuzz targets). A schema already cached under `id` is kept.
    pub fn insert_cached(&self, id: u32, schema: Arc<Schema>) {
        let _ = self.cell(id).set(schema);
    }

    fn cell(&self, id: u32) -> Arc<OnceCell<Arc<Schema>>> {
        lock(&self.inner.by_id).entry(id).or_default().clone()
    }

    async fn fetch_schema(&self, id: u32) -> Result<Arc<Schema>, RegistryError> {
        let what = format!("schema id {id}");
        let registered = get_schema_by_id(id, &self.inner.settings)
            .await
            .map_err(|e| self.classify(&what, e))?;
        let invalid = |reason: String| RegistryError::InvalidSchema {
            url: self.url().to_owned(),
            what: what.clone(),
            reason,
        };
        if registered.schema_type != SchemaType::Avro {
            return Err(invalid(format!(
                "it is a {:?} schema",
                registered.schema_type
            )));
        }
        // Schema references are not followed: OrderEvent schemas are self-contained.
        let schema = Schema::parse_str(&registered.schema).map_err(|e| invalid(e.to_string()))?;
        tracing::debug!(registry = %self.url(), schema_id = id, "fetched writer schema");
        Ok(Arc::new(schema))
    }

    /// Maps a `schema_registry_converter` error to a [`RegistryError`] (see the module docs for
    /// why the HTTP status has to be recovered from the error text or the Confluent error code).
    fn classify(&self, what: &str, error: SRCError) -> RegistryError {
        let url = self.url().to_owned();
        let what = what.to_owned();
        let raw = std::error::Error::source(&error).and_then(|s| s.downcast_ref::<RawError>());
        let Some(raw) = raw else {
            if let Some(reason) = tls_failure(&error) {
                return RegistryError::Tls { url, what, reason };
            }
            return if error.retriable {
                // Connection refused, timeout, DNS: no HTTP answer at all.
                RegistryError::Unreachable {
                    url,
                    what,
                    reason: error_chain(&error),
                    status: None,
                }
            } else {
                RegistryError::InvalidResponse {
                    url,
                    what,
                    reason: error_chain(&error),
                }
            };
        };
        let status = status_from_message(&error.error).or_else(|| status_from_code(raw.error_code));
        match status {
            Some(404) => RegistryError::NotFound { url, what },
            Some(status @ (401 | 403)) => RegistryError::Unauthorized {
                url,
                what,
                status,
                // Quarkus (Apicurio) answers 401 with an empty body.
                message: if raw.error_code == 0 {
                    String::new()
                } else {
                    raw.message.clone()
                },
            },
            Some(408 | 429) | Some(500..=599) | None => RegistryError::Unreachable {
                url,
                what,
                reason: format!(
                    "HTTP {}: {}",
                    status.map_or("?".into(), |s| s.to_string()),
                    raw.message
                ),
                status,
            },
            Some(status) => RegistryError::Rejected {
                url,
                what,
                status,
                code: raw.error_code,
                message: raw.message.clone(),
            },
        }
    }
}

/// Runs `call` until it succeeds or fails with anything but [`RegistryError::Unreachable`],
/// with exponential backoff and jitter, for up to `max_wait`. The final error names the
/// registry URL and how long it was tried.
async fn retry_unreachable<T, F, Fut>(max_wait: Duration, call: F) -> Result<T, RegistryError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match call().await {
            Err(RegistryError::Unreachable {
                url,
                what,
                reason,
                status,
            }) => {
                let jittered = delay.mul_f64(rand::rng().random_range(0.5..=1.0));
                if started.elapsed() + jittered > max_wait {
                    let reason = format!(
                        "{reason} (gave up after {attempts} attempts in {:.1}s)",
                        started.elapsed().as_secs_f64()
                    );
                    return Err(RegistryError::Unreachable {
                        url,
                        what,
                        reason,
                        status,
                    });
                }
                tracing::warn!(registry = %url, %reason, attempt = attempts, "schema registry not reachable yet, retrying");
                tokio::time::sleep(jittered).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            other => return other,
        }
    }
}

/// The certificates of a PEM file (`schema.registry.ssl.ca.location`).
fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidSetting {
        setting: "schema.registry.ssl.ca.location",
        reason: format!("{}: {reason}", path.display()),
    };
    let pem = std::fs::read(path).map_err(|e| invalid(format!("cannot read it: {e}")))?;
    let certificates =
        reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| invalid(e.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("no PEM certificate in it".into()));
    }
    Ok(certificates)
}

/// "HTTP request to schema registry failed with status 404 Not Found" -> 404.
fn status_from_message(message: &str) -> Option<u16> {
    let (_, after) = message.split_once("status ")?;
    after.get(..3)?.parse().ok()
}

/// Confluent error codes are the HTTP status, optionally followed by two digits (40403 -> 404).
fn status_from_code(code: u32) -> Option<u16> {
    match code {
        100..=599 => u16::try_from(code).ok(),
        10_000..=59_999 => u16::try_from(code / 100).ok(),
        _ => None,
    }
}

/// The TLS library's reason when `error` is a TLS handshake that retrying cannot fix: an
/// untrusted or mismatched certificate, a handshake the other side refused (an alert), or
/// plain HTTP where TLS was expected. A connection cut during the handshake (a registry
/// restarting) is not one: that stays transient.
fn tls_failure(error: &SRCError) -> Option<String> {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<native_tls::Error>() {
            let text = tls.to_string();
            let hint = if text.contains("certificate") {
                "check schema.registry.ssl.ca.location: the PEM file of the CA that signed the \
                 registry's certificate"
            } else if text.contains("wrong version number") {
                "no TLS at this address: is it http://?"
            } else if text.contains("alert") {
                "the registry refused the handshake"
            } else {
                return None;
            };
            return Some(format!("{} ({hint})", openssl_reason(&text)));
        }
        source = cause.source();
    }
    None
}

/// OpenSSL's `error:0A000086:SSL routines:FUNCTION:REASON:FILE:LINE: (VERIFY RESULT)` as
/// `REASON (VERIFY RESULT)`; other text unchanged.
fn openssl_reason(text: &str) -> String {
    let reason = text
        .strip_prefix("error:")
        .and_then(|rest| rest.split(':').nth(3));
    let verify = text
        .rsplit_once(" (")
        .and_then(|(_, rest)| rest.strip_suffix(')'));
    match (reason, verify) {
        (Some(reason), Some(verify)) => format!("{reason} ({verify})"),
        (Some(reason), None) => reason.to_owned(),
        _ => text.to_owned(),
    }
}

fn error_chain(error: &SRCError) -> String {
    let mut text = error.error.clone();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: every update is a single insert/remove.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn status_is_recovered_from_text_or_code() {
        assert_eq!(
            status_from_message("HTTP request to schema registry failed with status 404 Not Found"),
            Some(404)
        );
        assert_eq!(status_from_message("no status here"), None);
        assert_eq!(status_from_code(40403), Some(404));
        assert_eq!(status_from_code(409), Some(409));
        assert_eq!(status_from_code(50001), Some(500));
        assert_eq!(status_from_code(0), None);
    }

    #[test]
    fn openssl_errors_keep_reason_and_verify_result() {
        assert_eq!(
            openssl_reason(
                "error:0A000086:SSL routines:tls_post_process_server_certificate:certificate \
                 verify failed:../ssl/statem/statem_clnt.c:1889: (unable to get local issuer \
                 certificate)"
            ),
            "certificate verify failed (unable to get local issuer certificate)"
        );
        assert_eq!(openssl_reason("handshake eof"), "handshake eof");
    }

    #[test]
    fn bad_urls_are_refused_with_the_url() {
        for url in ["127.0.0.1:8081", "ftp://registry:8081", "http://", ""] {
            let error = RegistryClient::new(url).unwrap_err();
            assert!(
                matches!(error, RegistryError::InvalidUrl { .. }),
                "{url}: {error}"
            );
            assert!(error.to_string().contains(&format!("{url:?}")), "{error}");
        }
        assert_eq!(
            RegistryClient::new("http://127.0.0.1:8081/").unwrap().url(),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            RegistryClient::new("https://key:secret@registry:8081/apis/ccompat/v7")
                .unwrap()
                .url(),
            "https://registry:8081/apis/ccompat/v7"
        );
    }

    #[test]
    fn an_unusable_ca_file_is_refused_before_any_call() {
        let dir = std::env::temp_dir().join(format!("orderflow-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        for path in [dir.join("missing.pem"), empty] {
            let settings = RegistrySettings::new("https://registry:8081")
                .unwrap()
                .with_ca_location(&path);
            let error = RegistryClient::with_settings(settings)
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("schema.registry.ssl.ca.location")
                    && error.contains(&path.display().to_string()),
                "{error}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A loopback URL where nothing listens: the port of a listener that was just closed.
    pub(crate) fn closed_port_url() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    }

    #[tokio::test]
    async fn unreachable_registry_is_transient_and_named() {
        let url = closed_port_url();
        let client = RegistryClient::with_timeout(url.as_str(), Duration::from_secs(2)).unwrap();
        let error = client.schema_by_id(1).await.unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(error.to_string().contains(&url), "{error}");
        assert!(client.cached_schema(1).is_none());

        let error = client
            .register_with_retry(
                "s-value",
                crate::CURRENT_SCHEMA_JSON,
                Duration::from_millis(300),
            )
            .await
            .unwrap_err();
        assert!(error.to_string().contains("gave up after"), "{error}");
        let error = client
            .check_with_retry(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            error.is_transient() && error.to_string().contains("gave up after"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn invalid_schema_is_refused_before_any_call() {
        let client = RegistryClient::new(closed_port_url()).unwrap();
        let error = client
            .register("s-value", "{\"type\": \"recrod\"}")
            .await
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::InvalidSchema { .. }),
            "{error}"
        );
    }
}
