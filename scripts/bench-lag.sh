#!/usr/bin/env bash
# Lag engine benchmark (not a timed test): time of one poll cycle for 2,000 partitions
# across 50 consumer groups (each group committed on its own 40-partition topic, every
# partition lagging, so each cycle reads committed offsets, log offsets and record
# timestamps), then for each further size given. Target: a steady-state cycle under 2 s.
# Also prints the process's threads and TCP connections to the broker, and times the
# committed-offset read alone, batched and through the per-group client pool.
#
# By default it starts a private Apache Kafka broker (fresh data in a temp dir, free
# port from 19100) and stops it afterwards. With KAFKA_BROKERS set it uses that broker
# instead (e.g. the dev stack).
# Usage: scripts/bench-lag.sh [GROUPSxPARTITIONS ...]   (default 50x40; e.g. `50x40 200x25`
# for 2,000/50 and 5,000/200 on the same broker; PARTITIONS is per group's topic)
# (env: LAG_BENCH_CYCLES=10 LAG_BENCH_GROUP_CLIENTS LAG_BENCH_CONCURRENCY)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
SIZES=("$@")
if [[ ${#SIZES[@]} -eq 0 ]]; then SIZES=(50x40); fi
for size in "${SIZES[@]}"; do
    if [[ ! "$size" =~ ^[0-9]+x[0-9]+$ ]]; then
        echo "bench-lag: size '$size' is not GROUPSxPARTITIONS (e.g. 200x25)" >&2
        exit 2
    fi
done
export LAG_BENCH_CYCLES="${LAG_BENCH_CYCLES:-10}"

cargo build --release --quiet -p orderflow-lag --example lag_bench
BIN="$ROOT/target/release/examples/lag_bench"

KAFKA_PRIVATE_PID=""
DATA_DIR=""
cleanup() {
    if [[ -n "$KAFKA_PRIVATE_PID" ]]; then kill "$KAFKA_PRIVATE_PID" 2>/dev/null || true; wait "$KAFKA_PRIVATE_PID" 2>/dev/null || true; fi
    if [[ -n "$DATA_DIR" ]]; then rm -rf "$DATA_DIR"; fi
}
trap cleanup EXIT

if [[ -z "${KAFKA_BROKERS:-}" ]]; then
    log_init
    DATA_DIR="$(mktemp -d /tmp/bench-lag-kafka.XXXXXX)"
    kafka_start_private "$DATA_DIR"
    export KAFKA_BROKERS="$KAFKA_PRIVATE_BOOTSTRAP"
    BROKER="Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_RUNTIME_POM") (fresh, private) on $KAFKA_BROKERS"
else
    BROKER="$KAFKA_BROKERS"
fi

echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "broker: $BROKER"
for size in "${SIZES[@]}"; do
    echo "== ${size%x*} groups x ${size#*x} partitions"
    echo "start: $(date -u +%FT%TZ), $(uptime)"
    LAG_BENCH_GROUPS="${size%x*}" LAG_BENCH_PARTITIONS="${size#*x}" "$BIN"
    echo "end: $(date -u +%FT%TZ), $(uptime)"
done
