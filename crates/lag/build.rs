//! Embeds the dashboard's chart library (uPlot) when it has been built, and builds
//! without it otherwise: Node.js is not part of the Rust build.
//!
//! `scripts/build-dashboard.sh` (run by scripts/test.sh, scripts/dev-up.sh and the
//! Dockerfile's node stage) installs uPlot from `dashboard/package-lock.json` and
//! copies its two files into `dashboard/vendor/` (git-ignored). When both are there,
//! they are copied to OUT_DIR and the `uplot` cfg is set; when not, the dashboard
//! says on the page that its chart library is missing.

use std::path::PathBuf;

const FILES: [&str; 2] = ["uPlot.iife.min.js", "uPlot.min.css"];

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let vendor = manifest.join("dashboard/vendor");
    // The directory is committed (with its .gitignore) so it always exists: watching
    // it reruns this script when the files appear or change, and only then.
    println!("cargo:rerun-if-changed=dashboard/vendor");
    println!("cargo::rustc-check-cfg=cfg(uplot)");
    if !FILES.iter().all(|f| vendor.join(f).is_file()) {
        println!(
            "cargo:warning=dashboard chart library not built: run scripts/build-dashboard.sh (needs npm) to embed it"
        );
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for file in FILES {
        let from = vendor.join(file);
        std::fs::copy(&from, out.join(file))
            .unwrap_or_else(|e| panic!("copying {} into OUT_DIR: {e}", from.display()));
    }
    println!("cargo:rustc-cfg=uplot");
}
