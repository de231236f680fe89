#!/usr/bin/env bash
# Runs the orderflow pipeline's development stack without Docker (README: the run command).
#
#   PostgreSQL 15 (the machine's cluster)   127.0.0.1:5432, databases orderflow_registry,
#                                           orderflow_consumer, orderflow_producer
#   Tansu broker (SQLite engine)            127.0.0.1:9092   (DEV_KAFKA_PORT to change)
#   schema registry (orderflow registry)    127.0.0.1:8081   (DEV_REGISTRY_PORT to change)
#
# then builds the release binaries, applies topics.yaml, registers the order
# schemas (v1 then v2) and sends a small batch of order events, and prints the
# environment to export. Idempotent: a second run reuses what is already up
# (pid files + health checks). All state lives in .dev/ (git-ignored); stop
# with scripts/dev-down.sh.
#
# Usage: scripts/dev-up.sh [--reseed] [--no-seed]
#   --reseed   send the batch of order events again (by default only the first run does)
#   --no-seed  do not send order events
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/log.sh
source scripts/lib/log.sh
# shellcheck source=scripts/lib/install.sh
source scripts/lib/install.sh
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/lib/services.sh
source scripts/lib/services.sh
# shellcheck source=scripts/lib/dev_stack.sh
source scripts/lib/dev_stack.sh

SEED="first"
for arg in "$@"; do
    case "$arg" in
        --reseed) SEED="always" ;;
        --no-seed) SEED="never" ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$arg' (see --help)" ;;
    esac
done

log_init
mkdir -p "$DEV_DIR" "$DEV_PID_DIR" "$DEV_LOG_DIR" "$DEV_TANSU_DIR"
# shellcheck disable=SC2317 # called through the EXIT trap
on_exit() {
    local rc=$?
    if [ -n "$RUN_STEP_PID" ] && pid_running "$RUN_STEP_PID"; then
        stop_pid "step" "$RUN_STEP_PID"
    fi
    if [ "$rc" -ne 0 ]; then
        fail_line "dev-up did not finish (exit $rc); what it started keeps running: scripts/dev-down.sh stops it"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "install missing tools"
ensure_tansu
ensure_command curl curl
step_ok

step "PostgreSQL"
pg_start
if [ "$PG_STARTED_HERE" -eq 1 ]; then
    # dev-down stops PostgreSQL only when dev-up was the one that started it.
    : >"$DEV_PG_MARKER"
fi
pg_ensure_role
for db in "${DEV_DATABASES[@]}"; do
    pg_ensure_database "$db"
done
step_ok "$PG_HOST:$PG_PORT, databases ${DEV_DATABASES[*]}"

step "Tansu broker on 127.0.0.1:$DEV_KAFKA_PORT"
tansu_pid="$(read_pid_file "$DEV_TANSU_PID")"
if pid_matches "$tansu_pid" tansu; then
    wait_for_tcp "tansu" 127.0.0.1 "$DEV_KAFKA_PORT" 30 "$DEV_TANSU_LOG" "$tansu_pid"
    step_ok "already running (pid $tansu_pid), reused"
else
    rm -f "$DEV_TANSU_PID"
    if port_is_open 127.0.0.1 "$DEV_KAFKA_PORT"; then
        die "127.0.0.1:$DEV_KAFKA_PORT is taken by a process dev-up did not start: stop it, or set DEV_KAFKA_PORT"
    fi
    tansu_args "$DEV_KAFKA_PORT"
    tansu_pid="$(start_detached "$DEV_TANSU_PID" "$DEV_TANSU_LOG" "$DEV_TANSU_DIR" "${TANSU_ARGS[@]}")"
    wait_for_tcp "tansu" 127.0.0.1 "$DEV_KAFKA_PORT" 30 "$DEV_TANSU_LOG" "$tansu_pid"
    # Tansu accepts connections a moment before its storage is ready.
    sleep 1
    pid_running "$tansu_pid" || fail_service "tansu" "$DEV_TANSU_LOG" "exited right after it started listening"
    step_ok "started (pid $tansu_pid, data ${DEV_TANSU_DIR#"$ROOT"/})"
fi

run_step "cargo build --release" cargo build --release

ORDERFLOW="$ROOT/target/release/orderflow"
PRODUCER="$ROOT/target/release/order-producer"
[ -x "$ORDERFLOW" ] || die "$ORDERFLOW was not built"

step "schema registry on 127.0.0.1:$DEV_REGISTRY_PORT"
registry_pid="$(read_pid_file "$DEV_REGISTRY_PID")"
if pid_matches "$registry_pid" orderflow; then
    wait_for_http "schema registry" "$DEV_REGISTRY_URL/subjects" 30 "$DEV_REGISTRY_LOG" "$registry_pid"
    step_ok "already running (pid $registry_pid), reused (scripts/dev-down.sh first to run a new build)"
else
    rm -f "$DEV_REGISTRY_PID"
    if port_is_open 127.0.0.1 "$DEV_REGISTRY_PORT"; then
        die "127.0.0.1:$DEV_REGISTRY_PORT is taken by a process dev-up did not start: stop it, or set DEV_REGISTRY_PORT"
    fi
    registry_pid="$(start_detached "$DEV_REGISTRY_PID" "$DEV_REGISTRY_LOG" "$ROOT" \
        "$ORDERFLOW" registry serve \
        --listen "127.0.0.1:$DEV_REGISTRY_PORT" \
        --database-url "$(pg_url orderflow_registry)")"
    wait_for_http "schema registry" "$DEV_REGISTRY_URL/subjects" 60 "$DEV_REGISTRY_LOG" "$registry_pid"
    step_ok "started (pid $registry_pid)"
fi

export KAFKA_BROKERS="127.0.0.1:$DEV_KAFKA_PORT"
export SCHEMA_REGISTRY_URL="$DEV_REGISTRY_URL"

[ -f topics.yaml ] || die "topics.yaml not found in $ROOT"
run_step "orderflow topics apply --file topics.yaml" "$ORDERFLOW" topics apply --file topics.yaml

step "register schemas (subject orders-value: v1, then v2)"
for version in v1 v2; do
    schema="schemas/avro/order_event.$version.avsc"
    [ -f "$schema" ] || die "$schema not found"
    "$ORDERFLOW" registry register --url "$SCHEMA_REGISTRY_URL" --subject orders-value --schema "$schema" \
        || die "registering $schema under orders-value failed"
done
step_ok

if [ "$SEED" = "always" ] || { [ "$SEED" = "first" ] && [ ! -f "$DEV_SEEDED_MARKER" ]; }; then
    step "send order events (order-producer generate --count 200 --orders 50)"
    [ -x "$PRODUCER" ] || die "$PRODUCER was not built"
    DATABASE_URL="$(pg_url orderflow_producer)" "$PRODUCER" generate --count 200 --orders 50 --metrics-addr "" \
        || die "order-producer generate failed"
    : >"$DEV_SEEDED_MARKER"
    step_ok
else
    info "order events not sent (already seeded: --reseed to send another batch)"
fi

write_dev_env_file
echo
echo "orderflow dev stack is up ($SECONDS s). Export this environment (or: source .dev/env.sh):"
echo
sed -n 's/^export /  export /p' "$DEV_ENV_FILE"
echo
echo "Logs: ${DEV_LOG_DIR#"$ROOT"/}/   Stop: scripts/dev-down.sh   (--purge also deletes data)"
