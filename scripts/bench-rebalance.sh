#!/usr/bin/env bash
# Rebalance pause benchmark (not a timed test): how long a busy consumer group stops
# processing while a second worker joins it, under the classic group protocol
# (cooperative-sticky, client-side assignment) and the KIP-848 consumer protocol
# (broker-side assignment). Each protocol runs ROUNDS times on the same broker, topic
# size and database server; the table shows every round and the median.
#
# Set-up per round: a fresh 12-partition topic holding ORDERS lifecycles (3 events each),
# a fresh database, worker 1 with a 5 ms effect per event, one event at a time per
# partition (about 2,400 events/s on 12 partitions, so the backlog lasts), then
# worker 2 joins 8 s later. rebalance_pause.py samples both workers'
# orderflow_consumer_records_total every 20 ms. "group pause" is the longest stretch
# without progress of the whole group from the join on; "joiner's first record" is how
# long after its start the new worker finished its first event (join, assignment and
# first fetch: the rebalance as the new member lives it).
#
# Needs SCHEMA_REGISTRY_URL and DATABASE_URL (admin role) of a running stack
# (scripts/dev-up.sh --infra-only). Starts a private Apache Kafka broker unless
# BENCH_KAFKA_BROKERS is set.
# Usage: scripts/bench-rebalance.sh [ROUNDS]   (default 3; env ORDERS=30000)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
: "${SCHEMA_REGISTRY_URL:=http://127.0.0.1:8081/apis/ccompat/v7}"
: "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL (admin role); run scripts/dev-up.sh --infra-only}"
export SCHEMA_REGISTRY_URL DATABASE_URL
ROUNDS="${1:-3}"
ORDERS="${ORDERS:-30000}"
WINDOW=20
JOIN_AT=8

log_init
cargo build --release --quiet -p order-consumer --bins
BIN="$ROOT/target/release"

KAFKA_PRIVATE_PID=""
DATA_DIR=""
WORKERS=()
cleanup() {
    local pid
    for pid in "${WORKERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [[ -n "$KAFKA_PRIVATE_PID" ]]; then kill "$KAFKA_PRIVATE_PID" 2>/dev/null || true; wait "$KAFKA_PRIVATE_PID" 2>/dev/null || true; fi
    if [[ -n "$DATA_DIR" ]]; then rm -rf "$DATA_DIR"; fi
}
trap cleanup EXIT

if [[ -n "${BENCH_KAFKA_BROKERS:-}" ]]; then
    export KAFKA_BROKERS="$BENCH_KAFKA_BROKERS"
else
    DATA_DIR="$(mktemp -d /tmp/bench-rebalance-kafka.XXXXXX)"
    kafka_start_private "$DATA_DIR"
    export KAFKA_BROKERS="$KAFKA_PRIVATE_BOOTSTRAP"
fi
echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "broker: Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_RUNTIME_POM") on $KAFKA_BROKERS"
RUN_ID="$(date +%s)$$"

worker() { # worker PROTOCOL TOPIC GROUP DB PORT
    "$BIN/order-consumer" --group-protocol "$1" --topic "$2" --group "$3" --database-url "$4" \
        --metrics-addr "127.0.0.1:$5" --bench-effect-delay-ms 5 --ordering partition --log-level warn >/dev/null 2>&1 &
    WORKERS+=("$!")
}

round() { # round PROTOCOL N -> JSON line
    local protocol="$1" n="$2" topic group db p1 p2 result
    topic="bench-rebalance-$RUN_ID-$protocol-$n"
    group="bench-rebalance-$RUN_ID-$protocol-$n"
    "$BIN/consumer-bench" seed --topic "$topic" --partitions 12 --orders "$ORDERS" >/dev/null
    db="$("$BIN/consumer-bench" fresh-db --name "bench_rebalance_${RUN_ID}_${protocol}_$n")"
    p1="$(find_free_port 19400)"
    p2="$(find_free_port $((p1 + 1)))"
    WORKERS=()
    worker "$protocol" "$topic" "$group" "$db" "$p1"
    # Worker 1 owns every partition and is processing before the sampling starts.
    wait_for_http "worker 1" "http://127.0.0.1:$p1/readyz" 60 /dev/null "${WORKERS[0]}"
    sleep 4
    python3 scripts/lib/rebalance_pause.py "$WINDOW" "$JOIN_AT" \
        "http://127.0.0.1:$p1/metrics" "http://127.0.0.1:$p2/metrics" >"$DATA_DIR_OUT/round.json" &
    local sampler=$!
    sleep "$JOIN_AT"
    worker "$protocol" "$topic" "$group" "$db" "$p2"
    wait "$sampler"
    result="$(cat "$DATA_DIR_OUT/round.json")"
    for pid in "${WORKERS[@]}"; do stop_pid worker "$pid"; done
    WORKERS=()
    printf '%s\n' "$result"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

DATA_DIR_OUT="$(mktemp -d)"
printf '| %-9s | %6s | %15s | %24s | %13s | %12s |\n' protocol round "group pause (s)" "joiner's first record (s)" "rate before/s" "rate after/s"
printf '|%s|\n' "-----------|--------|-----------------|---------------------------|---------------|--------------"
for protocol in classic consumer; do
    pauses=()
    firsts=()
    for n in $(seq 1 "$ROUNDS"); do
        json="$(round "$protocol" "$n")"
        read -r pause first before after < <(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["pause_s"], d["joiner_first_record_s"], d["rate_before"], d["rate_after"])' "$json")
        pauses+=("$pause")
        firsts+=("$first")
        printf '| %-9s | %6s | %15s | %25s | %13s | %12s |\n' "$protocol" "$n" "$pause" "$first" "$before" "$after"
    done
    printf '| %-9s | %6s | %15s | %25s | %13s | %12s |\n' "$protocol" median "$(median "${pauses[@]}")" "$(median "${firsts[@]}")" "" ""
done
rm -rf "$DATA_DIR_OUT"
