#!/usr/bin/env bash
# Chaos runs: order events through a 3-broker cluster (RF 3, min.insync.replicas=2) into
# the consumer's projection while faults are injected, each run checked by the
# independent verifier (`orderflow verify`). Per scenario: a fresh topic (12 partitions)
# and DLQ, database and group; two workloads at once: `order-producer generate` (--events,
# 1% duplicates, 0.5% poison) and orders placed, paid, shipped or cancelled through the
# HTTP order service (`order-producer serve`, its outbox relay publishing to the same
# topic; events / 100 orders, each write retried with its Idempotency-Key until a 2xx,
# scripts/lib/chaos_http.py); the consumer workers apply both while the fault is
# injected; then it waits until the group has committed the log end (at most
# --drain-timeout seconds), stops the workers and runs the verifier, which also checks
# that every change the API acknowledged is in the topic exactly once. Prints a table;
# exits 1 on any violation.
#
# Usage: scripts/chaos.sh [--events N] [--scenarios a,b,c,d,e,f] [--group-protocol classic|consumer]
#                         [--workers N] [--rate R] [--cluster-dir D] [--drain-timeout S]
#                         [--bin-dir D]
#   a  kill -9 a random consumer worker every 5 s and start a new one (30 s)
#   b  kill -9 the leader of the busiest partition, restart it 20 s later; three times
#   c  stop PostgreSQL (pg_ctl stop -m fast) for 15 s, twice
#   d  scale the workers 1 -> 4 -> 1 while producing
#   e  kill -9 the order service (API and relay) and restart it 3 s later; twice
#   f  a, b, c, d and e at once
#   --rate         records per second of the producer [default: events / 40, at least 250]
#   --cluster-dir  use the running cluster of `scripts/kafka-cluster.sh --dir D` instead
#                  of starting one (scenario b kills and restarts its nodes)
#   --bin-dir      take orderflow, order-producer and order-consumer from D as they are
#                  [default: build them into target/release]
# PostgreSQL: a private cluster (initdb) on a free port under .scratch/, which scenario c
# stops and starts; the machine's shared PostgreSQL is never touched. The registry:
# SCHEMA_REGISTRY_URL when set, else a private Apicurio (scripts/apicurio.sh) storing in
# the private PostgreSQL (then scenario c stops the registry's storage too).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/log.sh
source "$ROOT/scripts/lib/log.sh"
# shellcheck source=scripts/lib/install.sh
source "$ROOT/scripts/lib/install.sh"
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

EVENTS=100000 SCENARIOS="a,b,c" PROTOCOL="classic" WORKERS=2 RATE="" CLUSTER_DIR=""
DRAIN_TIMEOUT=300 BIN=""
while [ $# -gt 0 ]; do
    case "$1" in
        --events) EVENTS="${2:-}"; shift 2 ;;
        --scenarios) SCENARIOS="${2:-}"; shift 2 ;;
        --group-protocol) PROTOCOL="${2:-}"; shift 2 ;;
        --workers) WORKERS="${2:-}"; shift 2 ;;
        --rate) RATE="${2:-}"; shift 2 ;;
        --cluster-dir) CLUSTER_DIR="${2:-}"; shift 2 ;;
        --drain-timeout) DRAIN_TIMEOUT="${2:-}"; shift 2 ;;
        --bin-dir) BIN="${2:-}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
case "$PROTOCOL" in classic | consumer) ;; *) die "--group-protocol must be classic or consumer" ;; esac
[ -n "$RATE" ] || RATE=$((EVENTS / 40 > 250 ? EVENTS / 40 : 250))
log_init

WORK="$ROOT/.scratch/chaos-$(date -u +%Y%m%dT%H%M%S)-$$"
mkdir -p "$WORK"
BUILD=0
[ -n "$BIN" ] || { BIN="$ROOT/target/release"; BUILD=1; }
PYTHON="${PYTHON:-python3}"
PG_BIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)"
PG_DATA="$WORK/pg"
PG_PORT=""
APICURIO_PID=""
CLUSTER_STARTED=0
API_TOKEN="chaos:$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)"

kafka_py() { "$PYTHON" "$ROOT/scripts/lib/chaos_kafka.py" "$BOOTSTRAP" "$@"; }
cluster() { "$ROOT/scripts/kafka-cluster.sh" --dir "$CLUSTER_DIR" "$@"; }
pg_ctl_private() { runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" "$@"; }
pg_private_url() { printf 'postgres://orderflow:orderflow@127.0.0.1:%s/%s' "$PG_PORT" "$1"; }
pg_private_psql() { psql -X -q -At -v ON_ERROR_STOP=1 "$(pg_private_url postgres)" "$@"; }

cleanup() {
    local pid
    for pid in $(cat "${RUN:-/nonexistent}/workers.pids" 2>/dev/null) "${PRODUCER_PID:-}" \
        "${HTTP_PID:-}" "$(cat "${RUN:-/nonexistent}/service.pid" 2>/dev/null)"; do
        if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    if [ -n "$APICURIO_PID" ]; then stop_pid "apicurio" "$APICURIO_PID"; fi
    if [ -f "$PG_DATA/postmaster.pid" ]; then pg_stop_private || true; fi
    if [ "$CLUSTER_STARTED" = 1 ]; then cluster stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

build() {
    step "building release binaries"
    (cd "$ROOT" && cargo build --release --quiet -p orderflow-ops -p order-producer -p order-consumer --bins)
    step_ok
}

start_cluster() {
    if [ -n "$CLUSTER_DIR" ]; then
        [ -f "$CLUSTER_DIR/bootstrap" ] || die "$CLUSTER_DIR/bootstrap not found: is a cluster running there?"
    else
        CLUSTER_DIR="$WORK/kafka"
        CLUSTER_STARTED=1
        KAFKA_CLUSTER_BASE_PORT="${KAFKA_CLUSTER_BASE_PORT:-$((24000 + RANDOM % 5000))}" \
            cluster start
    fi
    BOOTSTRAP="$(cat "$CLUSTER_DIR/bootstrap")"
}

start_postgres() {
    [ -x "$PG_BIN/initdb" ] || die "initdb not found under /usr/lib/postgresql/*/bin"
    PG_PORT="$(find_free_port $((24000 + RANDOM % 5000)))"
    mkdir -p "$PG_DATA"
    chown postgres "$WORK" "$PG_DATA"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U orderflow --auth=trust >"$WORK/initdb.log" 2>&1 \
        || { print_log_tail "$WORK/initdb.log" 20; die "initdb failed"; }
    cat >>"$PG_DATA/postgresql.conf" <<EOF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DATA'
max_connections = 200
fsync = off
EOF
    pg_start_private
    info "private PostgreSQL on 127.0.0.1:$PG_PORT ($PG_DATA)"
}

pg_start_private() {
    pg_ctl_private -l "$PG_DATA/server.log" -w start >/dev/null
}

pg_stop_private() {
    pg_ctl_private -m fast -w stop >/dev/null
}

start_registry() {
    if [ -n "${SCHEMA_REGISTRY_URL:-}" ]; then
        REGISTRY="$SCHEMA_REGISTRY_URL"
        return 0
    fi
    pg_private_psql -c "CREATE DATABASE apicurio"
    local port
    port="$(find_free_port $((24000 + RANDOM % 5000)))"
    "$ROOT/scripts/apicurio.sh" run --port "$port" --database-url "$(pg_private_url apicurio)" \
        >"$WORK/apicurio.log" 2>&1 &
    APICURIO_PID=$!
    REGISTRY="http://127.0.0.1:$port/apis/ccompat/v7"
    wait_for_http "apicurio" "$REGISTRY/subjects" 180 "$WORK/apicurio.log" "$APICURIO_PID"
}

# The pids of the workers are kept in $RUN/workers.pids, one a line, so that faults
# running at once (scenario f, each in its own subshell) see each other's workers.
# start_worker: one more order-consumer in the background, logging to its own file.
start_worker() {
    local n log extra=()
    n="$(wc -l <"$RUN/workers.pids")"
    log="$RUN/worker-$((n + 1)).log"
    [ "$PROTOCOL" = classic ] && extra=(--session-timeout 10s)
    "$BIN/order-consumer" --brokers "$BOOTSTRAP" --schema-registry-url "$REGISTRY" \
        --topic "$TOPIC" --group "$GROUP" --database-url "$(pg_private_url "$DB")" \
        --group-protocol "$PROTOCOL" "${extra[@]}" --drain-timeout 5s \
        --dedup-retention forever --metrics-addr "" >"$log" 2>&1 &
    echo "$!" >>"$RUN/workers.pids"
    # Killing workers is the point: no "Killed" job notices from bash.
    disown "$!"
}

# live_workers: the pids still running, one a line.
live_workers() {
    local pid
    while read -r pid; do
        [ -n "$pid" ] && pid_running "$pid" && printf '%s\n' "$pid"
    done <"$RUN/workers.pids"
    return 0
}

# start_service: the order service (HTTP API and outbox relay) on $SERVICE_PORT, storing
# in the scenario's database beside the consumer's tables, publishing to $TOPIC; waits
# until the API answers. Its pid is kept in $RUN/service.pid.
start_service() {
    ORDERFLOW_API_TOKENS="$API_TOKEN" "$BIN/order-producer" serve \
        --listen "127.0.0.1:$SERVICE_PORT" --brokers "$BOOTSTRAP" \
        --schema-registry-url "$REGISTRY" --topic "$TOPIC" \
        --database-url "$(pg_private_url "$DB")" --rate-limit-per-second 0 \
        --metrics-addr "" >>"$RUN/service.log" 2>&1 &
    echo "$!" >"$RUN/service.pid"
    disown "$!"
    wait_for_http "order service" "http://127.0.0.1:$SERVICE_PORT/openapi.json" 120 \
        "$RUN/service.log" "$!"
}

# stop_these PID...: one SIGTERM each (a second one makes a worker exit without
# draining), up to 30 s for all to stop, then SIGKILL.
stop_these() {
    local pid deadline=$((SECONDS + 30))
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        while pid_running "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        if pid_running "$pid"; then
            warn "order-consumer $pid did not stop within 30 s of SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

stop_workers() {
    local pids
    mapfile -t pids < <(live_workers)
    stop_these "${pids[@]}"
    : >"$RUN/workers.pids"
}

fault_a() {
    local end=$((SECONDS + 30)) victims
    while [ "$SECONDS" -lt "$end" ]; do
        sleep 5
        mapfile -t victims < <(live_workers)
        if [ "${#victims[@]}" -gt 0 ]; then
            local victim="${victims[RANDOM % ${#victims[@]}]}"
            kill -KILL "$victim" 2>/dev/null || true
            echo "killed worker pid $victim" >>"$RUN/faults.log"
        fi
        start_worker
    done
}

fault_b() {
    local round leader
    for round in 1 2 3; do
        sleep 5
        leader="$(kafka_py busiest-leader "$TOPIC" "$GROUP")"
        case "$leader" in 1 | 2 | 3) ;; *) warn "no leader for the busiest partition ($leader)"; continue ;; esac
        cluster kill "$leader"
        echo "round $round: killed broker $leader" >>"$RUN/faults.log"
        sleep 20
        cluster start-node "$leader" >>"$RUN/faults.log" 2>&1
        echo "round $round: restarted broker $leader" >>"$RUN/faults.log"
    done
}

fault_c() {
    local round
    for round in 1 2; do
        sleep 5
        pg_stop_private
        echo "round $round: PostgreSQL stopped" >>"$RUN/faults.log"
        sleep 15
        pg_start_private
        echo "round $round: PostgreSQL started" >>"$RUN/faults.log"
    done
}

fault_d() {
    local extra
    sleep 10
    for _ in 1 2 3; do start_worker; done
    echo "scaled to 4 workers" >>"$RUN/faults.log"
    sleep 15
    mapfile -t extra < <(live_workers | tail -n +2)
    stop_these "${extra[@]}"
    echo "scaled to 1 worker" >>"$RUN/faults.log"
}

fault_e() {
    local round pid
    for round in 1 2; do
        sleep 10
        pid="$(cat "$RUN/service.pid")"
        kill -KILL "$pid" 2>/dev/null || true
        echo "round $round: killed the order service (pid $pid)" >>"$RUN/faults.log"
        sleep 3
        start_service
        echo "round $round: order service restarted (pid $(cat "$RUN/service.pid"))" >>"$RUN/faults.log"
    done
}

# fault_f: every fault at once, each in its own subshell; fails when one of them does.
fault_f() {
    local fault pids=() failed=0
    for fault in a b c d e; do
        "fault_$fault" &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
    return "$failed"
}

# wait_for_zero WHAT COMMAND...: until COMMAND prints 0, at most DRAIN_TIMEOUT s; WHAT
# names the figure in the warning when it does not get there.
wait_for_zero() {
    local what="$1" deadline=$((SECONDS + DRAIN_TIMEOUT)) value
    shift
    while :; do
        value="$("$@" 2>>"$RUN/drain.log" || echo "?")"
        [ "$value" = 0 ] && return 0
        if [ "$SECONDS" -ge "$deadline" ]; then
            warn "$what still $value after $DRAIN_TIMEOUT s"
            return 1
        fi
        sleep 1
    done
}

# unsent_outbox_rows: how many outbox rows the relay has not sent yet.
unsent_outbox_rows() {
    psql -X -q -At "$(pg_private_url "$DB")" \
        -c "SELECT count(*) FROM order_service.outbox WHERE sent_at IS NULL"
}

ROWS=()
FAILED=0

run_scenario() {
    local scenario="$1" suffix
    suffix="$(date +%s)-$RANDOM"
    RUN="$WORK/$scenario"
    mkdir -p "$RUN"
    TOPIC="chaos-$scenario-$suffix"
    GROUP="chaos-$scenario-$suffix"
    DB="chaos_${scenario}_${suffix//-/_}"
    : >"$RUN/workers.pids"
    step "scenario $scenario ($PROTOCOL): topic $TOPIC"
    kafka_py create "$TOPIC" 12
    pg_private_psql -c "CREATE DATABASE \"$DB\""
    local workers="$WORKERS"
    case "$scenario" in d | f) workers=1 ;; esac
    for _ in $(seq "$workers"); do start_worker; done
    SERVICE_PORT="$(find_free_port $((24000 + RANDOM % 5000)))"
    start_service

    "$BIN/order-producer" generate --brokers "$BOOTSTRAP" --schema-registry-url "$REGISTRY" \
        --topic "$TOPIC" --count "$EVENTS" --rate "$RATE" --duplicate-ratio 0.01 \
        --poison-ratio 0.005 --metrics-addr "" --flush-timeout 120s \
        >"$RUN/producer.json" 2>"$RUN/producer.log" &
    PRODUCER_PID=$!
    local orders=$((EVENTS / 100)) order_rate
    order_rate="$(awk -v n="$orders" -v t="$((EVENTS / RATE))" 'BEGIN { r = n / (t > 0 ? t : 1); print (r < 1 ? 1 : r) }')"
    "$PYTHON" "$ROOT/scripts/lib/chaos_http.py" "http://127.0.0.1:$SERVICE_PORT" \
        "${API_TOKEN#*:}" "$orders" "$order_rate" "$RUN/http.jsonl" \
        >"$RUN/http.json" 2>"$RUN/http.log" &
    HTTP_PID=$!
    local faulted=0
    "fault_$scenario" || faulted=$?
    local produced=0 placed=0
    wait "$PRODUCER_PID" || produced=$?
    PRODUCER_PID=""
    [ "$produced" = 0 ] || warn "order-producer exited $produced (see $RUN/producer.log)"
    wait "$HTTP_PID" || placed=$?
    HTTP_PID=""
    [ "$placed" = 0 ] || warn "the HTTP workload exited $placed (see $RUN/http.log)"
    [ "$faulted" = 0 ] || warn "the fault script of $scenario exited $faulted (see $RUN/faults.log)"

    local started=$SECONDS drained=1 drain
    # The relay has sent every outbox row, then the group committed the log end.
    wait_for_zero "unsent outbox rows" unsent_outbox_rows || drained=0
    wait_for_zero "lag" kafka_py lag "$TOPIC" "$GROUP" || drained=0
    drain=$((SECONDS - started))
    local rebalances
    rebalances="$(cat "$RUN"/worker-*.log | grep -c "partitions assigned" || true)"
    stop_workers
    stop_these "$(cat "$RUN/service.pid")"

    local verified=0
    "$BIN/orderflow" verify --brokers "$BOOTSTRAP" --schema-registry-url "$REGISTRY" \
        --topic "$TOPIC" --group "$GROUP" --database-url "$(pg_private_url "$DB")" \
        --http-log "$RUN/http.jsonl" >"$RUN/verify.json" 2>"$RUN/verify.log" || verified=$?
    if [ "$verified" != 0 ] || [ "$drained" = 0 ] || [ "$produced" != 0 ] || [ "$placed" != 0 ] \
        || [ "$faulted" != 0 ]; then
        FAILED=1
        fail_line "scenario $scenario: produced exit $produced, HTTP workload exit $placed, faults exit $faulted, drained $drained, verify exit $verified (logs in $RUN)"
        print_log_tail "$RUN/verify.log" 20
    else
        step_ok
    fi
    # Records in batches the workers retried after a database failure (their logs outlive
    # kill -9, their metrics do not).
    local db_retries
    db_retries="$(cat "$RUN"/worker-*.log | sed -n 's/.*batch will be retried records=\([0-9]*\).*/\1/p' \
        | awk '{ n += $1 } END { print n + 0 }')"
    ROWS+=("$("$PYTHON" - "$scenario" "$RUN/verify.json" "$drain" "$rebalances" "$drained" "$verified" \
        "$db_retries" "$RUN/http.json" <<'EOF'
import json, sys
scenario, path, drain, rebalances, drained, verified, db_retries, http_path = sys.argv[1:]
try:
    s = json.load(open(path))
except (OSError, ValueError):
    print(f"{scenario:<9} verifier failed (exit {verified})")
    sys.exit()
try:
    http_retries = json.load(open(http_path))["retries"]
except (OSError, ValueError, KeyError):
    http_retries = "?"
print(f"{scenario:<9} {s['events']:>8} {s['distinct']:>8} {s['lost']:>5} {s['applied_twice']:>13} "
      f"{s['dlq_expected']:>6}/{s['dlq_actual']:<6} {s['dlq_duplicates']:>8} "
      f"{s['http_acknowledged']:>6}/{s['http_missing']}/{s['http_changed_twice']}/{s['http_record_copies']:<4} "
      f"{drain + ('s' if drained == '1' else 's!'):>7} {rebalances:>11} "
      f"{db_retries:>7}/{http_retries:<5} {'ok' if verified == '0' else 'VIOLATION'}")
EOF
)")
}

main() {
    if [ "$BUILD" = 1 ]; then
        build
    fi
    for binary in orderflow order-producer order-consumer; do
        [ -x "$BIN/$binary" ] || die "$BIN/$binary missing: build with cargo build --release"
    done
    start_cluster
    start_postgres
    start_registry
    info "cluster $BOOTSTRAP, registry $REGISTRY, $EVENTS events at $RATE/s, $WORKERS workers, protocol $PROTOCOL"
    local scenario
    for scenario in ${SCENARIOS//,/ }; do
        case "$scenario" in a | b | c | d | e | f) run_scenario "$scenario" ;; *) die "unknown scenario $scenario" ;; esac
    done
    printf '\n%-9s %8s %8s %5s %13s %13s %8s %-16s %7s %11s %13s %s\n' scenario events distinct lost applied_twice \
        "dlq exp/act" dlq_dups "http ack/mis/2x/cp" drain assignments "retries db/http" verdict
    printf '%s\n' "${ROWS[@]}"
    printf '(events: valid records incl. duplicates; http: changes the order API acknowledged /\n'
    printf ' missing from the topic / in it as two events / records the relay sent again;\n'
    printf ' drain: from the workloads'"'"' end to lag 0; assignments: "partitions assigned" log\n'
    printf ' lines over all workers; retries: records the workers retried after a database\n'
    printf ' failure / HTTP requests the client sent again; logs in %s)\n' "$WORK"
    return "$FAILED"
}

main
