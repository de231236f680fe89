#!/usr/bin/env bash
# Lag engine benchmark (not a timed test): time of one poll cycle for 2,000 partitions
# across 50 consumer groups (each group committed on its own 40-partition topic, every
# partition lagging, so each cycle reads committed offsets, log offsets and record
# timestamps). Target: a steady-state cycle under 2 s.
#
# By default it starts a private Apache Kafka broker (fresh data in a temp dir, free
# port from 19100) and stops it afterwards. With KAFKA_BROKERS set it uses that broker
# instead (e.g. the dev stack).
# Usage: scripts/bench-lag.sh   (env: LAG_BENCH_GROUPS=50 LAG_BENCH_PARTITIONS=40 LAG_BENCH_CYCLES=10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/log.sh
source scripts/lib/log.sh
# shellcheck source=scripts/lib/install.sh
source scripts/lib/install.sh
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
# shellcheck source=scripts/lib/kafka.sh
source scripts/lib/kafka.sh
export LAG_BENCH_GROUPS="${LAG_BENCH_GROUPS:-50}"
export LAG_BENCH_PARTITIONS="${LAG_BENCH_PARTITIONS:-40}"
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
echo "start: $(date -u +%FT%TZ), $(uptime)"
"$BIN"
echo "end: $(date -u +%FT%TZ), $(uptime)"
