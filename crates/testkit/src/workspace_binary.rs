//! The workspace's binaries for tests of another package (the repository-wide tests run
//! `orderflow`, `order-producer` and `order-consumer` together). Cargo builds only a
//! package's own binaries for its tests, so the first call builds the three packages'
//! binaries (a no-op when they are fresh): a test never runs a stale binary.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The packages whose binaries the repository-wide tests run.
const PACKAGES: [&str; 3] = ["orderflow-ops", "order-producer", "order-consumer"];

/// `target/<profile>/<name>`, built first (once per test process).
pub fn workspace_binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(build_binaries);
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing after building {PACKAGES:?}: is it a binary of one of them?",
        path.display()
    );
    path
}

/// Builds the binaries into the target directory this test runs from; returns it.
fn build_binaries() -> PathBuf {
    // The test executable is target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps")
        .to_path_buf();
    let target_dir = dir.parent().expect("target/<profile> has a parent");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "--bins"])
        .args(PACKAGES.iter().flat_map(|package| ["-p", package]))
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|profile| profile == "release") {
        command.arg("--release");
    }
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "building the workspace's binaries failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}
