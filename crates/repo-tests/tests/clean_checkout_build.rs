//! The workspace builds from a clean checkout on a machine without Node.js: the files
//! git tracks (plus new, not ignored ones) are copied to a temporary directory, so no
//! `node_modules` and no built dashboard assets come along, and cargo runs there with
//! every npm/node executable removed from PATH. This is what the Dockerfile's Rust stage
//! and `cargo install --path` rely on.
//!
//! Only a build script can call npm, and only `crates/lag` has one (the test fails when
//! another crate gains one, so it is added here). So `cargo check -p orderflow-lag` is
//! enough to prove the property: it runs that build script and type-checks the crate
//! with the placeholder chart library, without code generation and without building
//! the other binaries (a release build of the workspace took 272 s of a fresh CI run).
//! The target directory is a dedicated one, `target/clean-checkout`, so the
//! dependencies are checked once and reused by later runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Executables that must not be on PATH for the build.
const NODE_TOOLS: [&str; 4] = ["npm", "npx", "node", "corepack"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// The files of a clean checkout: tracked ones and new ones git does not ignore.
fn checkout_files(root: &Path) -> Vec<PathBuf> {
    let output = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output()
        .expect("git runs (the test needs git to list the checkout's files)");
    assert!(
        output.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8(name.to_vec()).expect("UTF-8 file names")))
        // Deleted but not yet committed: not part of the checkout.
        .filter(|name| root.join(name).is_file())
        .collect()
}

fn copy_checkout(root: &Path, to: &Path) {
    for file in checkout_files(root) {
        let target = to.join(&file);
        std::fs::create_dir_all(target.parent().expect("a file has a parent"))
            .expect("create the copy's directories");
        std::fs::copy(root.join(&file), &target)
            .unwrap_or_else(|e| panic!("copying {}: {e}", file.display()));
    }
}

/// PATH with every directory that holds a Node.js tool replaced by a directory of
/// links to all its other executables (so cc, cmake, git, ... stay available).
fn path_without_node(shadow_root: &Path) -> OsString {
    let path = std::env::var_os("PATH").expect("PATH is set");
    let mut dirs = Vec::new();
    for (i, dir) in std::env::split_paths(&path).enumerate() {
        if !NODE_TOOLS.iter().any(|tool| dir.join(tool).exists()) {
            dirs.push(dir);
            continue;
        }
        let shadow = shadow_root.join(format!("dir{i}"));
        std::fs::create_dir_all(&shadow).expect("create a shadow PATH directory");
        for entry in std::fs::read_dir(&dir).expect("read a PATH directory") {
            let entry = entry.expect("a directory entry");
            let name = entry.file_name();
            if NODE_TOOLS.iter().any(|tool| name == *tool) {
                continue;
            }
            // A name already linked from an earlier entry is simply skipped.
            let _ = std::os::unix::fs::symlink(entry.path(), shadow.join(&name));
        }
        dirs.push(shadow);
    }
    std::env::join_paths(dirs).expect("PATH directories join")
}

#[test]
fn binaries_build_from_a_clean_checkout_without_npm() {
    let root = repo_root();
    let scratch = tempfile::tempdir().expect("a temporary directory");
    let checkout = scratch.path().join("checkout");
    copy_checkout(&root, &checkout);
    assert!(
        !checkout.join("crates/lag/dashboard/node_modules").exists()
            && !checkout
                .join("crates/lag/dashboard/vendor/uPlot.iife.min.js")
                .exists(),
        "the copy must not contain installed or built dashboard assets"
    );

    let path = path_without_node(&scratch.path().join("path"));
    for tool in NODE_TOOLS {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .env("PATH", &path)
            .output()
            .expect("sh runs");
        assert!(
            !found.status.success(),
            "{tool} is still on the stripped PATH: {}",
            String::from_utf8_lossy(&found.stdout)
        );
    }

    // Every build script of the checkout belongs to a crate checked below.
    let build_scripts: Vec<PathBuf> = checkout_files(&root)
        .into_iter()
        .filter(|file| file.file_name().is_some_and(|name| name == "build.rs"))
        .filter(|file| !file.starts_with("fuzz"))
        .collect();
    assert_eq!(
        build_scripts,
        [PathBuf::from("crates/lag/build.rs")],
        "a new build script may need npm: check its crate here too"
    );

    let target_dir = root.join("target/clean-checkout");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["check", "-p", "orderflow-lag", "--locked"])
        .current_dir(&checkout)
        .env("PATH", &path)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`cargo check -p orderflow-lag` failed in a clean checkout without npm ({}):\n{stderr}",
        output.status
    );
    // Without the dashboard assets the build script says so, and the crate compiles
    // with the placeholder that makes the dashboard say its chart library is missing.
    assert!(
        stderr.contains("dashboard chart library not built"),
        "the build should warn that the chart library is missing:\n{stderr}"
    );
}
