//! How to reach a schema registry: its URL, the CA that signed its certificate, and the
//! credentials, the way Confluent's clients take them (`schema.registry.url` with optional
//! `user:password@` userinfo, `schema.registry.ssl.ca.location`, `basic.auth.user.info`,
//! `bearer.auth.token`). Secrets never show in `Debug` or in errors.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::percent_decode_str;
use reqwest::Url;

use crate::error::RegistryError;

/// Default timeout of one HTTP call to the registry.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What replaces a secret wherever settings are shown.
const REDACTED: &str = "***";

/// Credentials sent with every registry call.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum RegistryAuth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP basic auth (Confluent Cloud: the API key and secret).
    Basic {
        /// User name or API key.
        user: String,
        /// Password or API secret.
        password: String,
    },
    /// `Authorization: Bearer <token>` with a token obtained elsewhere.
    Bearer(String),
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryAuth::None => f.write_str("None"),
            RegistryAuth::Basic { user, .. } => write!(f, "Basic({user}:{REDACTED})"),
            RegistryAuth::Bearer(_) => write!(f, "Bearer({REDACTED})"),
        }
    }
}

/// Where the registry is and how to talk to it. Built from a URL, then refined.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    url: String,
    ca_location: Option<PathBuf>,
    auth: RegistryAuth,
    timeout: Duration,
}

impl RegistrySettings {
    /// Settings for the registry at `url`: `http://` or `https://`, host, optional port and
    /// path (Apicurio: `/apis/ccompat/v7`). Userinfo (`https://key:secret@host`, percent-encoded
    /// as in any URL) becomes basic auth and is taken out of the URL.
    pub fn new(url: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidUrl {
            url: shown_url(url),
            reason: reason.to_owned(),
        };
        let trimmed = url.trim();
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(invalid("expected http://HOST:PORT or https://HOST:PORT"));
        }
        let mut parsed = Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        let mut auth = RegistryAuth::None;
        if !parsed.username().is_empty() {
            let decode = |part: &str| {
                percent_decode_str(part)
                    .decode_utf8()
                    .map(|text| text.into_owned())
                    .map_err(|_| invalid("the userinfo is not UTF-8 once percent-decoded"))
            };
            auth = RegistryAuth::Basic {
                user: decode(parsed.username())?,
                password: decode(parsed.password().unwrap_or_default())?,
            };
            // Cannot fail: the URL has a host.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
        }
        Ok(Self {
            url: parsed.as_str().trim_end_matches('/').to_owned(),
            ca_location: None,
            auth,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// Trusts the CA certificates of this PEM file, and only them, for an `https` registry
    /// (`schema.registry.ssl.ca.location`; without it the system's trust store applies).
    pub fn with_ca_location(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_location = Some(path.into());
        self
    }

    /// Basic auth from `user:password` (`basic.auth.user.info`; the password may contain
    /// `:`). Refused when the URL already carries userinfo or a bearer token is set.
    pub fn with_user_info(mut self, user_info: &str) -> Result<Self, RegistryError> {
        let Some((user, password)) = user_info.split_once(':') else {
            return Err(RegistryError::InvalidSetting {
                setting: "basic.auth.user.info",
                reason: "expected USER:PASSWORD".into(),
            });
        };
        self.set_auth(
            "basic.auth.user.info",
            RegistryAuth::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            },
        )?;
        Ok(self)
    }

    /// `Authorization: Bearer <token>` (`bearer.auth.token`). Refused when basic auth is set.
    pub fn with_bearer_token(mut self, token: &str) -> Result<Self, RegistryError> {
        if token.trim().is_empty() {
            return Err(RegistryError::InvalidSetting {
                setting: "bearer.auth.token",
                reason: "empty".into(),
            });
        }
        self.set_auth(
            "bearer.auth.token",
            RegistryAuth::Bearer(token.trim().to_owned()),
        )?;
        Ok(self)
    }

    /// Per-call timeout (default [`DEFAULT_REQUEST_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The base URL, without userinfo and trailing slash: safe to show.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The CA file, when one replaces the system's trust store.
    pub fn ca_location(&self) -> Option<&Path> {
        self.ca_location.as_deref()
    }

    /// The credentials.
    pub fn auth(&self) -> &RegistryAuth {
        &self.auth
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the registry is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }

    fn set_auth(&mut self, setting: &'static str, auth: RegistryAuth) -> Result<(), RegistryError> {
        let already = match &self.auth {
            RegistryAuth::None => {
                self.auth = auth;
                return Ok(());
            }
            RegistryAuth::Basic { .. } => {
                "basic auth (userinfo in the URL or basic.auth.user.info)"
            }
            RegistryAuth::Bearer(_) => "bearer.auth.token",
        };
        Err(RegistryError::InvalidSetting {
            setting,
            reason: format!("the registry credentials are already set by {already}; give one"),
        })
    }
}

impl fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("url", &self.url)
            .field("ca_location", &self.ca_location)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` with the password of its userinfo replaced, for error messages about a URL that
/// may not even parse.
fn shown_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |at| at + 3);
    let rest = &url[start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{}{user}:{REDACTED}@{}", &url[..start], &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_in_the_url_becomes_basic_auth() {
        let settings =
            RegistrySettings::new("https://key:s%40cret:x@registry.example:8443/apis/ccompat/v7/")
                .unwrap();
        assert_eq!(
            settings.url(),
            "https://registry.example:8443/apis/ccompat/v7"
        );
        assert!(settings.is_https());
        assert_eq!(
            settings.auth(),
            &RegistryAuth::Basic {
                user: "key".into(),
                password: "s@cret:x".into()
            }
        );
        let shown = format!("{settings:?}");
        assert!(
            !shown.contains("cret") && shown.contains("key:***"),
            "{shown}"
        );
    }

    #[test]
    fn credentials_come_from_one_place() {
        let settings = RegistrySettings::new("https://r:1")
            .unwrap()
            .with_user_info("app:pa:ss")
            .unwrap();
        assert_eq!(
            settings.auth(),
            &RegistryAuth::Basic {
                user: "app".into(),
                password: "pa:ss".into()
            }
        );
        let error = settings.with_bearer_token("tok").unwrap_err().to_string();
        assert!(
            error.contains("bearer.auth.token") && error.contains("already"),
            "{error}"
        );
        let error = RegistrySettings::new("https://u:hunter2@r:1")
            .unwrap()
            .with_user_info("app:x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("basic.auth.user.info"), "{error}");
        let error = RegistrySettings::new("http://r:1")
            .unwrap()
            .with_user_info("no-colon")
            .unwrap_err()
            .to_string();
        assert!(error.contains("USER:PASSWORD"), "{error}");
        let bearer = RegistrySettings::new("http://r:1")
            .unwrap()
            .with_bearer_token("t0ken")
            .unwrap();
        assert!(!format!("{bearer:?}").contains("t0ken"));
    }

    #[test]
    fn bad_urls_never_show_the_password() {
        for url in ["ftp://u:hunter2@r", "https://u:hunter2@", "u:hunter2@r:1"] {
            let error = RegistrySettings::new(url).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
        assert_eq!(shown_url("https://u:p@h:1/x@y"), "https://u:***@h:1/x@y");
    }
}
