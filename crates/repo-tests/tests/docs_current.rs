//! docs/cli-reference.md, docs/configuration.md and docs/openapi.json match what the
//! binaries accept and serve: `scripts/gen-cli-reference.sh --check` regenerates them from
//! the debug binaries (building them first) and fails with a diff when a committed file
//! differs; and docs/configuration.md is compared here with what the binaries' clap
//! command models give now, in process.
//! Fix a failure by running `scripts/gen-cli-reference.sh` and committing the result.

use std::path::Path;
use std::process::Command;

use orderflow_repo_tests::configuration_reference;

#[test]
fn committed_cli_and_configuration_references_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("bash")
        .arg("scripts/gen-cli-reference.sh")
        .arg("--check")
        .current_dir(&root)
        .output()
        .expect("bash runs scripts/gen-cli-reference.sh");
    assert!(
        output.status.success(),
        "the committed references are out of date ({}); run scripts/gen-cli-reference.sh and commit docs/:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn committed_configuration_reference_matches_the_command_models() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let committed = std::fs::read_to_string(&path).expect("docs/configuration.md is readable");
    let current = configuration_reference();
    if committed != current {
        let first = committed
            .lines()
            .zip(current.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(current.lines().count()));
        panic!(
            "docs/configuration.md is out of date from line {}: run scripts/gen-cli-reference.sh \
             and commit docs/\n committed: {:?}\n current:   {:?}",
            first + 1,
            committed.lines().nth(first),
            current.lines().nth(first)
        );
    }
}
