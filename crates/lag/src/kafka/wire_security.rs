//! The TLS and SASL settings of the engine's own wire-protocol connections, read from the
//! same client properties librdkafka gets (`security.protocol`, `sasl.*`, `ssl.*`), so a
//! cluster that needs SASL_SSL is reached the same way by every client.
//!
//! Spoken here: PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL; SASL mechanisms PLAIN,
//! SCRAM-SHA-256 and SCRAM-SHA-512; TLS with the system roots or `ssl.ca.location` /
//! `ssl.ca.pem`, a client certificate from PEM files, hostname checking as
//! `ssl.endpoint.identification.algorithm` says. Anything else (GSSAPI, OAUTHBEARER,
//! PKCS#12 keystores) is [`WireSecurity::unsupported`]: the engine then keeps
//! librdkafka's per-group clients, as before.

use std::fmt;

use rdkafka::ClientConfig;

/// A SASL mechanism the wire connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616: user and password in one message (use it over TLS only).
    Plain,
    /// RFC 5802 / 7677 with SHA-256.
    ScramSha256,
    /// RFC 5802 with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// The name Kafka uses in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslCredentials {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// `sasl.username`.
    pub username: String,
    /// `sasl.password`.
    pub password: String,
}

impl fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// TLS settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM text of the CA certificates to trust (`ssl.ca.pem` or the file of
    /// `ssl.ca.location`); the system roots when `None`.
    pub ca_pem: Option<String>,
    /// PEM text of the client certificate and its key (mutual TLS).
    pub identity: Option<(String, String)>,
    /// Check that the certificate names the broker's host (`https`, librdkafka's default).
    pub verify_hostname: bool,
    /// Check the certificate chain at all (`enable.ssl.certificate.verification`).
    pub verify_certificate: bool,
}

/// How the wire-protocol connections reach brokers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireSecurity {
    /// TLS, when the protocol is SSL or SASL_SSL.
    pub tls: Option<TlsSettings>,
    /// SASL, when the protocol is SASL_PLAINTEXT or SASL_SSL.
    pub sasl: Option<SaslCredentials>,
    /// Why these settings cannot be spoken by the wire connections, if they cannot.
    pub unsupported: Option<String>,
}

impl WireSecurity {
    /// Plaintext, no SASL.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Reads the settings librdkafka would use from `config`. Files named by the
    /// settings are read now, so a missing CA file fails here with its name.
    pub fn from_client_config(config: &ClientConfig) -> Self {
        let get = |key: &str| config.get(key).map(str::trim).filter(|v| !v.is_empty());
        let protocol = get("security.protocol")
            .unwrap_or("plaintext")
            .to_ascii_lowercase();
        let (tls, sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => return Self::refused(format!("security.protocol {other}")),
        };
        let mut out = Self::default();
        if sasl {
            let mechanism = match get("sasl.mechanism")
                .or_else(|| get("sasl.mechanisms"))
                .unwrap_or("GSSAPI")
                .to_ascii_uppercase()
                .as_str()
            {
                "PLAIN" => SaslMechanism::Plain,
                "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                other => return Self::refused(format!("sasl.mechanism {other}")),
            };
            out.sasl = Some(SaslCredentials {
                mechanism,
                username: get("sasl.username").unwrap_or_default().to_owned(),
                password: config.get("sasl.password").unwrap_or_default().to_owned(),
            });
        }
        if tls {
            if get("ssl.keystore.location").is_some() || get("ssl.engine.location").is_some() {
                return Self::refused("ssl.keystore.location (PKCS#12) or an SSL engine".into());
            }
            let read = |key: &str| -> Result<Option<String>, String> {
                match get(key) {
                    None => Ok(None),
                    Some(path) => std::fs::read_to_string(path)
                        .map(Some)
                        .map_err(|e| format!("{key} {path}: {e}")),
                }
            };
            let settings = (|| -> Result<TlsSettings, String> {
                let ca_pem = match get("ssl.ca.pem") {
                    Some(pem) => Some(pem.to_owned()),
                    None => read("ssl.ca.location")?,
                };
                let certificate = match get("ssl.certificate.pem") {
                    Some(pem) => Some(pem.to_owned()),
                    None => read("ssl.certificate.location")?,
                };
                let key = match get("ssl.key.pem") {
                    Some(pem) => Some(pem.to_owned()),
                    None => read("ssl.key.location")?,
                };
                if get("ssl.key.password").is_some() {
                    return Err("ssl.key.password (an encrypted client key)".into());
                }
                Ok(TlsSettings {
                    ca_pem,
                    identity: certificate.zip(key),
                    verify_hostname: !get("ssl.endpoint.identification.algorithm")
                        .is_some_and(|v| v.eq_ignore_ascii_case("none")),
                    verify_certificate: !get("enable.ssl.certificate.verification")
                        .is_some_and(|v| v.eq_ignore_ascii_case("false")),
                })
            })();
            match settings {
                Ok(settings) => out.tls = Some(settings),
                Err(what) => return Self::refused(what),
            }
        }
        out
    }

    fn refused(what: String) -> Self {
        Self {
            unsupported: Some(what),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (k, v) in pairs {
            config.set(*k, *v);
        }
        config
    }

    #[test]
    fn the_same_properties_as_librdkafka_pick_tls_and_sasl() {
        assert_eq!(
            WireSecurity::from_client_config(&config(&[])),
            WireSecurity::plaintext()
        );
        let ca = tempfile_with("-----BEGIN CERTIFICATE-----\n");
        let secure = WireSecurity::from_client_config(&config(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", "orderflow"),
            ("sasl.password", "s3cret"),
            ("ssl.ca.location", ca.to_str().unwrap()),
        ]));
        assert_eq!(secure.unsupported, None);
        let sasl = secure.sasl.clone().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert!(!format!("{secure:?}").contains("s3cret"));
        let tls = secure.tls.unwrap();
        assert!(tls.ca_pem.unwrap().starts_with("-----BEGIN"));
        assert!(tls.verify_hostname && tls.verify_certificate);

        let plain = WireSecurity::from_client_config(&config(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "PLAIN"),
        ]));
        assert_eq!(plain.sasl.unwrap().mechanism, SaslMechanism::Plain);
        assert!(plain.tls.is_none());
        std::fs::remove_file(ca).ok();
    }

    #[test]
    fn what_the_wire_connections_cannot_speak_is_named() {
        for pairs in [
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "OAUTHBEARER"),
            ][..],
            &[("security.protocol", "SASL_PLAINTEXT")][..],
            &[
                ("security.protocol", "SSL"),
                ("ssl.keystore.location", "/x.p12"),
            ][..],
            &[
                ("security.protocol", "SSL"),
                ("ssl.ca.location", "/no/such/ca.pem"),
            ][..],
        ] {
            let security = WireSecurity::from_client_config(&config(pairs));
            assert!(security.unsupported.is_some(), "{pairs:?}");
        }
    }

    fn tempfile_with(text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!(
            "orderflow-wire-security-{}-{:?}.pem",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, text).unwrap();
        path
    }
}
