#!/usr/bin/env bash
# Producer throughput: `order-producer generate` against a raw rdkafka producer that sends
# pre-encoded order events (same sizes, keys, headers and producer settings), in one run
# against the same broker, so the ratio is the cost of generating and encoding events.
# Target: generate >= 0.9 x raw.
#
# Needs a running broker and schema registry, located by KAFKA_BROKERS and
# SCHEMA_REGISTRY_URL; this script starts nothing. scripts/dev-up.sh starts both and
# writes them to .dev/env.sh:
#
#   scripts/dev-up.sh && source .dev/env.sh && scripts/bench-producer.sh
#
# Settings (environment): BENCH_COUNT (records per run, default 200000),
# BENCH_PARTITIONS (default 12), BENCH_ROUNDS (default 2; rounds alternate which side
# goes first, so neither always meets the broker's page cache and log segments in the
# same state). Each round's line shows the 1-minute load average after it.
# Extra arguments are passed to both producers (e.g. --compression zstd --linger 5ms).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

missing=()
[ -n "${KAFKA_BROKERS:-}" ] || missing+=(KAFKA_BROKERS)
[ -n "${SCHEMA_REGISTRY_URL:-}" ] || missing+=(SCHEMA_REGISTRY_URL)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bench-producer: ${missing[*]} not set: start the stack with scripts/dev-up.sh, then 'source .dev/env.sh' (or export them yourself)" >&2
    exit 2
fi
command -v jq >/dev/null || { echo "bench-producer: jq is required (apt-get install jq)" >&2; exit 2; }

COUNT="${BENCH_COUNT:-200000}"
PARTITIONS="${BENCH_PARTITIONS:-12}"
ROUNDS="${BENCH_ROUNDS:-2}"
EXTRA=("$@")

echo "building release binaries..." >&2
cargo build --release --quiet -p order-producer --bins
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
RUN_ID="$(date +%s)-$$"
RESULTS="$(mktemp -d)"
# `time` reports the client process's CPU seconds (user + system): the cost of generating
# and encoding shows there even when the broker is what limits records/s.
TIMEFORMAT='%3U %3S'
cpu_seconds() { awk '{ s += $1 + $2 } END { printf "%.2f", s / NR }' "$@"; }
trap 'rm -rf "$RESULTS"' EXIT

run_raw() {
    local topic="bench-raw-$RUN_ID-$1"
    "$BIN/raw-producer-bench" --topic "$topic" --create-partitions "$PARTITIONS" --count 0
    { time "$BIN/raw-producer-bench" --topic "$topic" --count "$COUNT" "${EXTRA[@]}" >"$RESULTS/raw-$1.json"; } 2>"$RESULTS/raw-$1.cpu"
    echo "  raw      round $1: $(jq -r '.events_per_second | floor' "$RESULTS/raw-$1.json") records/s, $(cat "$RESULTS/raw-$1.cpu") CPU s, load $(cut -d' ' -f1 /proc/loadavg)" >&2
}

run_generate() {
    local topic="bench-generate-$RUN_ID-$1"
    "$BIN/raw-producer-bench" --topic "$topic" --create-partitions "$PARTITIONS" --count 0
    { time LOG_LEVEL=warn "$BIN/order-producer" generate --count "$COUNT" --rate 0 --seed 1 \
        --topic "$topic" --metrics-addr "" "${EXTRA[@]}" >"$RESULTS/generate-$1.json"; } 2>"$RESULTS/generate-$1.cpu"
    echo "  generate round $1: $(jq -r '.events_per_second | floor' "$RESULTS/generate-$1.json") records/s, $(cat "$RESULTS/generate-$1.cpu") CPU s, load $(cut -d' ' -f1 /proc/loadavg)" >&2
}

echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB RAM; start $(date -u +%FT%TZ), $(uptime)" >&2
echo "broker $KAFKA_BROKERS, registry $SCHEMA_REGISTRY_URL, $COUNT records x $ROUNDS rounds, $PARTITIONS partitions" >&2
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then
        run_raw "$round"
        run_generate "$round"
    else
        run_generate "$round"
        run_raw "$round"
    fi
done

raw_rate="$(jq -s 'map(.events_per_second) | add / length' "$RESULTS"/raw-*.json)"
generate_rate="$(jq -s 'map(.events_per_second) | add / length' "$RESULTS"/generate-*.json)"
raw_size="$(jq -s '.[0].value_bytes_avg' "$RESULTS"/raw-*.json)"
raw_cpu="$(cpu_seconds "$RESULTS"/raw-*.cpu)"
generate_cpu="$(cpu_seconds "$RESULTS"/generate-*.cpu)"
jq -n --argjson raw "$raw_rate" --argjson generate "$generate_rate" --argjson size "$raw_size" \
    --argjson count "$COUNT" --argjson rounds "$ROUNDS" \
    --argjson raw_cpu "$raw_cpu" --argjson generate_cpu "$generate_cpu" '{
        records_per_run: $count,
        rounds: $rounds,
        value_bytes_avg: $size,
        raw_events_per_second: ($raw | floor),
        generate_events_per_second: ($generate | floor),
        ratio: (($generate / $raw) * 1000 | round / 1000),
        raw_client_cpu_seconds: $raw_cpu,
        generate_client_cpu_seconds: $generate_cpu
    }'
