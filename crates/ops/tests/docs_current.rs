//! docs/cli-reference.md, docs/configuration.md and docs/openapi.json match what the
//! binaries accept and serve: `scripts/gen-cli-reference.sh --check` regenerates them from
//! the debug binaries (building them first) and fails with a diff when a committed file
//! differs.
//! Fix a failure by running `scripts/gen-cli-reference.sh` and committing the result.

use std::path::Path;
use std::process::Command;

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
