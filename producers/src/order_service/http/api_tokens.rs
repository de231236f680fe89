//! Bearer-token authentication of the order API.
//!
//! Tokens come from `--api-tokens-file` (one a line, `#` starts a comment) and from
//! `ORDERFLOW_API_TOKENS` (comma separated). Each is `token` or `name:token`; the name
//! identifies the client in logs and metrics so the token itself is never printed. A
//! token without a name is called `token-` and the first 8 hex digits of its SHA-256.
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

/// Environment variable holding API tokens, comma separated (`name:token` or `token`).
pub const API_TOKENS_ENV: &str = "ORDERFLOW_API_TOKENS";

/// Fewest characters of a token: anything shorter is guessable.
pub const MIN_TOKEN_CHARS: usize = 16;

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
        let mut names = HashSet::new();
        let mut digests = HashSet::new();
        for entry in &entries {
            if !digests.insert(entry.digest) {
                return Err(invalid(
                    format!("client {}", entry.name),
                    "the same token is listed twice",
                ));
            }
            if !names.insert(entry.name.clone()) {
                return Err(invalid(
                    format!("client {}", entry.name),
                    "two tokens have this name",
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

    /// The client names, in the order configured.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|entry| &*entry.name).collect()
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

/// Parses `name:token` or `token`. A token uses the characters RFC 6750 allows in a
/// bearer token, which exclude `:`, so the split is unambiguous.
fn parse_entry(text: &str, origin: String) -> Result<Entry, TokenError> {
    let (name, token) = match text.split_once(':') {
        Some((name, token)) => (Some(name.trim()), token.trim()),
        None => (None, text),
    };
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(invalid(
            origin,
            &format!("a token needs at least {MIN_TOKEN_CHARS} characters"),
        ));
    }
    if !token.chars().all(is_token_char) {
        return Err(invalid(
            origin,
            "a token may hold only letters, digits and - . _ ~ + / = (RFC 6750)",
        ));
    }
    let digest = digest_of(token);
    let name = match name {
        Some(name) => {
            if name.is_empty()
                || name.chars().count() > MAX_NAME_CHARS
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(invalid(
                    origin,
                    &format!(
                        "a client name has 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'"
                    ),
                ));
            }
            name.to_string()
        }
        None => format!("token-{}", hex_prefix(&digest)),
    };
    Ok(Entry {
        name: name.into(),
        digest,
    })
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
}

fn hex_prefix(digest: &[u8; 32]) -> String {
    digest[..4]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

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

    const ALICE: &str = "alice-0123456789abcdef";
    const BOB: &str = "bob-0123456789abcdef";

    #[test]
    fn file_and_environment_tokens_name_their_clients() {
        let dir = std::env::temp_dir().join(format!("api-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens");
        std::fs::write(
            &file,
            format!("# clients\nalice:{ALICE}\n\n  {BOB}  # no name\n"),
        )
        .unwrap();
        let tokens = ApiTokens::load(Some(&file), Some("ci:ci-token-0123456789abcdef, ")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(tokens.verify(ALICE).as_deref(), Some("alice"));
        assert_eq!(
            tokens.verify("ci-token-0123456789abcdef").as_deref(),
            Some("ci")
        );
        let unnamed = tokens.verify(BOB).expect("unnamed token is known");
        assert!(unnamed.starts_with("token-") && !unnamed.contains(BOB));
        assert_eq!(tokens.verify("alice-0123456789abcdeX"), None);
        assert_eq!(tokens.verify(""), None);
        assert!(!format!("{tokens:?}").contains(ALICE));
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_the_token() {
        for (entry, complaint) in [
            ("short", "at least 16"),
            ("a b c d e f g h i j k l", "may hold only"),
            (":0123456789abcdef0", "client name"),
        ] {
            let error = ApiTokens::load(None, Some(entry)).unwrap_err().to_string();
            assert!(error.contains(complaint), "{entry}: {error}");
            assert!(error.contains("entry 1"), "{error}");
        }
        let twice = format!("a:{ALICE},b:{ALICE}");
        let error = ApiTokens::load(None, Some(&twice)).unwrap_err().to_string();
        assert!(error.contains("twice") && !error.contains(ALICE), "{error}");
        let same_name = format!("a:{ALICE},a:{BOB}");
        assert!(ApiTokens::load(None, Some(&same_name)).is_err());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
