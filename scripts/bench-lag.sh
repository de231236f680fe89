#!/usr/bin/env bash
# Lag engine benchmark (not a timed test): time of one poll cycle for 2,000 partitions
# across 50 consumer groups (each group committed on its own 40-partition topic, every
# partition lagging, so each cycle reads committed offsets, log offsets and record
# timestamps). Target: a steady-state cycle under 2 s.
#
# By default it starts a private Tansu broker (fresh SQLite file in a temp dir) on
# 127.0.0.1:${BENCH_LAG_PORT:-19117} and stops it afterwards. With KAFKA_BROKERS set it
# uses that broker instead (e.g. the dev stack or Apache Kafka).
# Usage: scripts/bench-lag.sh   (env: LAG_BENCH_GROUPS=50 LAG_BENCH_PARTITIONS=40 LAG_BENCH_CYCLES=10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
export LAG_BENCH_GROUPS="${LAG_BENCH_GROUPS:-50}"
export LAG_BENCH_PARTITIONS="${LAG_BENCH_PARTITIONS:-40}"
export LAG_BENCH_CYCLES="${LAG_BENCH_CYCLES:-10}"

cargo build --release --quiet -p orderflow-lag --example lag_bench
BIN="$ROOT/target/release/examples/lag_bench"

TANSU_PID=""
DATA_DIR=""
cleanup() {
    if [[ -n "$TANSU_PID" ]]; then kill "$TANSU_PID" 2>/dev/null || true; wait "$TANSU_PID" 2>/dev/null || true; fi
    if [[ -n "$DATA_DIR" ]]; then rm -rf "$DATA_DIR"; fi
}
trap cleanup EXIT

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
    command -v tansu >/dev/null || { echo "bench-lag: tansu not found (cargo install tansu --version 0.6.0 --locked --features libsql) and KAFKA_BROKERS not set" >&2; exit 1; }
    PORT="${BENCH_LAG_PORT:-19117}"
    DATA_DIR="$(mktemp -d /tmp/bench-lag-tansu.XXXXXX)"
    start_private_tansu "$PORT" "$DATA_DIR" || exit 1
    export KAFKA_BROKERS="127.0.0.1:$PORT"
    BROKER="Tansu $(tansu --version 2>/dev/null | awk '{print $2}') (SQLite, fresh)"
else
    BROKER="$KAFKA_BROKERS"
fi

echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "broker: $BROKER"
"$BIN"
