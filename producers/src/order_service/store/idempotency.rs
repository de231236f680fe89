//! Idempotency keys of the order API, with the semantics API users know from Stripe.
//!
//! A write request may carry `Idempotency-Key: <key>`. A key belongs to the client that
//! sent it (the authenticated client's name): two clients may use the same key
//! independently, and neither sees the other's use. Within [`KEY_RETENTION`], for one
//! client:
//! - the first request with a key runs; when it succeeds, its response (status and body)
//!   is stored under the key **in the same transaction as its effect**;
//! - the same key with the same request (method, path, and body as JSON, so whitespace
//!   and key order do not matter) answers the stored response, without a second effect;
//! - the same key with another request is refused (422);
//! - the same key while the first request is still running is refused (409; retry).
//!
//! A request that fails changes nothing and stores nothing, so retrying it with the same
//! key runs it again. "In progress" is a transaction-scoped advisory lock on the key, so a
//! crashed request never leaves its key stuck.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// The request header carrying the key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The response header set on a replayed response (as Stripe's `Idempotent-Replayed`).
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";

/// How long a key's response is kept and replayed.
pub const KEY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest key accepted (Stripe's limit).
pub const MAX_KEY_LENGTH: usize = 255;

const TRY_LOCK_KEY: &str = include_str!("../../../sql/try_lock_idempotency_key.sql");
const SELECT_KEY: &str = include_str!("../../../sql/select_idempotency_key.sql");
const UPSERT_KEY: &str = include_str!("../../../sql/upsert_idempotency_key.sql");
const PURGE_KEYS: &str = include_str!("../../../sql/purge_idempotency_keys.sql");

/// Why the `Idempotency-Key` header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty, too long, or not printable ASCII.
    #[error(
        "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters (a UUID is a good key)"
    )]
    Malformed,
    /// Sent more than once.
    #[error("Idempotency-Key must be sent at most once")]
    Repeated,
}

/// A write request that carries an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    client: String,
    key: String,
    fingerprint: [u8; 32],
}

impl IdempotentRequest {
    /// The key of `headers`, if any, of `client` and bound to this request's method, path
    /// and body.
    pub fn from_request(
        headers: &HeaderMap,
        client: &str,
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Result<Option<Self>, KeyError> {
        let mut values = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(KeyError::Repeated);
        }
        let key = value.to_str().map_err(|_| KeyError::Malformed)?;
        if key.is_empty()
            || key.len() > MAX_KEY_LENGTH
            || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(KeyError::Malformed);
        }
        Ok(Some(Self {
            client: client.to_string(),
            key: key.to_string(),
            fingerprint: fingerprint(method, path, body),
        }))
    }
}

/// What a response stored under a key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// The JSON body, byte for byte.
    pub body: Vec<u8>,
}

/// The outcome of [`claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or expired): run the request, then [`store`] its response.
    Run,
    /// The same request already succeeded: answer this.
    Replay(StoredResponse),
}

/// Why a key cannot be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another request with this key is running.
    #[error("a request with this Idempotency-Key is still in progress; retry later")]
    InProgress,
    /// The key was used with a different request.
    #[error(
        "this Idempotency-Key was already used with a different request (method, path or body)"
    )]
    Reused,
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Claims `request`'s key for the transaction on `conn`, which must be the transaction
/// that then applies the effect and [`store`]s the response.
pub async fn claim(
    conn: &mut PgConnection,
    request: &IdempotentRequest,
) -> Result<Claim, ClaimError> {
    let locked: bool = sqlx::query_scalar(TRY_LOCK_KEY)
        .bind(&request.client)
        .bind(&request.key)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Err(ClaimError::InProgress);
    }
    // With the lock held, any earlier request with this key has committed or rolled back.
    let stored: Option<(Vec<u8>, i16, Vec<u8>)> = sqlx::query_as(SELECT_KEY)
        .bind(&request.client)
        .bind(&request.key)
        .bind(KEY_RETENTION.as_secs_f64())
        .fetch_optional(&mut *conn)
        .await?;
    match stored {
        None => Ok(Claim::Run),
        Some((fingerprint, _, _)) if fingerprint != request.fingerprint => Err(ClaimError::Reused),
        Some((_, status, body)) => Ok(Claim::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            body,
        })),
    }
}

/// Stores `response` under `request`'s key, in the transaction of the effect.
pub async fn store(
    conn: &mut PgConnection,
    request: &IdempotentRequest,
    response: &StoredResponse,
) -> sqlx::Result<()> {
    sqlx::query(UPSERT_KEY)
        .bind(&request.client)
        .bind(&request.key)
        .bind(request.fingerprint.as_slice())
        .bind(i16::try_from(response.status).unwrap_or(i16::MAX))
        .bind(&response.body)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes expired keys; returns how many.
pub async fn purge_expired(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let deleted = sqlx::query(PURGE_KEYS)
        .bind(KEY_RETENTION.as_secs_f64())
        .execute(conn)
        .await?;
    Ok(deleted.rows_affected())
}

/// SHA-256 of method, path and body. A body that is JSON is hashed in canonical form
/// (serde_json's map sorts keys, and whitespace is dropped), so a client that
/// re-serialises the same request still matches.
fn fingerprint(method: &Method, path: &str, body: &[u8]) -> [u8; 32] {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| serde_json::to_vec(&value).ok());
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(canonical.as_deref().unwrap_or(body));
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn request(key: &str, path: &str, body: &str) -> Result<Option<IdempotentRequest>, KeyError> {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_str(key).unwrap());
        IdempotentRequest::from_request(&headers, "alice", &Method::POST, path, body.as_bytes())
    }

    #[test]
    fn the_same_request_matches_whatever_its_json_layout() {
        let a = request("k", "/orders", r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        let b = request("k", "/orders", "{\"b\":[1,2],\n \"a\":1}").unwrap();
        assert_eq!(a, b);
        let other_body = request("k", "/orders", r#"{"a": 2, "b": [1, 2]}"#).unwrap();
        assert_ne!(a, other_body);
        let other_path = request("k", "/orders/x/pay", r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        assert_ne!(a, other_path);
    }

    #[test]
    fn keys_are_checked() {
        assert!(
            IdempotentRequest::from_request(&HeaderMap::new(), "alice", &Method::POST, "/", b"")
                .unwrap()
                .is_none()
        );
        assert_eq!(request("", "/", "{}"), Err(KeyError::Malformed));
        assert_eq!(
            request(&"k".repeat(MAX_KEY_LENGTH + 1), "/", "{}"),
            Err(KeyError::Malformed)
        );
        assert!(request(&"k".repeat(MAX_KEY_LENGTH), "/", "{}").is_ok());
        let mut headers = HeaderMap::new();
        headers.append(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_static("a"));
        headers.append(IDEMPOTENCY_KEY_HEADER, HeaderValue::from_static("b"));
        assert_eq!(
            IdempotentRequest::from_request(&headers, "alice", &Method::POST, "/", b"{}"),
            Err(KeyError::Repeated)
        );
    }
}
