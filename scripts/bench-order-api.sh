#!/usr/bin/env bash
# Order API benchmark (not a timed test): wrk against `order-producer serve` on this
# machine, in one invocation and on the same broker and database:
#   1. baseline: GET /orders/{id} at saturation (one indexed read, no outbox, no Kafka)
#   2. POST /orders paced at BENCH_RATE (default 500 req/s): wrk has no open-loop
#      mode, so 8 connections each pause between their requests (closed loop: a
#      stall delays the next requests instead of queueing them, so the tail is
#      understated; see BENCHMARKS.md)
#   3. POST /orders at saturation (validation, Avro encoding, one transaction writing
#      the order and its outbox row; the relay publishes meanwhile)
# and, for the orders of runs 2 and 3, the relay's end-to-end delay: from the order's
# transaction (outbox created_at) to the record's append time in Kafka (the topic
# uses LogAppendTime), p50/p99/max, and the relay's throughput until it has drained
# run 3's backlog.
#
# Needs PostgreSQL and the registry (scripts/dev-up.sh --infra-only prints them):
#   SCHEMA_REGISTRY_URL, DATABASE_URL (a role that may CREATE DATABASE)
# Starts a private Apache Kafka broker (fresh, free port from 19100) and stops it
# afterwards. The service runs without rate limits and with one bearer token (so
# authentication is part of the cost). wrk comes from Debian.
# Usage: scripts/bench-order-api.sh [SECONDS]   (each run's duration, default 20)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
: "${SCHEMA_REGISTRY_URL:=http://127.0.0.1:8081/apis/ccompat/v7}"
: "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL (admin role); run scripts/dev-up.sh --infra-only}"
export SCHEMA_REGISTRY_URL
SECS="${1:-20}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
log_init
ensure_command wrk wrk
cargo build --release --quiet -p order-producer -p orderflow-ops -p orderflow-chaos --bins
BIN="$ROOT/target/release"

RUN_ID="$(date +%s)$$"
DB_NAME="bench_api_$RUN_ID"
DB_URL="${DATABASE_URL%/*}/$DB_NAME"
WORK="$(mktemp -d /tmp/bench-order-api.XXXXXX)"
KAFKA_PRIVATE_PID="" SERVICE_PID=""
cleanup() {
    if [[ -n "$SERVICE_PID" ]]; then kill "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true; fi
    if [[ -n "$KAFKA_PRIVATE_PID" ]]; then kill "$KAFKA_PRIVATE_PID" 2>/dev/null || true; wait "$KAFKA_PRIVATE_PID" 2>/dev/null || true; fi
    psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB_NAME" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

kafka_start_private "$WORK"
BROKERS="$KAFKA_PRIVATE_BOOTSTRAP"
TOPIC="bench-api-$RUN_ID"
kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" --create \
    --topic "$TOPIC" --partitions 6 --replication-factor 1 \
    --config message.timestamp.type=LogAppendTime >/dev/null
psql -q "$DATABASE_URL" -c "CREATE DATABASE $DB_NAME" >/dev/null

API_PORT="$(find_free_port 24500)"
OPS_PORT="$(find_free_port $((API_PORT + 1)))"
API_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf 'bench:%s\n' "$API_TOKEN" >"$WORK/tokens"
SERVE_ARGS=(serve --listen "127.0.0.1:$API_PORT" --metrics-addr "127.0.0.1:$OPS_PORT"
    --database-url "$DB_URL" --brokers "$BROKERS" --topic "$TOPIC" --log-level warn)
help="$("$BIN/order-producer" serve --help)"
if grep -q -- '--api-tokens-file' <<<"$help"; then SERVE_ARGS+=(--api-tokens-file "$WORK/tokens"); fi
if grep -q -- '--rate-limit-per-second' <<<"$help"; then SERVE_ARGS+=(--rate-limit-per-second 0); fi
"$BIN/order-producer" "${SERVE_ARGS[@]}" >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
wait_for_http "order service" "http://127.0.0.1:$OPS_PORT/readyz" 60 "$WORK/service.log" "$SERVICE_PID"
export API_TOKEN

echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "broker: Apache Kafka (fresh, private) on $BROKERS, topic $TOPIC (6 partitions, LogAppendTime)"
echo "wrk: $CONNECTIONS connections, 2 threads, $SECS s per run; start: $(date -u +%FT%TZ)"

# One order to read back in the baseline.
ORDER_ID="$(curl -sf -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
    -d '{"customer_id": "bench", "currency": "EUR", "items": [{"sku": "SKU-1", "quantity": 1, "unit_price_cents": 100}]}' \
    "http://127.0.0.1:$API_PORT/orders" | python3 -c 'import json,sys; print(json.load(sys.stdin)["order_id"])')"
export ORDER_ID

run_wrk() { # run_wrk METHOD DELAY_MS CONNECTIONS -> the script's JSON line
    BENCH_METHOD="$1" BENCH_DELAY_MS="$2" wrk -t2 -c"$3" -d"${SECS}s" --latency \
        -s scripts/bench/order_api.lua "http://127.0.0.1:$API_PORT" | tail -n 1
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"; }
load() { cut -d' ' -f1 /proc/loadavg; }

drain() { # waits until the relay has published every outbox row (120 s bound)
    local pending
    for _ in $(seq 1 240); do
        pending="$(psql -Atq "$DB_URL" -c "SELECT count(*) FROM order_service.outbox WHERE sent_at IS NULL")"
        [[ "$pending" == 0 ]] && return 0
        sleep 0.5
    done
    die "the relay left $pending outbox rows unsent 120 s after the run"
}
last_id() { psql -Atq "$DB_URL" -c "SELECT coalesce(max(id), 0) FROM order_service.outbox"; }
delay_since() { # delay_since ID: relay delay of the rows after outbox id ID
    psql -Atq -F, "$DB_URL" -c "SELECT order_id, extract(epoch FROM created_at) FROM order_service.outbox WHERE id > $1" >"$WORK/created.csv"
    "$BIN/orderflow-chaos" relay-delay --brokers "$BROKERS" --topic "$TOPIC" --created-csv "$WORK/created.csv"
}
relay_rate_since() { # relay_rate_since ID: rows after ID / (last sent - first created)
    psql -Atq "$DB_URL" -c "SELECT round(count(*) / greatest(extract(epoch FROM max(sent_at) - min(created_at)), 0.001)) FROM order_service.outbox WHERE id > $1"
}

GET="$(run_wrk GET 0 "$CONNECTIONS")"; GET_LOAD="$(load)"
# Paced: 8 connections, each pausing so that together they ask for RATE req/s.
RATE="${BENCH_RATE:-500}"
DELAY_MS="$(python3 -c 'import sys; print(max(1, round(8 * 1000 / int(sys.argv[1]))))' "$RATE")"
BEFORE="$(last_id)"
# shellcheck disable=SC2034 # read through ${!name} below
PACED="$(run_wrk POST "$DELAY_MS" 8)"; PACED_LOAD="$(load)"
drain
PACED_DELAY="$(delay_since "$BEFORE")"
BEFORE="$(last_id)"
POST="$(run_wrk POST 0 "$CONNECTIONS")"; POST_LOAD="$(load)"
drain
POST_DELAY="$(delay_since "$BEFORE")"
RELAY_RATE="$(relay_rate_since "$BEFORE")"

row() { printf '| %-40s | %9s | %8s | %8s | %8s | %9s | %6s | %5s |\n' "$@"; }
echo
row "run" "req/s" "p50 ms" "p99 ms" "p99.9 ms" "requests" "non2xx" "load"
row "----------------------------------------" "---------" "--------" "--------" "--------" "---------" "------" "-----"
for name in GET PACED POST; do
    json="${!name}"
    case "$name" in
        GET) label="baseline: GET /orders/{id}, saturation"; l="$GET_LOAD" ;;
        PACED) label="POST /orders, paced at ~$RATE req/s"; l="$PACED_LOAD" ;;
        POST) label="POST /orders, saturation"; l="$POST_LOAD" ;;
    esac
    row "$label" "$(field rps "$json")" "$(field p50_ms "$json")" "$(field p99_ms "$json")" \
        "$(field p999_ms "$json")" "$(field requests "$json")" "$(field non2xx "$json")" "$l"
done
python3 -c 'import sys; print(f"POST saturation is {float(sys.argv[1])/float(sys.argv[2]):.2f}x the GET baseline")' \
    "$(field rps "$POST")" "$(field rps "$GET")"
echo "relay end-to-end delay (outbox created_at -> Kafka LogAppendTime):"
echo "  paced run:      $PACED_DELAY"
echo "  saturation run: $POST_DELAY"
echo "  relay throughput over the saturation run until drained: $RELAY_RATE rows/s"
echo "end: $(date -u +%FT%TZ), $(uptime)"
