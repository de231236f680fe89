//! Embeds the dashboard's chart library (uPlot, from the npm registry) without
//! committing third-party code: `dashboard/package-lock.json` pins it, `npm ci
//! --ignore-scripts` installs it into `dashboard/node_modules` (git-ignored) when
//! missing, and the files are copied to OUT_DIR for `include_str!`.

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [&str; 2] = ["uPlot.iife.min.js", "uPlot.min.css"];

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dashboard = manifest.join("dashboard");
    let dist = dashboard.join("node_modules/uplot/dist");
    println!("cargo:rerun-if-changed=dashboard/package-lock.json");
    println!("cargo:rerun-if-changed=dashboard/package.json");
    for file in FILES {
        println!("cargo:rerun-if-changed=dashboard/node_modules/uplot/dist/{file}");
    }
    if !FILES.iter().all(|f| dist.join(f).is_file()) {
        npm_ci(&dashboard);
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for file in FILES {
        let from = dist.join(file);
        std::fs::copy(&from, out.join(file))
            .unwrap_or_else(|e| panic!("copying {} into OUT_DIR: {e}", from.display()));
    }
}

fn npm_ci(dir: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "the lag dashboard needs npm to fetch its chart library ({}): {e}; install Node.js/npm or run `npm ci --ignore-scripts` there",
                dir.display()
            )
        });
    assert!(
        status.success(),
        "`npm ci --ignore-scripts` failed in {} ({status}); is the npm registry reachable?",
        dir.display()
    );
}
