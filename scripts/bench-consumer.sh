#!/usr/bin/env bash
# Consumer benchmarks (not timed tests). Each comparison runs in one go on the
# same broker and database and prints a table:
#   1. exactly-once engine vs PostgreSQL alone applying the same events with the
#      same SQL, batch size and concurrency, from a staging table (consumer-bench
#      pg-limit: the physical limit; target >= 0.7x), and vs plain consumption of
#      the same records (no processing)
#   2. exactly-once engine vs the naive consumer: one transaction and one
#      synchronous commit per record (target >= 10x)
#   3. slow effect (5 ms simulated I/O per event, 1,000 keys, 12 partitions):
#      key-level concurrency vs partition-sequential processing (target >= 10x)
# Each row also shows the 1-minute load average right after its run.
#
# Needs a running stack (scripts/dev-up.sh prints the variables):
#   SCHEMA_REGISTRY_URL, DATABASE_URL (a role that may CREATE DATABASE)
# By default it starts a private Apache Kafka broker (fresh data in a temp dir, free
# port from 19100) and stops it afterwards, so no earlier run's data shares the disk
# and page cache. BENCH_KAFKA_BROKERS=host:port uses that broker instead. Every
# contender uses the same fetch settings (librdkafka's defaults;
# KAFKA_OPTIONS=key=value,... overrides them for all of them).
# Usage: scripts/bench-consumer.sh [ORDERS]   (ORDERS lifecycles of 3 events, default 10000)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
: "${SCHEMA_REGISTRY_URL:=http://127.0.0.1:8081/apis/ccompat/v7}"
: "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL (admin role); run scripts/dev-up.sh}"
export SCHEMA_REGISTRY_URL DATABASE_URL
ORDERS="${1:-10000}"
NAIVE_RECORDS="${NAIVE_RECORDS:-3000}"

cargo build --release --quiet -p order-consumer --bins
BIN="$ROOT/target/release"

KAFKA_PRIVATE_PID=""
DATA_DIR=""
RUN_ID="$(date +%s)$$"
cleanup() {
    # The run's fresh databases live on a shared server: drop them.
    "$BIN/consumer-bench" drop-dbs --prefix "bench_consumer_${RUN_ID}_" || true
    if [[ -n "$KAFKA_PRIVATE_PID" ]]; then kill "$KAFKA_PRIVATE_PID" 2>/dev/null || true; wait "$KAFKA_PRIVATE_PID" 2>/dev/null || true; fi
    if [[ -n "$DATA_DIR" ]]; then rm -rf "$DATA_DIR"; fi
}
trap cleanup EXIT

if [[ -n "${BENCH_KAFKA_BROKERS:-}" ]]; then
    export KAFKA_BROKERS="$BENCH_KAFKA_BROKERS"
    BROKER="$KAFKA_BROKERS"
else
    log_init
    DATA_DIR="$(mktemp -d /tmp/bench-consumer-kafka.XXXXXX)"
    kafka_start_private "$DATA_DIR"
    export KAFKA_BROKERS="$KAFKA_PRIVATE_BOOTSTRAP"
    BROKER="Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_RUNTIME_POM") (fresh, private) on $KAFKA_BROKERS"
fi
echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "broker: $BROKER"
echo "start: $(date -u +%FT%TZ), $(uptime)"

json_field() { # json_field FIELD JSON
    python3 -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"
}

fresh_db() { "$BIN/consumer-bench" fresh-db --name "bench_consumer_${RUN_ID}_$1"; }

engine() { # engine TOPIC DB_URL EXTRA... -> records/s from the JSON summary
    local topic="$1" db="$2"
    shift 2
    local summary
    summary="$("$BIN/order-consumer" --topic "$topic" --group "bench-$RUN_ID-$RANDOM" \
        --database-url "$db" --metrics-addr "" --exit-when-idle 2 --log-level warn "$@")"
    local processed secs
    processed="$(json_field processed "$summary")"
    secs="$(json_field active_secs "$summary")"
    python3 -c 'import sys; p,s=float(sys.argv[1]),float(sys.argv[2]); print(f"{p/s:.0f} {p:.0f} {s:.2f}")' "$processed" "$secs"
}

row() { printf '| %-44s | %10s | %8s | %-22s | %5s |\n' "$@"; }
load() { cut -d' ' -f1 /proc/loadavg; }

echo "seeding: $ORDERS orders x 3 events, 12 partitions"
TOPIC="bench-orders-$RUN_ID"
"$BIN/consumer-bench" seed --topic "$TOPIC" --partitions 12 --orders "$ORDERS" >/dev/null
RECORDS=$((ORDERS * 3))

read -r EO_RATE EO_N _ <<<"$(engine "$TOPIC" "$(fresh_db eo)")"
EO_LOAD="$(load)"
LIMIT="$("$BIN/consumer-bench" pg-limit --topic "$TOPIC" --count "$RECORDS" --database-url "$(fresh_db limit)")"
LIMIT_RATE="$(json_field records_per_sec "$LIMIT")"
LIMIT_LOAD="$(load)"
PLAIN="$("$BIN/consumer-bench" plain --topic "$TOPIC" --count "$RECORDS")"
PLAIN_RATE="$(json_field records_per_sec "$PLAIN")"
PLAIN_LOAD="$(load)"
NAIVE="$("$BIN/consumer-bench" naive --topic "$TOPIC" --count "$NAIVE_RECORDS" --database-url "$(fresh_db naive)")"
NAIVE_RATE="$(json_field records_per_sec "$NAIVE")"
NAIVE_LOAD="$(load)"

echo "seeding: 1000 orders x 3 events, 12 partitions (slow effect)"
SLOW_TOPIC="bench-slow-$RUN_ID"
"$BIN/consumer-bench" seed --topic "$SLOW_TOPIC" --partitions 12 --orders 1000 >/dev/null
read -r KEY_RATE KEY_N _ <<<"$(engine "$SLOW_TOPIC" "$(fresh_db key)" --bench-effect-delay-ms 5 --ordering key --max-in-flight 1000)"
KEY_LOAD="$(load)"
read -r PART_RATE PART_N _ <<<"$(engine "$SLOW_TOPIC" "$(fresh_db part)" --bench-effect-delay-ms 5 --ordering partition --db-concurrency 12)"
PART_LOAD="$(load)"

ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}x")' "$1" "$2"; }
echo
row "run" "records/s" "records" "ratio" "load"
row "--------------------------------------------" "----------" "--------" "----------------------" "-----"
row "PostgreSQL alone (physical limit)" "$LIMIT_RATE" "$RECORDS" "" "$LIMIT_LOAD"
row "exactly-once engine (key order, batched tx)" "$EO_RATE" "$EO_N" "$(ratio "$EO_RATE" "$LIMIT_RATE") of the limit" "$EO_LOAD"
row "plain consumption (no processing)" "$PLAIN_RATE" "$RECORDS" "engine $(ratio "$EO_RATE" "$PLAIN_RATE") of plain" "$PLAIN_LOAD"
row "naive: 1 tx + 1 sync commit per record" "$NAIVE_RATE" "$NAIVE_RECORDS" "engine $(ratio "$EO_RATE" "$NAIVE_RATE")" "$NAIVE_LOAD"
row "slow 5 ms effect, key-level concurrency" "$KEY_RATE" "$KEY_N" "" "$KEY_LOAD"
row "slow 5 ms effect, partition-sequential" "$PART_RATE" "$PART_N" "key-level $(ratio "$KEY_RATE" "$PART_RATE")" "$PART_LOAD"
echo "pg-limit: $LIMIT"
echo "end: $(date -u +%FT%TZ), $(uptime)"
