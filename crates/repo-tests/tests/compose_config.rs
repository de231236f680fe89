//! docker-compose.yml: Compose accepts it, and it runs the stack the architecture
//! promises (Kafka in KRaft mode, Confluent Schema Registry, PostgreSQL, Prometheus,
//! Grafana, the topics job, the order service, producer and consumer), wired with health
//! checks, its ports published on 127.0.0.1 only unless told otherwise, its passwords
//! taken from `.env` (documented by `.env.example`), never written in the file, and each
//! service reaching PostgreSQL as its own roles, never as the superuser.
//!
//! Needs Debian's `docker-compose` (scripts/test.sh installs it). No Docker engine is
//! needed: `config` only parses and validates.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

fn read_yaml(relative: &str) -> Value {
    let path = repo_root().join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    // The parser resolves `<<: *anchor` merge keys as Compose does.
    serde_saphyr::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not valid YAML: {err}", path.display()))
}

fn compose() -> Value {
    read_yaml("docker-compose.yml")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("docker-compose.yml has no service `{name}`"))
}

fn string_at<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} should be a string, found {value:?}"))
}

/// The variables that docker-compose.yml requires: set them in a test's environment
/// only through an env file.
const REQUIRED_VARS: [&str; 7] = [
    "POSTGRES_PASSWORD",
    "ORDER_MIGRATION_DB_PASSWORD",
    "ORDER_SERVICE_DB_PASSWORD",
    "CONSUMER_MIGRATION_DB_PASSWORD",
    "CONSUMER_DB_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "ORDERFLOW_API_TOKENS",
];

/// `docker-compose --env-file ENV_FILE -f docker-compose.yml config [-q]`, with none of
/// the file's variables inherited from the test's environment.
fn compose_config(env_file: &Path, quiet: bool) -> std::process::Output {
    let mut command = Command::new("docker-compose");
    command
        .arg("--env-file")
        .arg(env_file)
        .args(["-f", "docker-compose.yml", "config"])
        .current_dir(repo_root());
    if quiet {
        command.arg("-q");
    }
    for var in REQUIRED_VARS.iter().chain(&["BIND_ADDRESS"]) {
        command.env_remove(var);
    }
    match command.output() {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "docker-compose is not installed: install it (`apt-get install -y docker-compose`) \
             or run the tests with scripts/test.sh, which installs it"
        ),
        Err(err) => panic!("cannot run docker-compose: {err}"),
    }
}

/// An env file with the required passwords and nothing else (the defaults apply).
fn minimal_env_file(dir: &Path) -> PathBuf {
    let path = dir.join("minimal.env");
    let text: String = REQUIRED_VARS
        .iter()
        .map(|var| format!("{var}=secret-{var}\n"))
        .collect();
    std::fs::write(&path, text).expect("write the env file");
    path
}

#[test]
fn docker_compose_accepts_the_file() {
    let root = repo_root();
    let output = compose_config(&root.join(".env.example"), true);
    assert!(
        output.status.success(),
        "`docker-compose --env-file .env.example -f docker-compose.yml config -q` rejected the file ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn published_ports_bind_to_localhost_by_default() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for env_file in [
        minimal_env_file(dir.path()),
        repo_root().join(".env.example"),
    ] {
        let output = compose_config(&env_file, false);
        assert!(
            output.status.success(),
            "docker-compose config with {} failed: {}",
            env_file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let resolved: Value =
            serde_saphyr::from_slice(&output.stdout).expect("docker-compose config prints YAML");
        let mut published = 0;
        for (name, svc) in resolved["services"].as_object().expect("services") {
            for port in svc["ports"].as_array().into_iter().flatten() {
                let port = string_at(port, "a port entry");
                assert!(
                    port.starts_with("127.0.0.1:"),
                    "service {name:?} publishes {port} beyond 127.0.0.1 (env file {})",
                    env_file.display()
                );
                published += 1;
            }
        }
        assert!(published >= 9, "only {published} ports published");
    }
}

#[test]
fn passwords_come_from_the_env_file_never_from_literals() {
    let text = std::fs::read_to_string(repo_root().join("docker-compose.yml"))
        .expect("read docker-compose.yml");
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        if let Some((key, value)) = line.split_once(':')
            && key.contains("PASSWORD")
        {
            assert!(
                value.trim().starts_with("${"),
                "literal password in docker-compose.yml: {line}"
            );
        }
        // postgres://user:PASSWORD@host
        if let Some(rest) = line.split("postgres://").nth(1) {
            let userinfo = rest.split('@').next().unwrap_or_default();
            let password = userinfo.split_once(':').map(|(_, p)| p).unwrap_or_default();
            assert!(
                password.starts_with("${"),
                "literal password in a database URL of docker-compose.yml: {line}"
            );
        }
    }

    let example = std::fs::read_to_string(repo_root().join(".env.example"))
        .expect(".env.example documents the stack's settings");
    for var in REQUIRED_VARS {
        assert!(
            text.contains(&format!("${{{var}:?")),
            "docker-compose.yml should require {var}"
        );
        assert!(
            example.lines().any(|l| l.starts_with(&format!("{var}="))),
            ".env.example should document {var}"
        );
    }

    // Without them Compose refuses the file and says which one is missing.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let empty = dir.path().join("empty.env");
    std::fs::write(&empty, "").expect("write the env file");
    let output = compose_config(&empty, true);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("PASSWORD"),
        "docker-compose config without passwords should fail naming one ({}): {stderr}",
        output.status
    );
}

#[test]
fn the_stack_has_every_service() {
    let compose = compose();
    for name in [
        "kafka",
        "schema-registry",
        "postgres",
        "prometheus",
        "grafana",
        "topics",
        "order-service",
        "producer",
        "consumer",
    ] {
        service(&compose, name);
    }
}

#[test]
fn kafka_is_the_official_image_in_kraft_mode() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    let image = string_at(&kafka["image"], "kafka.image");
    assert!(
        image.starts_with("apache/kafka:"),
        "kafka should use the official apache/kafka image, found {image}"
    );
    let roles = string_at(
        &kafka["environment"]["KAFKA_PROCESS_ROLES"],
        "KAFKA_PROCESS_ROLES",
    );
    assert!(
        roles.contains("broker") && roles.contains("controller"),
        "a single KRaft node is broker and controller, found {roles}"
    );
    let env = kafka["environment"]
        .as_object()
        .expect("kafka.environment is a mapping");
    assert!(
        !env.keys().any(|key| key.contains("ZOOKEEPER")),
        "KRaft mode needs no ZooKeeper settings"
    );
    let schema_registry = string_at(
        &service(&compose, "schema-registry")["image"],
        "schema-registry.image",
    );
    assert!(
        schema_registry.starts_with("confluentinc/cp-schema-registry:"),
        "the registry should be Confluent's, found {schema_registry}"
    );
}

#[test]
fn services_wait_for_healthy_dependencies() {
    let compose = compose();
    for name in [
        "kafka",
        "schema-registry",
        "postgres",
        "prometheus",
        "grafana",
    ] {
        assert!(
            service(&compose, name)["healthcheck"]["test"].is_array(),
            "service `{name}` needs a healthcheck so dependents can wait for it"
        );
    }
    let condition = |svc: &str, dep: &str| {
        service(&compose, svc)["depends_on"][dep]["condition"]
            .as_str()
            .unwrap_or_else(|| panic!("`{svc}` should depend on `{dep}` with a condition"))
            .to_owned()
    };
    assert_eq!(condition("schema-registry", "kafka"), "service_healthy");
    assert_eq!(condition("topics", "kafka"), "service_healthy");
    for app in ["order-service", "producer", "consumer"] {
        assert_eq!(
            condition(app, "topics"),
            "service_completed_successfully",
            "`{app}` must start only after the topics exist"
        );
        assert_eq!(condition(app, "postgres"), "service_healthy");
    }
}

#[test]
fn host_paths_the_file_names_exist() {
    let compose = compose();
    let root = repo_root();
    let services = compose["services"]
        .as_object()
        .expect("services is a mapping");
    for (name, svc) in services {
        for volume in svc["volumes"].as_array().into_iter().flatten() {
            let spec = string_at(volume, "a volume entry");
            let source = spec.split(':').next().unwrap_or_default();
            if source.starts_with("./") {
                assert!(
                    root.join(source).exists(),
                    "service `{name}` mounts {source}, which does not exist"
                );
            }
        }
        if let Some(context) = svc["build"]["context"].as_str() {
            let dockerfile = svc["build"]["dockerfile"].as_str().unwrap_or("Dockerfile");
            let path = root.join(context).join(dockerfile);
            assert!(
                path.is_file(),
                "service `{name}` builds from {}, which does not exist",
                path.display()
            );
        }
    }
}

/// Every Prometheus scrape target on the compose network is a service that is told
/// (METRICS_ADDR, LAG_LISTEN, ...) to listen on the scraped port.
#[test]
fn prometheus_scrapes_the_ports_the_services_serve_metrics_on() {
    let compose = compose();
    let prometheus = read_yaml("deploy/prometheus/prometheus.yml");
    let jobs = prometheus["scrape_configs"]
        .as_array()
        .expect("prometheus.yml has scrape_configs");
    let mut checked = 0;
    for job in jobs {
        for static_config in job["static_configs"].as_array().into_iter().flatten() {
            for target in static_config["targets"].as_array().into_iter().flatten() {
                let target = string_at(target, "a scrape target");
                let (host, port) = target
                    .rsplit_once(':')
                    .unwrap_or_else(|| panic!("scrape target {target} has no port"));
                if host == "localhost" {
                    continue;
                }
                let listen = format!("0.0.0.0:{port}");
                let environment = &service(&compose, host)["environment"];
                let listens = environment
                    .as_object()
                    .into_iter()
                    .flat_map(|env| env.values())
                    .any(|value| value.as_str() == Some(listen.as_str()));
                assert!(
                    listens,
                    "Prometheus scrapes {target} but no setting of `{host}` listens on {listen}: \
                     {environment:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2,
        "Prometheus should scrape at least the producer and the consumer"
    );
}

/// The user of a `postgres://user:password@host/db` URL.
fn database_user(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let userinfo = rest.split_once('@').map_or("", |(userinfo, _)| userinfo);
    userinfo.split(':').next().unwrap_or_default()
}

/// The value `02-service-roles.sh` gives psql variable `name` (`-v name=value`).
fn init_script_role<'a>(script: &'a str, name: &str) -> &'a str {
    let flag = format!("-v {name}=");
    let start = script
        .find(&flag)
        .unwrap_or_else(|| panic!("02-service-roles.sh sets no {name}"))
        + flag.len();
    script[start..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
}

#[test]
fn services_run_as_their_own_database_roles_never_the_superuser() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = compose_config(&minimal_env_file(dir.path()), false);
    assert!(
        output.status.success(),
        "docker-compose config failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let resolved: Value =
        serde_saphyr::from_slice(&output.stdout).expect("docker-compose config prints YAML");
    let superuser = string_at(
        &resolved["services"]["postgres"]["environment"]["POSTGRES_USER"],
        "postgres's POSTGRES_USER",
    );
    let roles_script =
        std::fs::read_to_string(repo_root().join("deploy/postgres/init/02-service-roles.sh"))
            .expect("deploy/postgres/init/02-service-roles.sh makes the services' roles");

    // Every database URL any service is given names a role other than the superuser.
    let mut urls = 0;
    for (name, svc) in resolved["services"].as_object().expect("services") {
        for (key, value) in svc["environment"].as_object().into_iter().flatten() {
            let Some(value) = value.as_str().filter(|v| v.starts_with("postgres://")) else {
                continue;
            };
            urls += 1;
            assert_ne!(
                database_user(value),
                superuser,
                "service {name:?} connects as the PostgreSQL superuser through {key:?}"
            );
        }
    }
    assert!(urls >= 4, "only {urls} database URLs in the stack");

    // Each database service runs as its runtime role and migrates as its owner role,
    // the roles 02-service-roles.sh makes.
    for (service_name, migration_var, owner, app) in [
        (
            "order-service",
            "PRODUCER_DATABASE_MIGRATION_URL",
            "order_owner",
            "order_app",
        ),
        (
            "consumer",
            "CONSUMER_DATABASE_MIGRATION_URL",
            "consumer_owner",
            "consumer_app",
        ),
    ] {
        let env = &resolved["services"][service_name]["environment"];
        let runtime = database_user(string_at(&env["DATABASE_URL"], "DATABASE_URL"));
        let migration = database_user(string_at(&env[migration_var], migration_var));
        assert_eq!(
            runtime,
            init_script_role(&roles_script, app),
            "{service_name} should run as its runtime role"
        );
        assert_eq!(
            migration,
            init_script_role(&roles_script, owner),
            "{service_name} should migrate as its migration role"
        );
    }
}
