//! The dev stack (`scripts/dev-up.sh`) runs no service as the PostgreSQL admin role: the
//! environment file it writes (`.dev/env.sh`, what a developer's commands read) and the
//! processes it starts name the services' own roles, the ones
//! `deploy/postgres/service-roles.sql` makes (`producers/tests/database_roles.rs` checks
//! what those roles may do). Needs bash only: nothing is started.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// The user of a `postgres://user:password@host/db` URL.
fn database_user(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let userinfo = rest.split_once('@').map_or("", |(userinfo, _)| userinfo);
    userinfo.split(':').next().unwrap_or_default()
}

/// Writes the dev stack's environment file into a temporary directory with the
/// scripts' own function and prints, one a line, `NAME=value` for the admin role and
/// every database variable the file exports.
fn dev_environment() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let env_file = dir.path().join("env.sh");
    let script = r#"
        set -euo pipefail
        source "$ROOT/scripts/lib/all.sh"
        source "$ROOT/scripts/lib/dev_stack.sh"
        DEV_ENV_FILE="$ENV_FILE"
        write_dev_env_file
        echo "ADMIN_ROLE=$PG_ROLE"
        source "$ENV_FILE"
        env | grep -E '^[A-Z_]*DATABASE[A-Z_]*URL=' | sort
    "#;
    let output = Command::new("bash")
        .args(["-c", script])
        .env("ROOT", repo_root())
        .env("ENV_FILE", &env_file)
        .env_remove("DATABASE_URL")
        .env_remove("PRODUCER_DATABASE_URL")
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "writing the dev environment file failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

#[test]
fn the_dev_stack_runs_each_service_as_its_own_role_never_the_admin() {
    let environment = dev_environment();
    let value = |name: &str| {
        environment
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the dev environment has no {name}: {environment:?}"))
    };
    let admin = value("ADMIN_ROLE");
    let urls: Vec<_> = environment
        .iter()
        .filter(|(n, _)| n != "ADMIN_ROLE")
        .collect();
    assert!(
        urls.len() >= 2,
        "too few database URLs in the dev environment: {environment:?}"
    );
    for (name, url) in urls {
        assert_ne!(
            database_user(url),
            admin,
            "{name} of the dev environment connects as the admin role"
        );
    }
    // The runtime URLs and the migration URLs name different roles.
    for (runtime, migration) in [
        ("DATABASE_URL", "CONSUMER_DATABASE_MIGRATION_URL"),
        ("PRODUCER_DATABASE_URL", "PRODUCER_DATABASE_MIGRATION_URL"),
    ] {
        assert_ne!(
            database_user(value(runtime)),
            database_user(value(migration)),
            "{runtime} and {migration} should be the service's two roles"
        );
    }

    // The processes dev-up starts get the roles' URLs, never the admin's (`pg_url`).
    let dev_up = std::fs::read_to_string(repo_root().join("scripts/dev-up.sh"))
        .expect("read scripts/dev-up.sh");
    let admin_urls: Vec<&str> = dev_up
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && line.contains("$(pg_url "))
        .collect();
    assert!(
        admin_urls.is_empty(),
        "scripts/dev-up.sh hands the admin role's URL to a process:\n{}",
        admin_urls.join("\n")
    );
}
