//! A schema registry behind TLS with a private CA and credentials, set the way Confluent
//! clients set them.
//!
//! Basic auth runs against a real Apicurio Registry of this test's own, serving https only
//! and checking HTTP basic auth (Quarkus embedded users): the order event round trip goes
//! through the settings a `client.properties` gives, and `orderflow registry register` (and
//! `order-consumer` at start-up) is refused with one line for a wrong password and for a
//! certificate it cannot verify.
//!
//! Apicurio checks bearer tokens only against an OIDC server (Keycloak) or Kubernetes, which
//! these machines do not run; so the bearer token goes to a minimal HTTPS endpoint of this
//! test that answers like a registry when the `Authorization` header is right and 401
//! otherwise.

mod apicurio;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use apicurio::Apicurio;
use orderflow_runtime::client_properties::ClientProperties;
use orderflow_schemas::RegistryArgs;
use orderflow_schemas::{
    OrderCancelled, OrderEvent, OrderEventDeserializer, OrderEventSerializer, OrderPayload,
    RegistryClient, value_subject,
};

const USER: &str = "orderflow";

/// A CA, and a certificate it signed for 127.0.0.1 and localhost, made with the openssl CLI.
struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &str| {
            let out = Command::new("openssl")
                .args(args.split_whitespace())
                .current_dir(dir.path())
                .output()
                .expect("the openssl CLI makes the test certificates");
            assert!(
                out.status.success(),
                "openssl {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(
            "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=orderflow-registry-test-CA \
             -keyout ca.key -out ca.pem",
        );
        openssl("req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout key.pem -out server.csr");
        std::fs::write(
            dir.path().join("san.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile san.cnf -out cert.pem",
        );
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn path_str(&self, name: &str) -> String {
        self.path(name).to_str().expect("utf-8 path").to_owned()
    }

    /// Writes `text` into a file of the test's directory.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A client trusting only `ca`, to see when the registry is up.
fn trusting(ca: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
        .build()
        .unwrap()
}

/// `orderflow registry register` with `env` (registry settings) and nothing from the
/// caller's environment.
fn register(subject: &str, env: &[(&str, &str)]) -> Output {
    let schema =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/avro/order_event.v2.avsc");
    let mut command = Command::new(orderflow_testkit::workspace_binary("orderflow"));
    for name in [
        "SCHEMA_REGISTRY_URL",
        "SCHEMA_REGISTRY_CONFIG",
        "SCHEMA_REGISTRY_SSL_CA_LOCATION",
        "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO",
        "SCHEMA_REGISTRY_BEARER_AUTH_TOKEN",
    ] {
        command.env_remove(name);
    }
    command
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .args([
            "registry",
            "register",
            "--subject",
            subject,
            "--wait-secs",
            "30",
        ])
        .arg("--schema")
        .arg(schema)
        .output()
        .expect("run orderflow registry register")
}

fn registered_id(output: &Output) -> u64 {
    assert!(
        output.status.success(),
        "register failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    answer["id"].as_u64().expect("an id")
}

/// A refusal: exit 1, one stderr line holding every `expected` text and no `secret`.
fn assert_one_line_refusal(output: &Output, expected: &[&str], secret: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line, no retries: {stderr}"
    );
    for text in expected {
        assert!(stderr.contains(text), "{text:?} missing in: {stderr}");
    }
    assert!(!stderr.contains(secret), "the secret shows: {stderr}");
}

#[tokio::test]
async fn https_registry_with_a_private_ca_and_basic_auth() {
    let ca = TestCa::generate();
    let password = format!("pw-{}", orderflow_testkit::unique_name("s"));
    let (database_url, _pool) = orderflow_testkit::fresh_database().await;
    let basic_auth = format!("{USER}:{password}");
    let registry = Apicurio::start(
        &database_url,
        &[
            "--tls-cert",
            &ca.path_str("cert.pem"),
            "--tls-key",
            &ca.path_str("key.pem"),
            "--basic-auth",
            &basic_auth,
        ],
        |url| {
            trusting(&ca.path("ca.pem"))
                .get(url)
                .basic_auth(USER, Some(&password))
        },
    )
    .await;
    assert!(registry.base.starts_with("https://"), "{}", registry.base);

    // The product path: a client.properties as a Confluent user writes it, shared with
    // the Kafka settings, read as every binary reads it.
    let properties = ClientProperties::parse(&format!(
        "bootstrap.servers=127.0.0.1:9092\n\
         schema.registry.url={}\n\
         schema.registry.ssl.ca.location={}\n\
         basic.auth.credentials.source=USER_INFO\n\
         basic.auth.user.info={basic_auth}\n",
        registry.base,
        ca.path_str("ca.pem"),
    ))
    .unwrap();
    let args = RegistryArgs::default();
    let topic = orderflow_testkit::unique_name("secure-orders");
    let client = args.client(Some(&properties)).unwrap();
    assert!(!format!("{client:?} {args:?} {properties:?}").contains(&password));
    let serializer = OrderEventSerializer::new(&client, &topic).await.unwrap();
    let event = OrderEvent::new(
        "order-tls-1",
        "registry-tls-test",
        OrderPayload::Cancelled(OrderCancelled {
            reason: "customer request".into(),
        }),
    );
    let mut bytes = Vec::new();
    serializer.serialize_into(&event, &mut bytes);
    // A fresh client has an empty cache: the writer schema comes over TLS with auth.
    let reader = OrderEventDeserializer::new(args.client(Some(&properties)).unwrap());
    assert_eq!(reader.deserialize(&bytes).await.unwrap(), event);

    // The CLI with userinfo in the URL and the CA from the environment: the same id.
    let userinfo_url =
        registry
            .base
            .replacen("https://", &format!("https://{USER}:{password}@"), 1);
    let subject = value_subject(&topic);
    let ca_path = ca.path_str("ca.pem");
    let output = register(
        &subject,
        &[
            ("SCHEMA_REGISTRY_URL", userinfo_url.as_str()),
            ("SCHEMA_REGISTRY_SSL_CA_LOCATION", ca_path.as_str()),
        ],
    );
    assert_eq!(registered_id(&output), u64::from(serializer.schema_id()));

    // A wrong password: refused at once (not retried for --wait-secs), one line, no secret.
    let wrong = format!("{password}-wrong");
    let config = ca.write(
        "wrong.properties",
        &format!(
            "schema.registry.url={}\nschema.registry.ssl.ca.location={ca_path}\n\
             basic.auth.user.info={USER}:{wrong}\n",
            registry.base
        ),
    );
    let output = register(
        &subject,
        &[("SCHEMA_REGISTRY_CONFIG", config.to_str().unwrap())],
    );
    assert_one_line_refusal(&output, &["HTTP 401", "basic.auth.user.info"], &wrong);

    // The consumer, which only reads schemas, checks the registry at start-up: the same
    // refusal, before it touches Kafka.
    let consumer = orderflow_testkit::workspace_binary("order-consumer");
    let (consumer_database, _consumer_pool) = orderflow_testkit::fresh_database().await;
    let output = Command::new(consumer)
        .env_remove("SCHEMA_REGISTRY_URL")
        .env("SCHEMA_REGISTRY_CONFIG", &config)
        .env("DATABASE_URL", &consumer_database)
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("METRICS_ADDR", "")
        .env("NO_COLOR", "1")
        .output()
        .expect("run order-consumer");
    assert_one_line_refusal(&output, &["HTTP 401", "basic.auth.user.info"], &wrong);

    // No CA setting: the system's trust store does not know the test CA.
    let output = register(&subject, &[("SCHEMA_REGISTRY_URL", userinfo_url.as_str())]);
    assert_one_line_refusal(
        &output,
        &["TLS handshake failed", "schema.registry.ssl.ca.location"],
        &password,
    );

    // A consumer whose credentials stop working keeps retrying instead of dead-lettering.
    let locked_out = RegistryArgs::for_url(registry.base.clone())
        .settings(None)
        .unwrap()
        .with_ca_location(ca.path("ca.pem"))
        .with_user_info(&format!("{USER}:{wrong}"))
        .unwrap();
    let locked_out = RegistryClient::with_settings(locked_out).unwrap();
    let error = OrderEventDeserializer::new(locked_out)
        .deserialize(&bytes)
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(!error.to_string().contains(&wrong), "{error}");
    registry.stop();
}

/// What the minimal registry endpoint saw: the `Authorization` header of each request.
type Seen = Arc<Mutex<Vec<String>>>;

/// Serves HTTPS on 127.0.0.1 with the test certificate: `POST .../versions` answers
/// `{"id": 7}` when the request carries `Authorization: Bearer <token>`, and 401 with a
/// Confluent error body otherwise. One connection at a time, until the process ends.
fn bearer_endpoint(ca: &TestCa, token: &str) -> (String, Seen) {
    let identity = native_tls::Identity::from_pkcs8(
        &std::fs::read(ca.path("cert.pem")).unwrap(),
        &std::fs::read(ca.path("key.pem")).unwrap(),
    )
    .unwrap();
    let acceptor = native_tls::TlsAcceptor::new(identity).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let seen = Seen::default();
    let (expected, record) = (format!("Bearer {token}"), seen.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            // A client that does not trust the certificate ends the handshake: next one.
            let Ok(mut tls) = acceptor.accept(stream) else {
                continue;
            };
            let mut authorization = String::new();
            let mut content_length = 0usize;
            let mut reader = BufReader::new(&mut tls);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap_or_default();
                match name.to_ascii_lowercase().as_str() {
                    "authorization" => authorization = value.trim().to_owned(),
                    "content-length" => content_length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
            let mut body = vec![0; content_length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            record.lock().unwrap().push(authorization.clone());
            let (status, body) = if authorization == expected {
                ("200 OK", r#"{"id":7}"#)
            } else {
                (
                    "401 Unauthorized",
                    r#"{"error_code":40101,"message":"Unauthorized"}"#,
                )
            };
            let _ = write!(
                tls,
                "HTTP/1.1 {status}\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

#[tokio::test]
async fn bearer_token_goes_over_tls_and_a_wrong_one_is_one_line() {
    let ca = TestCa::generate();
    let token = format!("tok-{}", orderflow_testkit::unique_name("t"));
    let (url, seen) = bearer_endpoint(&ca, &token);
    let ca_path = ca.path_str("ca.pem");
    let subject = orderflow_testkit::unique_name("bearer-value");

    let config = ca.write(
        "bearer.properties",
        &format!(
            "schema.registry.url={url}\nschema.registry.ssl.ca.location={ca_path}\n\
             bearer.auth.credentials.source=STATIC_TOKEN\nbearer.auth.token={token}\n"
        ),
    );
    let output = register(
        &subject,
        &[("SCHEMA_REGISTRY_CONFIG", config.to_str().unwrap())],
    );
    assert_eq!(registered_id(&output), 7);
    assert_eq!(seen.lock().unwrap().as_slice(), [format!("Bearer {token}")]);

    let wrong = format!("{token}-expired");
    let output = register(
        &subject,
        &[
            ("SCHEMA_REGISTRY_URL", url.as_str()),
            ("SCHEMA_REGISTRY_SSL_CA_LOCATION", ca_path.as_str()),
            ("SCHEMA_REGISTRY_BEARER_AUTH_TOKEN", wrong.as_str()),
        ],
    );
    assert_one_line_refusal(&output, &["HTTP 401", "bearer.auth.token"], &wrong);
    assert_eq!(seen.lock().unwrap().len(), 2, "a refusal is not retried");
}
