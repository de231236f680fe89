#!/usr/bin/env bash
# Builds the lag dashboard's third-party assets, outside the Rust build (which needs no
# Node.js): installs crates/lag/dashboard/package-lock.json with `npm ci --ignore-scripts`
# (uPlot, and playwright-core for the dashboard test) and copies uPlot's two files into
# crates/lag/dashboard/vendor/ (git-ignored), where crates/lag/build.rs embeds them.
# Without them the binaries still build and the dashboard says its charts are missing.
#
# Usage: scripts/build-dashboard.sh   (run by scripts/test.sh, scripts/dev-up.sh and the
#        Dockerfile's node stage; rerun after changing package-lock.json)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DASHBOARD="$ROOT/crates/lag/dashboard"
FILES=(uPlot.iife.min.js uPlot.min.css)

command -v npm >/dev/null || {
    echo "build-dashboard: npm not found: install Node.js 20+ (apt-get install npm)" >&2
    exit 1
}
dist="$DASHBOARD/node_modules/uplot/dist"
have_all=1
for file in "${FILES[@]}"; do
    [ -f "$dist/$file" ] || have_all=0
done
# Reinstall when a file is missing or the lock file is newer than the install.
if [ "$have_all" -eq 0 ] || [ "$DASHBOARD/package-lock.json" -nt "$DASHBOARD/node_modules/.package-lock.json" ]; then
    (cd "$DASHBOARD" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
mkdir -p "$DASHBOARD/vendor"
for file in "${FILES[@]}"; do
    # cmp first: an unchanged file keeps its mtime, so cargo does not rebuild the crate.
    cmp -s "$dist/$file" "$DASHBOARD/vendor/$file" || cp "$dist/$file" "$DASHBOARD/vendor/$file"
done
echo "build-dashboard: uPlot $(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$DASHBOARD/node_modules/uplot/package.json") in ${DASHBOARD#"$ROOT"/}/vendor"
