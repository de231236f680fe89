//! A Kafka client properties file (`--kafka-config client.properties`), written the way
//! Java and librdkafka users already write it, and the rule that keeps its secrets out of
//! logs and error messages.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

/// What replaces a secret value wherever settings are shown.
pub const REDACTED: &str = "***";

/// The `key=value` pairs of a client properties file, in file order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties {
    entries: Vec<(String, String)>,
}

impl ClientProperties {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        Self::parse(&text).map_err(|err| format!("{}: {err}", path.display()))
    }

    /// Parses Java properties text: `key=value` or `key: value` lines, `#` and `!`
    /// comments, blank lines. A `sasl.jaas.config` line with `username="..."` and
    /// `password="..."` (what Java clients take) becomes `sasl.username` and
    /// `sasl.password`, which librdkafka takes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let split = line
                .find(['=', ':'])
                .ok_or_else(|| format!("line {}: expected key=value", number + 1))?;
            let key = line[..split].trim();
            let value = line[split + 1..].trim();
            if key.is_empty() {
                return Err(format!("line {}: empty key", number + 1));
            }
            if key == "sasl.jaas.config" {
                entries.extend(
                    jaas_credentials(value)
                        .map_err(|err| format!("line {}: sasl.jaas.config: {err}", number + 1))?,
                );
            } else {
                entries.push((key.to_string(), value.to_string()));
            }
        }
        Ok(Self { entries })
    }

    /// The value of `key`, the last one when the file sets it twice.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The pairs in file order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted_pairs(&self.entries))
    }
}

/// Whether the value of setting `key` is a secret that must never be shown:
/// passwords and passphrases, client secrets, tokens, private keys and JAAS configs
/// (`sasl.oauthbearer.assertion.private.key.pem` and `...passphrase` included).
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("passphrase")
        || key.contains("secret")
        || key.contains("token")
        || key.contains("private.key")
        || key.contains("private_key")
        || key.contains("jaas")
        || key.contains("credentials")
        || key == "ssl.key.pem"
        || key == "ssl_key"
        || key == "sasl.oauthbearer.config"
        || key.ends_with("basic.auth.user.info")
}

/// Whether `key` is a schema registry setting (Confluent's serializer and registry client
/// names) rather than a Kafka one: such keys share a Confluent `client.properties` with the
/// Kafka settings, and librdkafka refuses them.
pub fn is_registry_key(key: &str) -> bool {
    key.starts_with("schema.registry.")
        || key.starts_with("basic.auth.")
        || key.starts_with("bearer.auth.")
}

/// `value`, or [`REDACTED`] when `key` names a secret; a URL shows as [`mask_url`] does.
pub fn shown_value<'a>(key: &str, value: &'a str) -> Cow<'a, str> {
    if is_secret(key) {
        return Cow::Borrowed(REDACTED);
    }
    mask_url(value)
}

/// A URL with its secrets replaced: the password of the userinfo
/// (`https://user:secret@host` shows `user:***@host`) and the value of every query
/// parameter whose name is a secret (`?password=`, `sslpassword=`, `access_token=`).
/// Anything else comes back unchanged.
pub fn mask_url(value: &str) -> Cow<'_, str> {
    let mut out = value.to_owned();
    if let Some(start) = value.find("://").map(|at| at + 3) {
        let authority_end = value[start..]
            .find(['/', '?', '#'])
            .map_or(value.len(), |end| start + end);
        if let Some(at) = value[start..authority_end].rfind('@') {
            let userinfo = &value[start..start + at];
            if let Some((user, _)) = userinfo.split_once(':') {
                out = format!(
                    "{}{user}:{REDACTED}{}",
                    &value[..start],
                    &value[start + at..]
                );
            }
        }
    }
    if let Some((head, query)) = out.split_once('?') {
        let (query, fragment) = match query.split_once('#') {
            Some((query, fragment)) => (query, Some(fragment)),
            None => (query, None),
        };
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret(name) => format!("{name}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!(
            "{head}?{}{}",
            masked.join("&"),
            fragment.map(|f| format!("#{f}")).unwrap_or_default()
        );
    }
    if out == value {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(out)
    }
}

/// `key=value, ...` with secret values replaced, for logs.
pub fn redacted_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={}", shown_value(key, value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Takes `username="..."` and `password="..."` out of a JAAS login module line.
fn jaas_credentials(value: &str) -> Result<Vec<(String, String)>, String> {
    let field = |name: &str| -> Option<String> {
        let start = value.find(&format!("{name}=\""))? + name.len() + 2;
        let end = value[start..].find('"')? + start;
        Some(value[start..end].to_string())
    };
    match (field("username"), field("password")) {
        (Some(user), Some(password)) => Ok(vec![
            ("sasl.username".to_string(), user),
            ("sasl.password".to_string(), password),
        ]),
        _ => Err("expected username=\"...\" password=\"...\"".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_java_properties() {
        let props = ClientProperties::parse(
            "# managed cluster\n\
             bootstrap.servers=b1:9092\n\
             security.protocol : SASL_SSL\n\
             ! other comment\n\
             sasl.mechanism=SCRAM-SHA-512\n\
             ssl.ca.location=/etc/ca.pem\n",
        )
        .unwrap();
        assert_eq!(props.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(props.get("bootstrap.servers"), Some("b1:9092"));
        assert_eq!(props.entries().len(), 4);
        assert!(
            ClientProperties::parse("novalue")
                .unwrap_err()
                .contains("line 1")
        );
    }

    #[test]
    fn jaas_config_becomes_username_and_password() {
        let props = ClientProperties::parse(
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \
             required username=\"app\" password=\"s3cr=t\";",
        )
        .unwrap();
        assert_eq!(props.get("sasl.username"), Some("app"));
        assert_eq!(props.get("sasl.password"), Some("s3cr=t"));
    }

    #[test]
    fn every_secret_bearing_key_and_url_form_is_masked() {
        let keys = [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.truststore.password",
            "ssl.key.pem",
            "sasl.jaas.config",
            "sasl.oauthbearer.config",
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.assertion.private.key.pem",
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.assertion.private.key.file",
            "basic.auth.user.info",
            "schema.registry.basic.auth.user.info",
            "bearer.auth.token",
            "schema.registry.bearer.auth.token",
        ];
        for key in keys {
            assert_eq!(shown_value(key, "SECRET-VALUE"), REDACTED, "{key}");
        }
        for url in [
            "postgres://orderflow:SECRET-VALUE@db:5432/orders",
            "postgres://orderflow@db:5432/orders?password=SECRET-VALUE",
            "postgres://orderflow@db/orders?sslmode=require&sslpassword=SECRET-VALUE",
            "postgresql://db/orders?user=u&password=SECRET-VALUE#x",
            "https://user:SECRET-VALUE@registry:8081/apis/ccompat/v7",
            "https://registry:8081/?access_token=SECRET-VALUE",
        ] {
            let shown = shown_value("url", url);
            assert!(!shown.contains("SECRET-VALUE"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
        assert_eq!(
            mask_url("postgres://u@h/db?sslmode=require&password=x"),
            "postgres://u@h/db?sslmode=require&password=***"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(mask_url("127.0.0.1:9092"), "127.0.0.1:9092");
    }

    #[test]
    fn secrets_never_show() {
        let props = ClientProperties::parse(
            "sasl.username=app\nsasl.password=hunter2\nssl.key.password=k\n\
             sasl.oauthbearer.client.secret=c\nssl.keystore.password=p\n\
             basic.auth.user.info=u:q\nbearer.auth.token=t\n",
        )
        .unwrap();
        let shown = format!("{props:?}");
        assert!(shown.contains("sasl.username=app"), "{shown}");
        for secret in ["hunter2", "=k,", "=c,", "=p,", "u:q", "=t"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(shown.matches(REDACTED).count(), 6, "{shown}");
        assert_eq!(
            shown_value("schema.registry.url", "https://key:hunter2@sr:1/apis"),
            "https://key:***@sr:1/apis"
        );
        assert_eq!(
            shown_value("schema.registry.url", "http://sr:1/a@b"),
            "http://sr:1/a@b"
        );
    }
}
