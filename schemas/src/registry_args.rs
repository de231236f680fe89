//! Schema registry connection flags shared by every binary that talks to the registry, and
//! how they combine with a properties file the way Confluent's clients read it: the
//! registry settings sit in the same `client.properties` as the Kafka settings
//! (`schema.registry.url`, `basic.auth.user.info`, ...), or in a file of their own.

use std::fmt;
use std::path::{Path, PathBuf};

use orderflow_runtime::client_properties::{ClientProperties, REDACTED};
use orderflow_runtime::{Error, Result};

use crate::{DEFAULT_REGISTRY_URL, RegistryClient, RegistrySettings};

/// Schema registry connection flags (their ids are prefixed: `KafkaArgs` sits beside them).
#[derive(Clone, Default, clap::Args)]
pub struct RegistryArgs {
    /// Schema registry base URL (its Confluent-compatible REST API), http:// or https://;
    /// https://USER:PASSWORD@HOST also gives basic auth [default: schema.registry.url of
    /// --schema-registry-config or --kafka-config, else
    /// http://127.0.0.1:8081/apis/ccompat/v7].
    #[arg(
        id = "schema_registry_url",
        long = "schema-registry-url",
        alias = "registry-url",
        env = "SCHEMA_REGISTRY_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub url: Option<String>,
    /// Properties file with the registry settings under Confluent's names
    /// (schema.registry.url, schema.registry.ssl.ca.location, basic.auth.user.info,
    /// bearer.auth.token). The --kafka-config file is read for them too, as Confluent
    /// clients share one client.properties; this file and the flags win over it.
    #[arg(
        id = "schema_registry_config",
        long = "schema-registry-config",
        env = "SCHEMA_REGISTRY_CONFIG",
        value_name = "FILE",
        value_parser = parse_properties_file
    )]
    pub config_file: Option<ClientProperties>,
    /// PEM file of the CA that signed the registry's certificate; replaces the system's
    /// trust store [default: schema.registry.ssl.ca.location of the properties files].
    #[arg(
        id = "schema_registry_ca_location",
        long = "schema-registry-ca-location",
        env = "SCHEMA_REGISTRY_SSL_CA_LOCATION",
        value_name = "PEM"
    )]
    pub ca_location: Option<PathBuf>,
    /// Basic auth as USER:PASSWORD (Confluent Cloud: API key and secret); prefer the
    /// environment or a properties file (basic.auth.user.info) to a flag, which other
    /// users can read in the process list.
    #[arg(
        id = "schema_registry_user_info",
        long = "schema-registry-user-info",
        env = "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        value_name = "USER_INFO",
        hide_env_values = true
    )]
    pub user_info: Option<String>,
    /// Bearer token sent as `Authorization: Bearer TOKEN` (bearer.auth.token); prefer the
    /// environment or a properties file to a flag.
    #[arg(
        id = "schema_registry_bearer_token",
        long = "schema-registry-bearer-token",
        env = "SCHEMA_REGISTRY_BEARER_AUTH_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub bearer_token: Option<String>,
    /// Send basic auth or a bearer token over plain http:// to a registry that is not on
    /// this host. Refused by default: anyone on the path reads the credentials.
    #[arg(
        id = "schema_registry_allow_insecure_auth",
        long = "schema-registry-allow-insecure-auth",
        env = "SCHEMA_REGISTRY_ALLOW_INSECURE_AUTH"
    )]
    pub allow_insecure_auth: bool,
}

impl RegistryArgs {
    /// Flags naming only `url`, for tests and embedding.
    pub fn for_url(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// The registry settings: each flag, else the `--schema-registry-config` file, else the
    /// `kafka_config` file (`--kafka-config`), else the default.
    pub fn settings(&self, kafka_config: Option<&ClientProperties>) -> Result<RegistrySettings> {
        let files = [self.config_file.as_ref(), kafka_config];
        let file_value = |keys: &[&str]| {
            files
                .iter()
                .flatten()
                .find_map(|file| keys.iter().find_map(|key| file.get(key)))
        };
        let url = self
            .url
            .as_deref()
            .or_else(|| file_value(&["schema.registry.url"]))
            .unwrap_or(DEFAULT_REGISTRY_URL);
        if url.contains(',') {
            return Err(Error::Config(format!(
                "schema.registry.url: give one registry URL, not a list ({})",
                shown_list(url)
            )));
        }
        let mut settings = RegistrySettings::new(url).map_err(config_error)?;
        let ca = self
            .ca_location
            .clone()
            .or_else(|| file_value(&["schema.registry.ssl.ca.location"]).map(PathBuf::from))
            .or_else(|| pem_truststore(&file_value));
        if let Some(ca) = ca {
            settings = settings.with_ca_location(ca);
        }
        let user_info = match &self.user_info {
            Some(user_info) => Some(user_info.clone()),
            None => file_user_info(&file_value, kafka_config)?,
        };
        if let Some(user_info) = user_info {
            settings = settings.with_user_info(&user_info).map_err(config_error)?;
        }
        let bearer_source = file_value(&["bearer.auth.credentials.source"]);
        if let Some(source) = bearer_source.filter(|s| !s.eq_ignore_ascii_case("STATIC_TOKEN")) {
            return Err(Error::Config(format!(
                "bearer.auth.credentials.source={source} is not supported: give the token \
                 itself (bearer.auth.credentials.source=STATIC_TOKEN, bearer.auth.token=...)"
            )));
        }
        let token = self
            .bearer_token
            .as_deref()
            .or_else(|| file_value(&["bearer.auth.token", "schema.registry.bearer.auth.token"]));
        if let Some(token) = token {
            settings = settings.with_bearer_token(token).map_err(config_error)?;
        }
        if !self.allow_insecure_auth
            && *settings.auth() != crate::RegistryAuth::None
            && let Some(host) = plain_http_remote_host(settings.url())
        {
            return Err(Error::Config(format!(
                "schema registry credentials would cross the network readable: {} is plain \
                 http:// to {host}; use https://, or pass \
                 --schema-registry-allow-insecure-auth (SCHEMA_REGISTRY_ALLOW_INSECURE_AUTH=true)",
                settings.url()
            )));
        }
        Ok(settings)
    }

    /// A registry client with these settings (nothing is contacted yet).
    pub fn client(&self, kafka_config: Option<&ClientProperties>) -> Result<RegistryClient> {
        RegistryClient::with_settings(self.settings(kafka_config)?).map_err(config_error)
    }
}

impl fmt::Debug for RegistryArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| REDACTED);
        f.debug_struct("RegistryArgs")
            .field("url", &self.url.as_deref().map(shown_list))
            .field("config_file", &self.config_file)
            .field("ca_location", &self.ca_location)
            .field("user_info", &hidden(&self.user_info))
            .field("bearer_token", &hidden(&self.bearer_token))
            .field("allow_insecure_auth", &self.allow_insecure_auth)
            .finish()
    }
}

/// `basic.auth.user.info` of the properties files, following
/// `basic.auth.credentials.source` as Confluent's clients do: `USER_INFO` (the key),
/// `URL` (userinfo of the URL, so nothing here) or `SASL_INHERIT` (the Kafka SASL
/// user and password). Without a source, a `basic.auth.user.info` that is set is used.
fn file_user_info<'a>(
    file_value: &impl Fn(&[&str]) -> Option<&'a str>,
    kafka_config: Option<&ClientProperties>,
) -> Result<Option<String>> {
    let user_info = file_value(&[
        "basic.auth.user.info",
        "schema.registry.basic.auth.user.info",
    ]);
    let source = file_value(&["basic.auth.credentials.source"]);
    match source.map(str::to_ascii_uppercase).as_deref() {
        None => Ok(user_info.map(str::to_owned)),
        Some("USER_INFO") => user_info.map(|info| Some(info.to_owned())).ok_or_else(|| {
            Error::Config(
                "basic.auth.credentials.source=USER_INFO needs basic.auth.user.info=USER:PASSWORD"
                    .into(),
            )
        }),
        Some("URL") => Ok(None),
        Some("SASL_INHERIT") => {
            let sasl = |key| kafka_config.and_then(|file| file.get(key));
            match (sasl("sasl.username"), sasl("sasl.password")) {
                (Some(user), Some(password)) => Ok(Some(format!("{user}:{password}"))),
                _ => Err(Error::Config(
                    "basic.auth.credentials.source=SASL_INHERIT needs sasl.username and \
                     sasl.password (or sasl.jaas.config) in --kafka-config"
                        .into(),
                )),
            }
        }
        Some(other) => Err(Error::Config(format!(
            "basic.auth.credentials.source={other}: expected USER_INFO, URL or SASL_INHERIT"
        ))),
    }
}

/// A Java-style PEM trust store (`schema.registry.ssl.truststore.type=PEM` with
/// `schema.registry.ssl.truststore.location`) is a CA file too.
fn pem_truststore<'a>(file_value: &impl Fn(&[&str]) -> Option<&'a str>) -> Option<PathBuf> {
    let pem = file_value(&["schema.registry.ssl.truststore.type"])
        .is_some_and(|kind| kind.eq_ignore_ascii_case("PEM"));
    pem.then(|| file_value(&["schema.registry.ssl.truststore.location"]))
        .flatten()
        .map(PathBuf::from)
}

/// The host of a plain `http://` URL unless it is this machine (loopback), where no
/// network carries the request.
fn plain_http_remote_host(url: &str) -> Option<String> {
    let rest = url
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| host.to_owned())
}

fn config_error(error: crate::RegistryError) -> Error {
    Error::Config(error.to_string())
}

/// A URL (or list of them) with the password of any userinfo replaced.
fn shown_list(urls: &str) -> String {
    urls.split(',')
        .map(|url| match RegistrySettings::new(url) {
            Ok(settings) => settings.url().to_owned(),
            Err(_) => REDACTED.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads `--schema-registry-config` while the flags are parsed, so a bad file is a usage error.
fn parse_properties_file(raw: &str) -> std::result::Result<ClientProperties, String> {
    ClientProperties::load(Path::new(raw))
}

#[cfg(test)]
mod tests {
    use crate::RegistryAuth;

    use super::*;

    fn file(text: &str) -> ClientProperties {
        ClientProperties::parse(text).unwrap()
    }

    #[test]
    fn confluent_client_properties_give_the_registry_settings() {
        let kafka = file(
            "bootstrap.servers=b:9092\n\
             security.protocol=SASL_SSL\n\
             schema.registry.url=https://sr.example/apis/ccompat/v7\n\
             basic.auth.credentials.source=USER_INFO\n\
             basic.auth.user.info=key:hunter2\n\
             schema.registry.ssl.ca.location=/etc/sr-ca.pem\n",
        );
        let settings = RegistryArgs::default().settings(Some(&kafka)).unwrap();
        assert_eq!(settings.url(), "https://sr.example/apis/ccompat/v7");
        assert_eq!(settings.ca_location(), Some(Path::new("/etc/sr-ca.pem")));
        assert_eq!(
            settings.auth(),
            &RegistryAuth::Basic {
                user: "key".into(),
                password: "hunter2".into()
            }
        );
        let shown = format!("{settings:?} {kafka:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn flags_win_over_the_registry_file_which_wins_over_the_kafka_file() {
        let kafka = file("schema.registry.url=https://kafka-file\nbearer.auth.token=t1\n");
        let mut args = RegistryArgs {
            config_file: Some(file("schema.registry.url=https://registry-file\n")),
            ..RegistryArgs::default()
        };
        let settings = args.settings(Some(&kafka)).unwrap();
        assert_eq!(settings.url(), "https://registry-file");
        assert_eq!(settings.auth(), &RegistryAuth::Bearer("t1".into()));
        args.url = Some("https://u:p@flag".into());
        args.bearer_token = None;
        let error = args.settings(Some(&kafka)).unwrap_err().to_string();
        assert!(
            error.contains("already"),
            "one kind of credentials: {error}"
        );
        assert_eq!(
            args.settings(None).unwrap().url(),
            "https://flag",
            "userinfo leaves the URL"
        );
        assert_eq!(
            RegistryArgs::default().settings(None).unwrap().url(),
            DEFAULT_REGISTRY_URL
        );
    }

    #[test]
    fn credentials_over_plain_http_to_another_host_are_refused_unless_allowed() {
        for (url, refused) in [
            ("http://registry.example:8081", true),
            ("http://10.0.0.5:8081/apis/ccompat/v7", true),
            ("http://127.0.0.1:8081", false),
            ("http://localhost:8081", false),
            ("http://[::1]:8081", false),
            ("https://registry.example:8081", false),
        ] {
            let mut args = RegistryArgs {
                url: Some(url.into()),
                bearer_token: Some("t0ken".into()),
                ..RegistryArgs::default()
            };
            let result = args.settings(None);
            assert_eq!(result.is_err(), refused, "{url}: {result:?}");
            if refused {
                let message = result.unwrap_err().to_string();
                assert!(
                    message.contains("--schema-registry-allow-insecure-auth"),
                    "{message}"
                );
                assert!(!message.contains("t0ken"), "{message}");
                args.allow_insecure_auth = true;
                assert!(args.settings(None).is_ok(), "{url} allowed by the flag");
            }
        }
        // Basic auth in the URL counts too; no credentials, no refusal.
        assert!(
            RegistryArgs::for_url("http://u:p@registry.example")
                .settings(None)
                .is_err()
        );
        assert!(
            RegistryArgs::for_url("http://registry.example")
                .settings(None)
                .is_ok()
        );
    }

    #[test]
    fn credential_sources_follow_confluent() {
        let sasl = file("sasl.username=app\nsasl.password=pw\n");
        let args = RegistryArgs {
            config_file: Some(file("basic.auth.credentials.source=SASL_INHERIT\n")),
            ..RegistryArgs::default()
        };
        assert_eq!(
            args.settings(Some(&sasl)).unwrap().auth(),
            &RegistryAuth::Basic {
                user: "app".into(),
                password: "pw".into()
            }
        );
        for (text, expected) in [
            (
                "basic.auth.credentials.source=USER_INFO\n",
                "needs basic.auth.user.info",
            ),
            ("basic.auth.credentials.source=LDAP\n", "expected USER_INFO"),
            (
                "bearer.auth.credentials.source=OAUTHBEARER\n",
                "STATIC_TOKEN",
            ),
            (
                "schema.registry.url=http://a:1,http://b:1\n",
                "one registry URL",
            ),
        ] {
            let error = RegistryArgs::default()
                .settings(Some(&file(text)))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let url_source = file(
            "basic.auth.credentials.source=URL\n\
             basic.auth.user.info=ignored:x\n\
             schema.registry.url=https://u:p@sr\n",
        );
        assert!(matches!(
            RegistryArgs::default().settings(Some(&url_source)).unwrap().auth(),
            RegistryAuth::Basic { user, .. } if user == "u"
        ));
    }

    #[test]
    fn flags_sit_beside_the_kafka_flags() {
        use clap::{CommandFactory, Parser};

        #[derive(Parser)]
        struct Both {
            #[command(flatten)]
            kafka: orderflow_runtime::kafka::KafkaArgs,
            #[command(flatten)]
            registry: RegistryArgs,
        }
        Both::command().debug_assert();
        let both = Both::try_parse_from([
            "t",
            "--registry-url",
            "https://sr:1",
            "--schema-registry-user-info",
            "k:s",
        ])
        .unwrap();
        let settings = both.registry.settings(both.kafka.config_file.as_ref());
        assert_eq!(settings.unwrap().url(), "https://sr:1");
    }

    #[test]
    fn debug_hides_secrets() {
        let args = RegistryArgs {
            url: Some("https://key:hunter2@sr".into()),
            user_info: Some("a:hunter2".into()),
            bearer_token: Some("hunter2".into()),
            ..RegistryArgs::default()
        };
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("https://sr"),
            "{shown}"
        );
    }
}
