//! Least-privilege database roles, against real PostgreSQL: `deploy/postgres/service-roles.sql`
//! (what dev-up and compose run) makes a migration role and a runtime role per service;
//! the order service and the consumer migrate through their migration URL and run as the
//! runtime role, which may read and write rows but is refused DDL, temporary tables, the
//! migration history and the other service's database.

mod support;

use std::process::Command;

use orderflow_runtime::db_migration::{self, MigrationTarget};
use orderflow_testkit as testkit;
use reqwest::StatusCode;
use sqlx::{Connection, PgConnection};
use support::{ORDER, Service};

/// The roles and databases of one test run (role names are cluster-wide: unique).
struct Roles {
    order_db: String,
    consumer_db: String,
    registry_db: String,
    prefix: String,
}

impl Roles {
    fn role(&self, name: &str) -> String {
        format!("{}_{name}", self.prefix)
    }

    /// The URL of `role` (its password is its name) on `database`.
    fn url(&self, role: &str, database: &str) -> String {
        let admin = testkit::database_url();
        let (scheme, rest) = admin.split_once("://").expect("a URL");
        let rest = rest.split('?').next().unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = host.split('/').next().unwrap();
        let query = admin
            .split_once('?')
            .map(|(_, query)| format!("?{query}"))
            .unwrap_or_default();
        let role = self.role(role);
        format!("{scheme}://{role}:{role}@{host}/{database}{query}")
    }

    /// Runs the deployment's role script as the test's admin.
    fn apply_script(&self) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/postgres/service-roles.sql"
        );
        let mut command = Command::new("psql");
        command.args(["-X", "-q", "-d", &testkit::database_url(), "-f", script]);
        for (variable, value) in [
            ("order_db", self.order_db.clone()),
            ("consumer_db", self.consumer_db.clone()),
            ("order_owner", self.role("order_owner")),
            ("order_owner_password", self.role("order_owner")),
            ("order_app", self.role("order_app")),
            ("order_app_password", self.role("order_app")),
            ("consumer_owner", self.role("consumer_owner")),
            ("consumer_owner_password", self.role("consumer_owner")),
            ("consumer_app", self.role("consumer_app")),
            ("consumer_app_password", self.role("consumer_app")),
            ("registry_db", self.registry_db.clone()),
            ("registry_owner", self.role("registry")),
            ("registry_owner_password", self.role("registry")),
        ] {
            command.args(["-v", &format!("{variable}={value}")]);
        }
        let output = command
            .output()
            .expect("psql runs (Debian's postgresql-client)");
        assert!(
            output.status.success(),
            "service-roles.sql failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Drops the run's databases and roles, also when an assertion failed (roles outlive a
/// database: a failed run would otherwise leave them in the shared cluster).
impl Drop for Roles {
    fn drop(&mut self) {
        // One statement a -c: DROP DATABASE cannot run inside a transaction block.
        let mut statements = Vec::new();
        for database in [&self.order_db, &self.consumer_db, &self.registry_db] {
            statements.push(format!(
                "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
            ));
        }
        for role in [
            "order_owner",
            "order_app",
            "consumer_owner",
            "consumer_app",
            "registry",
        ] {
            statements.push(format!("DROP ROLE IF EXISTS \"{}\"", self.role(role)));
        }
        let mut command = Command::new("psql");
        command.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            &testkit::database_url(),
        ]);
        for statement in &statements {
            command.args(["-c", statement]);
        }
        let dropped = command.output();
        if let Ok(output) = dropped
            && !output.status.success()
        {
            eprintln!(
                "cleaning up the test's roles failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

fn database_name(url: &str) -> String {
    let path = url.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_string()
}

/// `statement` run as the connection's role must be refused by PostgreSQL's privileges.
async fn assert_refused(conn: &mut PgConnection, who: &str, statement: &str) {
    let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&mut *conn)
        .await;
    let error = match result {
        Ok(_) => panic!("{who} was allowed: {statement}"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("permission denied") || error.contains("must be owner"),
        "{who}: {statement}: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_roles_are_refused_ddl_and_the_other_services_database() {
    let (order_url, order_admin) = testkit::fresh_database().await;
    let (consumer_url, consumer_admin) = testkit::fresh_database().await;
    let (registry_url, registry_admin) = testkit::fresh_database().await;
    // Databases an admin-run stack already migrated: the script hands their objects over.
    orderflow_outbox::schema::migrator()
        .run(&order_admin)
        .await
        .unwrap();
    sqlx::migrate!("../consumers/migrations")
        .run(&consumer_admin)
        .await
        .unwrap();
    order_admin.close().await;
    consumer_admin.close().await;
    registry_admin.close().await;
    let roles = Roles {
        order_db: database_name(&order_url),
        consumer_db: database_name(&consumer_url),
        registry_db: database_name(&registry_url),
        prefix: testkit::unique_name("role").replace('-', "_"),
    };
    roles.apply_script();
    let order_app_url = roles.url("order_app", &roles.order_db);
    let consumer_app_url = roles.url("consumer_app", &roles.consumer_db);

    // The runtime role alone cannot migrate: it may not create the service's schema.
    let topic = testkit::unique_name("orders");
    testkit::create_topic(&topic, 1).await;
    let mut args = order_producer::order_service::ServeArgs::new(
        "127.0.0.1:0".parse().unwrap(),
        &order_app_url,
        &testkit::kafka_brokers(),
        &testkit::registry_url(),
        &topic,
    );
    args.database_connect_timeout = std::time::Duration::from_secs(5);
    let refused = order_producer::order_service::start(
        &args,
        &prometheus::Registry::new(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .expect_err("the runtime role migrated the database");
    assert!(
        refused.to_string().contains("permission denied"),
        "{refused}"
    );

    // With the migration role's URL the service migrates, then serves as the runtime role:
    // the API writes, the relay publishes and marks rows sent.
    let owner_pool = sqlx::PgPool::connect(&roles.url("order_owner", &roles.order_db))
        .await
        .unwrap();
    let migration_url = roles.url("order_owner", &roles.order_db);
    let service = Service::start_sharing(
        &testkit::kafka_brokers(),
        &topic,
        &order_app_url,
        owner_pool,
        |args| args.database_migration_url = Some(migration_url),
    )
    .await;
    let created = service.post("/orders", ORDER, &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order_id = created.body["order_id"].as_str().unwrap().to_string();
    assert_eq!(support::read_keys(&topic, 1), [order_id]);
    support::all_sent(
        &service.pool,
        "the relay marks the row sent as the runtime role",
    )
    .await;
    service.stop().await;

    // The consumer's start-up path: migrate as its migration role, run as its runtime role.
    let consumer_pool = sqlx::PgPool::connect(&consumer_app_url).await.unwrap();
    let consumer_migrations = sqlx::migrate!("../consumers/migrations");
    db_migration::migrate(
        &consumer_migrations,
        &consumer_pool,
        MigrationTarget {
            migration_url: Some(&roles.url("consumer_owner", &roles.consumer_db)),
            schema: "public",
            connect_deadline: std::time::Duration::from_secs(10),
        },
    )
    .await
    .expect("the consumer database migrates as its migration role");
    sqlx::query(
        "INSERT INTO processed_events (consumer_group, order_id, event_id, topic, \"partition\", \"offset\")
         VALUES ('g', 'o-1', 'e-1', 't', 0, 0)",
    )
    .execute(&consumer_pool)
    .await
    .expect("the consumer's runtime role writes rows");
    consumer_pool.close().await;

    let mut order_app = PgConnection::connect(&order_app_url).await.unwrap();
    for statement in [
        "CREATE TABLE order_service.extra (a int)",
        "CREATE TABLE public.extra (a int)",
        "CREATE TEMP TABLE extra (a int)",
        "CREATE SCHEMA extra",
        "DROP TABLE order_service.outbox",
        "ALTER TABLE order_service.orders ADD COLUMN extra int",
        "TRUNCATE order_service.orders CASCADE",
        "DELETE FROM order_service._sqlx_migrations",
    ] {
        assert_refused(
            &mut order_app,
            "the order service's runtime role",
            statement,
        )
        .await;
    }
    order_app.close().await.unwrap();
    let mut consumer_app = PgConnection::connect(&consumer_app_url).await.unwrap();
    for statement in [
        "CREATE TABLE public.extra (a int)",
        "CREATE TEMP TABLE extra (a int)",
        "DROP TABLE processed_events",
        "ALTER TABLE orders ADD COLUMN extra int",
        "DELETE FROM _sqlx_migrations",
    ] {
        assert_refused(&mut consumer_app, "the consumer's runtime role", statement).await;
    }
    consumer_app.close().await.unwrap();

    // The registry's role makes its own tables in its own database, and is nothing more.
    let mut registry = PgConnection::connect(&roles.url("registry", &roles.registry_db))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE TABLE public.artifacts (id bigserial PRIMARY KEY)")
        .execute(&mut registry)
        .await
        .expect("the registry's role creates its tables");
    let superuser: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut registry)
            .await
            .unwrap();
    assert!(!superuser);
    registry.close().await.unwrap();

    // No runtime role may even connect to another service's database.
    for (who, url) in [
        (
            "the registry's role",
            roles.url("registry", &roles.order_db),
        ),
        (
            "the order service's runtime role",
            roles.url("order_app", &roles.consumer_db),
        ),
        (
            "the consumer's runtime role",
            roles.url("consumer_app", &roles.order_db),
        ),
    ] {
        let error = PgConnection::connect(&url)
            .await
            .err()
            .unwrap_or_else(|| panic!("{who} connected to the other service's database"))
            .to_string();
        assert!(error.contains("permission denied"), "{who}: {error}");
    }
}

/// Replicas of a service start together (a deployment scaled out, compose restarting
/// several workers): each migrates as the migration role and grants the runtime role,
/// and none may fail because another grants at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_all_migrate_and_grant() {
    const REPLICAS: usize = 8;
    let (order_url, order_admin) = testkit::fresh_database().await;
    let (consumer_url, consumer_admin) = testkit::fresh_database().await;
    let (registry_url, registry_admin) = testkit::fresh_database().await;
    for pool in [order_admin, consumer_admin, registry_admin] {
        pool.close().await;
    }
    let roles = Roles {
        order_db: database_name(&order_url),
        consumer_db: database_name(&consumer_url),
        registry_db: database_name(&registry_url),
        prefix: testkit::unique_name("role").replace('-', "_"),
    };
    roles.apply_script();

    // Round 0 migrates a fresh database; the later rounds find it migrated.
    for round in 0..12 {
        let mut replicas = tokio::task::JoinSet::new();
        for replica in 0..REPLICAS {
            let runtime_url = roles.url("consumer_app", &roles.consumer_db);
            let migration_url = roles.url("consumer_owner", &roles.consumer_db);
            replicas.spawn(async move {
                // One connection each: the shared server's connection slots are few.
                let runtime = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&runtime_url)
                    .await
                    .unwrap();
                let migrated = db_migration::migrate(
                    &sqlx::migrate!("../consumers/migrations"),
                    &runtime,
                    MigrationTarget {
                        migration_url: Some(&migration_url),
                        schema: "public",
                        connect_deadline: std::time::Duration::from_secs(10),
                    },
                )
                .await;
                runtime.close().await;
                (replica, migrated.map_err(|error| error.to_string()))
            });
        }
        let failures: Vec<String> = replicas
            .join_all()
            .await
            .into_iter()
            .filter_map(|(replica, migrated)| {
                migrated
                    .err()
                    .map(|error| format!("replica {replica}: {error}"))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "round {round}: replicas starting together failed:\n{}",
            failures.join("\n")
        );
    }
}

/// The migration role's URL is a secret like the runtime one: neither `--help` nor a
/// start-up that cannot reach it shows its password.
#[tokio::test]
async fn an_unreachable_migration_url_fails_without_its_password() {
    const PASSWORD: &str = "SECRET-migration-password";
    let migration_url = format!("postgres://owner:{PASSWORD}@127.0.0.1:1/orders");
    let help = Command::new(env!("CARGO_BIN_EXE_order-producer"))
        .args(["serve", "--help"])
        .env("PRODUCER_DATABASE_MIGRATION_URL", &migration_url)
        .output()
        .expect("run order-producer serve --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--database-migration-url"), "{help}");
    assert!(
        !help.contains(PASSWORD),
        "--help shows the password: {help}"
    );

    // The runtime URL answers, so start-up gets as far as the migration URL.
    let (runtime_url, runtime) = testkit::fresh_database().await;
    runtime.close().await;
    let output = Command::new(env!("CARGO_BIN_EXE_order-producer"))
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-addr", ""])
        .args(["--database-url", &runtime_url])
        .args(["--database-migration-url", &migration_url])
        .args(["--database-connect-timeout", "1s"])
        .env("LOG_LEVEL", "debug")
        .env_remove("ORDERFLOW_API_TOKENS")
        .env_remove("ORDER_API_TOKENS_FILE")
        .output()
        .expect("run order-producer serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "started without its migration role: {stderr}"
    );
    assert!(
        stderr.contains("migration URL") && stderr.contains("127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "password leaked: {stderr}");
}
