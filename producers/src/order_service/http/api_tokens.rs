//! Bearer-token authentication of the order API.
//!
//! Tokens come from `--api-tokens-file` (one a line, `#` starts a comment) and from
//! `ORDERFLOW_API_TOKENS` (comma separated). Each entry is `name:token`:
//!
//! - `name` is the client's identity: the orders it places and the idempotency keys it
//!   sends belong to it (see the order API), and logs and metrics name it so the token
//!   itself is never printed. 1 to 64 letters, digits, `-`, `_` or `.`. Several tokens
//!   may name one client (rotation: add the new token, move the client, drop the old
//!   one); its orders stay its own throughout.
//! - `token` uses the characters RFC 6750 allows (letters, digits, `-._~+/=`) and carries
//!   at least 128 bits (see [`token_strength`](super::token_strength)); the example
//!   token of `.env.example` is refused.
//!
//! The old form, a bare `token` line without a name, is refused at start-up with one
//! line saying to write it as `name:token`: its client used to be named after the
//! token's hash, so orders would change owner with every rotation. Name it `default` to
//! keep the orders placed before clients were told apart (they belong to `default`).
//! Without any token (authentication off) every request is the client [`DEFAULT_CLIENT`].
//!
//! Only SHA-256 digests of the tokens are kept. A presented token is hashed and its
//! digest compared with every known digest in constant time, so neither the timing nor
//! the length of the comparison tells how much of a guess was right.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::order_service::http::api_error::ApiError;
use crate::order_service::http::token_strength;

/// Environment variable holding API tokens, comma separated (`name:token` or `token`).
pub const API_TOKENS_ENV: &str = "ORDERFLOW_API_TOKENS";

/// The client of requests when authentication is off, and the owner of orders written
/// before orders had owners.
pub const DEFAULT_CLIENT: &str = "default";

/// Most characters of a client name.
pub const MAX_NAME_CHARS: usize = 64;

/// Why the tokens could not be loaded; never contains a token.
#[derive(Debug, Error)]
pub enum TokenError {
    /// The token file cannot be read.
    #[error("--api-tokens-file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An entry is malformed.
    #[error("{origin}: {reason}")]
    Invalid {
        /// Where the entry is (`tokens.txt line 3`, `ORDERFLOW_API_TOKENS entry 2`).
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A flag's secret value: its `Debug` shows `***`, so printing the flags cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for SecretString {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_string()))
    }
}

/// The name of an authenticated client.
pub type ClientName = Arc<str>;

/// One known token.
#[derive(Clone)]
struct Entry {
    name: ClientName,
    digest: [u8; 32],
}

/// The tokens the order API accepts; empty when authentication is off.
#[derive(Clone, Default)]
pub struct ApiTokens {
    entries: Arc<[Entry]>,
}

impl fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiTokens")
            .field("clients", &self.names())
            .finish()
    }
}

impl ApiTokens {
    /// Loads the tokens of `file` and of the environment value `env` (either may be absent).
    pub fn load(file: Option<&Path>, env: Option<&str>) -> Result<Self, TokenError> {
        let mut entries = Vec::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            for (index, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or_default().trim();
                if !line.is_empty() {
                    let origin = format!("{} line {}", path.display(), index + 1);
                    entries.push(parse_entry(line, origin)?);
                }
            }
        }
        if let Some(env) = env {
            for (index, item) in env.split(',').map(str::trim).enumerate() {
                if !item.is_empty() {
                    let origin = format!("{API_TOKENS_ENV} entry {}", index + 1);
                    entries.push(parse_entry(item, origin)?);
                }
            }
        }
        // Several tokens may name one client (rotation); one token naming two clients
        // would make its requests' owner depend on the order of the list.
        let mut digests = HashSet::new();
        for entry in &entries {
            if !digests.insert(entry.digest) {
                return Err(invalid(
                    format!("client {}", entry.name),
                    "the same token is listed twice",
                ));
            }
        }
        Ok(Self {
            entries: entries.into(),
        })
    }

    /// Whether no token is configured (authentication off).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The client names, in the order configured, each once.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for entry in self.entries.iter() {
            if !names.contains(&&*entry.name) {
                names.push(&entry.name);
            }
        }
        names
    }

    /// The client presenting `token`, if it is known. Every known digest is compared,
    /// each in constant time.
    pub fn verify(&self, token: &str) -> Option<ClientName> {
        let digest = digest_of(token);
        let mut found = None;
        for entry in self.entries.iter() {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(entry.name.clone());
            }
        }
        found
    }
}

fn digest_of(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn invalid(origin: String, reason: &str) -> TokenError {
    TokenError::Invalid {
        origin,
        reason: reason.to_string(),
    }
}

/// Parses `name:token`. A token uses the characters RFC 6750 allows in a bearer token,
/// which exclude `:`, so the split is unambiguous.
fn parse_entry(text: &str, origin: String) -> Result<Entry, TokenError> {
    let Some((name, token)) = text.split_once(':') else {
        return Err(invalid(
            origin,
            "a token needs the name of its client: write the line as `name:token` (the \
             client owns the orders and idempotency keys of its requests; name it `default` \
             to keep the orders placed before clients had names)",
        ));
    };
    let (name, token) = (name.trim(), token.trim());
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(invalid(
            origin,
            &format!("a client name has 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'"),
        ));
    }
    if !token.chars().all(is_token_char) {
        return Err(invalid(
            origin,
            "a token may hold only letters, digits and - . _ ~ + / = (RFC 6750)",
        ));
    }
    if let Some(weakness) = token_strength::weakness(token) {
        return Err(invalid(format!("{origin} (client {name})"), &weakness));
    }
    Ok(Entry {
        name: name.into(),
        digest: digest_of(token),
    })
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
}

/// The client a request acts for, once admitted: a token's client name, or
/// [`DEFAULT_CLIENT`] without authentication. Admission puts it in the request's
/// extensions; the handlers scope orders and idempotency keys to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub ClientName);

/// Who a request says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Authentication is off.
    Anonymous,
    /// A known token's client.
    Client(ClientName),
    /// Authentication is on and the request sent no bearer token.
    Missing,
    /// Authentication is on and the request's bearer token is unknown.
    Invalid,
}

impl Identity {
    /// The client an admitted request acts for (`None` for a refused identity).
    pub fn caller(&self) -> Option<Caller> {
        match self {
            Identity::Anonymous => Some(Caller(DEFAULT_CLIENT.into())),
            Identity::Client(name) => Some(Caller(name.clone())),
            Identity::Missing | Identity::Invalid => None,
        }
    }
}

impl ApiTokens {
    /// The identity of a request with `headers`.
    pub fn identify(&self, headers: &HeaderMap) -> Identity {
        if self.is_empty() {
            return Identity::Anonymous;
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token);
        match presented {
            None => Identity::Missing,
            Some(token) => self
                .verify(token)
                .map_or(Identity::Invalid, Identity::Client),
        }
    }
}

/// The 401 answer to a request with a missing or unknown token (`None` for the other
/// identities), with the `WWW-Authenticate` challenge of RFC 6750.
pub fn refusal(identity: &Identity) -> Option<Response> {
    let (message, challenge) = match identity {
        Identity::Missing => (
            "authentication required: send Authorization: Bearer <token>",
            r#"Bearer realm="orderflow""#,
        ),
        Identity::Invalid => (
            "the bearer token is not valid",
            r#"Bearer realm="orderflow", error="invalid_token""#,
        ),
        Identity::Anonymous | Identity::Client(_) => return None,
    };
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        message,
        Some("Authorization".into()),
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    Some(response)
}

/// The token of an `Authorization: Bearer <token>` value (the scheme is case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "3f9c1a7be2d84c05a61e9b7d2c4f8e10";
    const BOB: &str = "8b2e6f0c4d1a9e7f3b5c2d8a6e4f1c09";
    const ALICE_NEXT: &str = "kR4_x9Lq2Zb-Tw7mPc0sYe";

    #[test]
    fn file_and_environment_tokens_name_their_clients() {
        let dir = std::env::temp_dir().join(format!("api-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens");
        std::fs::write(
            &file,
            format!("# clients\nalice:{ALICE}\n\n  bob:{BOB}  # the second\n"),
        )
        .unwrap();
        let tokens = ApiTokens::load(Some(&file), Some(&format!("alice:{ALICE_NEXT}, "))).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(tokens.verify(ALICE).as_deref(), Some("alice"));
        assert_eq!(
            tokens.verify(ALICE_NEXT).as_deref(),
            Some("alice"),
            "a second token of one client (rotation)"
        );
        assert_eq!(tokens.verify(BOB).as_deref(), Some("bob"));
        assert_eq!(tokens.names(), ["alice", "bob"]);
        assert_eq!(tokens.verify("3f9c1a7be2d84c05a61e9b7d2c4f8e1X"), None);
        assert_eq!(tokens.verify(""), None);
        assert!(!format!("{tokens:?}").contains(ALICE));
    }

    #[test]
    fn bad_entries_are_refused_in_one_line_without_echoing_the_token() {
        for (entry, complaint) in [
            ("a:0123456789abcdef", "64 bits"),
            ("a:change-me-order-api-token", ".env.example"),
            ("a:a b c d e f g h i j k l", "may hold only"),
            (":3f9c1a7be2d84c05a61e9b7d2c4f8e10", "client name"),
            ("3f9c1a7be2d84c05a61e9b7d2c4f8e10", "`name:token`"),
        ] {
            let error = ApiTokens::load(None, Some(entry)).unwrap_err().to_string();
            assert!(error.contains(complaint), "{entry}: {error}");
            assert!(error.contains("entry 1"), "{error}");
            assert_eq!(error.lines().count(), 1, "{error}");
            let token = entry.rsplit(':').next().unwrap();
            assert!(!error.contains(token), "{error}");
        }
        let twice = format!("a:{ALICE},b:{ALICE}");
        let error = ApiTokens::load(None, Some(&twice)).unwrap_err().to_string();
        assert!(error.contains("twice") && !error.contains(ALICE), "{error}");
    }

    #[test]
    fn an_admitted_request_acts_for_its_client_or_the_default_one() {
        assert_eq!(
            Identity::Anonymous.caller(),
            Some(Caller(DEFAULT_CLIENT.into()))
        );
        assert_eq!(
            Identity::Client("alice".into()).caller(),
            Some(Caller("alice".into()))
        );
        assert_eq!(Identity::Missing.caller(), None);
        assert_eq!(Identity::Invalid.caller(), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
