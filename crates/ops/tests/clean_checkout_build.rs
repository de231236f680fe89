//! The binaries build from a clean checkout on a machine without Node.js: the files
//! git tracks (plus new, not ignored ones) are copied to a temporary directory, so no
//! `node_modules` and no built dashboard assets come along, and `cargo build --bins`
//! runs there with every npm/node executable removed from PATH. This is what the
//! Dockerfile's Rust stage and `cargo install --path` do.
//!
//! Dev profile, not release: a clean release build of the dependencies does not fit the
//! CI budget on 2 cores. The target directory is a dedicated one, `target/clean-checkout`,
//! so the dependencies are compiled once and reused by later runs; only the workspace
//! crates are rebuilt each time.

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

    let target_dir = root.join("target/clean-checkout");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["build", "--bins", "--locked"])
        .current_dir(&checkout)
        .env("PATH", &path)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`cargo build --bins` failed in a clean checkout without npm ({}):\n{stderr}",
        output.status
    );

    for bin in ["orderflow", "order-producer", "order-consumer"] {
        assert!(
            target_dir.join("debug").join(bin).is_file(),
            "{bin} was not built"
        );
    }
    // Without the dashboard assets the binary carries the placeholder that makes the
    // dashboard say its chart library is missing.
    let orderflow = std::fs::read(target_dir.join("debug/orderflow")).expect("read orderflow");
    let notice = b"The chart library (uPlot) was not built into this binary";
    assert!(
        orderflow.windows(notice.len()).any(|w| w == notice),
        "the orderflow binary built without uPlot should carry the placeholder chart library"
    );
    assert!(
        stderr.contains("dashboard chart library not built"),
        "the build should warn that the chart library is missing:\n{stderr}"
    );
}
