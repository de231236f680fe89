#!/usr/bin/env bash
# Outbox drain benchmark (not a timed test): can the relay publish as fast as the API
# writes, with a long retained history in the outbox?
#
#   1. starts a private Apache Kafka broker, a fresh database and a release
#      `order-producer serve` (API and relay, one bearer token, no rate limit);
#   2. seeds the outbox with SEED_ROWS retained *sent* rows (default 1,000,000, sent an
#      hour ago, as the 24 h retention keeps them) and their orders;
#   3. drives a saturating mixed workload through the HTTP API with wrk
#      (scripts/bench/order_mix.lua: orders created, then paid, shipped or cancelled,
#      2-3 events per order) for WARMUP + WINDOW seconds, sampling the service's
#      /metrics every second;
#   4. reports over the steady window (after the warm-up): the API's writes/s (2xx
#      writes, from the service's request counter), the relay's drain rows/s (from its
#      own orderflow_outbox_published_total), their ratio, the unsent backlog over
#      time, and the commit-to-Kafka-ack delay p50/p99/p99.9 (from the relay's
#      orderflow_outbox_commit_to_ack_seconds histogram, interpolated in its buckets
#      as histogram_quantile does);
#   5. then lets the relay drain what is left (bounded by DRAIN_LIMIT seconds) and
#      reports how long that took, and the write-to-record delay of the window's rows
#      from the table (sent_at - created_at: the record of the send, a little after
#      the ack; this one works for a binary without the histogram too).
#
# Needs PostgreSQL and the registry (scripts/dev-up.sh --infra-only prints them):
#   SCHEMA_REGISTRY_URL, DATABASE_URL (a role that may CREATE DATABASE). wrk from Debian.
# Usage: scripts/bench-outbox-drain.sh [--bin-dir DIR] [--warmup S] [--window S]
#   --bin-dir  where order-producer is (default: build target/release); pass another
#              build's directory to measure another version with the same script
#   --warmup   seconds of load before the window (default 10)
#   --window   seconds of the steady window (default 30)
# Environment: SEED_ROWS (1000000), BENCH_CONNECTIONS (32), DRAIN_LIMIT (300),
#   RELAY_ARGS (extra `serve` flags, e.g. "--relay-batch-size 1000").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
: "${SCHEMA_REGISTRY_URL:=http://127.0.0.1:8081/apis/ccompat/v7}"
: "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL (admin role); run scripts/dev-up.sh --infra-only}"
export SCHEMA_REGISTRY_URL
BIN="" WARMUP=10 WINDOW=30
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bin-dir) BIN="$(cd "$2" && pwd)"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --window) WINDOW="$2"; shift 2 ;;
        *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
SEED_ROWS="${SEED_ROWS:-1000000}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
DRAIN_LIMIT="${DRAIN_LIMIT:-300}"
log_init
ensure_command wrk wrk
if [[ -z "$BIN" ]]; then
    cargo build --release --quiet -p order-producer --bins
    BIN="$ROOT/target/release"
fi

RUN_ID="$(date +%s)$$"
DB_NAME="bench_drain_$RUN_ID"
DB_URL="${DATABASE_URL%/*}/$DB_NAME"
WORK="$(mktemp -d /tmp/bench-outbox-drain.XXXXXX)"
KAFKA_PRIVATE_PID="" SERVICE_PID="" SAMPLER_PID=""
end_pid() { if [[ -n "$1" ]]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
cleanup() {
    end_pid "$SAMPLER_PID"
    end_pid "$SERVICE_PID"
    end_pid "$KAFKA_PRIVATE_PID"
    psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

kafka_start_private "$WORK"
BROKERS="$KAFKA_PRIVATE_BOOTSTRAP"
TOPIC="bench-drain-$RUN_ID"
kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKERS" --create \
    --topic "$TOPIC" --partitions 6 --replication-factor 1 >/dev/null
psql -q "$DATABASE_URL" -c "CREATE DATABASE $DB_NAME" >/dev/null

API_PORT="$(find_free_port 24600)"
OPS_PORT="$(find_free_port $((API_PORT + 1)))"
API_TOKEN="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf 'bench:%s\n' "$API_TOKEN" >"$WORK/tokens"
# shellcheck disable=SC2206 # RELAY_ARGS is a list of flags
SERVE_ARGS=(serve --listen "127.0.0.1:$API_PORT" --metrics-addr "127.0.0.1:$OPS_PORT"
    --database-url "$DB_URL" --brokers "$BROKERS" --topic "$TOPIC" --log-level warn
    --api-tokens-file "$WORK/tokens" --rate-limit-per-second 0 ${RELAY_ARGS:-})
"$BIN/order-producer" "${SERVE_ARGS[@]}" >"$WORK/service.log" 2>&1 &
SERVICE_PID=$!
wait_for_http "order service" "http://127.0.0.1:$OPS_PORT/readyz" 120 "$WORK/service.log" "$SERVICE_PID"
export API_TOKEN

# The service has migrated its schema: seed the retained history (as the relay left it:
# sent an hour ago, within the 24 h retention), four events per order.
step "seeding $SEED_ROWS retained sent outbox rows"
SEED_START=$SECONDS
psql -q "$DB_URL" -v ON_ERROR_STOP=1 >/dev/null <<SQL
INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
SELECT 'seed-' || g, 'shipped', 'seed', 'EUR', 2500 FROM generate_series(1, ($SEED_ROWS + 3) / 4) g;
INSERT INTO order_service.outbox
    (order_id, event_id, event_type, traceparent, payload, state, sent_at, created_at, attempts)
SELECT 'seed-' || ((g - 1) / 4 + 1), gen_random_uuid(), 'OrderCreated',
       '00-00000000000000000000000000000001-0000000000000001-00', '\x00'::bytea,
       'sent', now() - interval '1 hour', now() - interval '1 hour', 1
FROM generate_series(1, $SEED_ROWS) g;
VACUUM ANALYZE order_service.outbox;
VACUUM ANALYZE order_service.orders;
SQL
step_ok "seeded in $((SECONDS - SEED_START)) s"

metrics() { curl -sf "http://127.0.0.1:$OPS_PORT/metrics" || true; }
sample_loop() { # one snapshot a second: "## <unix time>" then the relevant lines
    while :; do
        printf '## %s\n' "$(date +%s.%N)"
        metrics | grep -E '^orderflow_(outbox_published_total|outbox_pending|outbox_commit_to_ack_seconds_(bucket|count|sum)|order_api_requests_total)' || true
        sleep 1
    done
}
sql() { psql -Atq "$DB_URL" -c "$1"; }
FIRST_ID="$(sql "SELECT coalesce(max(id), 0) FROM order_service.outbox")"

echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
echo "binary: $BIN/order-producer; broker: private Apache Kafka on $BROKERS, topic $TOPIC (6 partitions)"
echo "outbox: $(sql "SELECT count(*) FROM order_service.outbox WHERE sent_at IS NOT NULL") retained sent rows before the load"
echo "wrk: $CONNECTIONS connections, 2 threads, ${WARMUP} s warm-up + ${WINDOW} s window; serve flags: ${RELAY_ARGS:-defaults}"
echo "start: $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"

sample_loop >"$WORK/samples" 2>/dev/null &
SAMPLER_PID=$!
LOAD_START="$(date +%s.%N)"
WINDOW_START="$(python3 -c 'import sys; print(float(sys.argv[1]) + float(sys.argv[2]))' "$LOAD_START" "$WARMUP")"
WRK="$(wrk -t2 -c"$CONNECTIONS" -d"$((WARMUP + WINDOW))s" --latency \
    -s scripts/bench/order_mix.lua "http://127.0.0.1:$API_PORT" | tail -n 1)"
LOAD_END="$(date +%s.%N)"
LOAD_AVG="$(cut -d' ' -f1-3 /proc/loadavg)"

# Let the relay drain what the load left.
DRAIN_START=$SECONDS
while [[ "$(sql "SELECT count(*) FROM order_service.outbox WHERE sent_at IS NULL AND state <> 'parked'")" != 0 ]]; do
    if ((SECONDS - DRAIN_START >= DRAIN_LIMIT)); then
        warn "the relay left rows unsent ${DRAIN_LIMIT} s after the load"
        break
    fi
    sleep 0.5
done
DRAINED_AFTER=$((SECONDS - DRAIN_START))
sleep 1.5
end_pid "$SAMPLER_PID"
SAMPLER_PID=""

# The window's rows, from the table: write-to-record delay (sent_at - created_at).
TABLE_DELAY="$(sql "SELECT count(*), count(sent_at),
    round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)))::text,
    round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)))::text,
    round(1000 * percentile_cont(0.999) WITHIN GROUP (ORDER BY extract(epoch FROM sent_at - created_at)))::text,
    round(1000 * max(extract(epoch FROM sent_at - created_at)))::text
    FROM order_service.outbox
    WHERE id > $FIRST_ID AND created_at >= to_timestamp($WINDOW_START) AND created_at < to_timestamp($LOAD_END)")"
EVENTS="$(sql "SELECT string_agg(event_type || ' ' || n, ', ' ORDER BY event_type) FROM
    (SELECT event_type, count(*) n FROM order_service.outbox WHERE id > $FIRST_ID GROUP BY 1) e")"

python3 - "$WORK/samples" "$WINDOW_START" "$LOAD_END" "$WRK" "$LOAD_AVG" "$DRAINED_AFTER" "$TABLE_DELAY" "$EVENTS" <<'PY'
import json, math, re, sys

path, start, end, wrk, load, drained, table, events = sys.argv[1:9]
start, end, wrk = float(start), float(end), json.loads(wrk)
snaps = []
for block in open(path).read().split("## ")[1:]:
    lines = block.strip().splitlines()
    if not lines:
        continue
    values = {}
    for line in lines[1:]:
        name, _, value = line.rpartition(" ")
        values[name] = float(value)
    if values:
        snaps.append((float(lines[0]), values))

def at(t):  # the snapshot nearest to t
    return min(snaps, key=lambda s: abs(s[0] - t))

def writes(v):
    return sum(x for k, x in v.items() if k.startswith("orderflow_order_api_requests_total")
               and re.search(r'route="/orders(/\{id\}/(pay|ship|cancel))?"', k)
               and re.search(r'status="20[01]"', k))

a, b = at(start), at(end - 1)
dt = b[0] - a[0]
api = (writes(b[1]) - writes(a[1])) / dt
published = "orderflow_outbox_published_total"
drain = (b[1].get(published, 0) - a[1].get(published, 0)) / dt
pending = lambda v: int(v.get("orderflow_outbox_pending", 0))

def quantile(q):
    buckets = []
    for k, x in b[1].items():
        m = re.match(r'orderflow_outbox_commit_to_ack_seconds_bucket\{le="([^"]+)"\}', k)
        if m:
            buckets.append((float(m.group(1)), x - a[1].get(k, 0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return "n/a"
    total, rank = buckets[-1][1], q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return f">{lower:g} s"
            share = (rank - below) / (count - below) if count > below else 1.0
            return f"{1000 * (lower + (le - lower) * share):.0f} ms"
        lower, below = le, count
    return "n/a"

print()
print(f"steady window: {dt:.1f} s (after a warm-up), load average at the end {load}")
print(f"wrk (whole run): {wrk['rps']:.0f} req/s, p50 {wrk['p50_ms']} ms, p99 {wrk['p99_ms']} ms, "
      f"non-2xx {wrk['non2xx']}, socket errors {wrk['socket_errors']}")
print(f"events written: {events}")
print(f"API writes (2xx, service counter): {api:.0f} /s")
print(f"relay drain (orderflow_outbox_published_total): {drain:.0f} rows/s")
print(f"ratio drain/accepted: {drain / api:.2f}" if api else "ratio: n/a")
series = [pending(s[1]) for s in snaps if start <= s[0] <= end]
step = max(1, len(series) // 10)
print(f"unsent backlog (orderflow_outbox_pending) at start, every {step} s, end: "
      + " ".join(str(x) for x in series[::step]) + f" | {pending(b[1])}")
growth = (pending(b[1]) - pending(a[1])) / dt
print(f"backlog growth over the window: {growth:+.0f} rows/s")
print("commit-to-Kafka-ack delay (orderflow_outbox_commit_to_ack_seconds, window): "
      f"p50 {quantile(0.5)}, p99 {quantile(0.99)}, p99.9 {quantile(0.999)}")
rows, sent, p50, p99, p999, mx = (table.split("|") + [""] * 6)[:6]
print(f"write-to-record delay of the window's {rows} rows ({sent} sent; table sent_at - created_at): "
      f"p50 {p50} ms, p99 {p99} ms, p99.9 {p999} ms, max {mx} ms")
print(f"backlog left by the load drained {drained} s after it stopped")
PY
echo "end: $(date -u +%FT%TZ), $(uptime)"
