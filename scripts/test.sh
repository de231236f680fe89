#!/usr/bin/env bash
# The project's test command (README: `scripts/test.sh`; CI runs it through .ci/run).
#
#  1. lints, failing fast: shellcheck, cargo fmt --check, cargo clippy -D warnings
#  2. installs what is missing: Tansu 0.6.0 (cargo install, ~13 min, skipped when
#     present) and the Debian tools the tests call (docker-compose, ...)
#  3. starts the real services the integration tests use: PostgreSQL 15, a fresh
#     Tansu broker (SQLite engine, own data dir under .test-stack/) and the
#     project's schema registry on a fresh database
#  4. runs the whole suite (cargo nextest, or cargo test when nextest is missing)
#     with KAFKA_BROKERS, SCHEMA_REGISTRY_URL and DATABASE_URL exported
#  5. stops everything it started and exits with the suite's exit code
#
# Usage: scripts/test.sh [--no-lint] [ARGS...]
#   --no-lint  skip step 1 (quick local iterations; CI always lints)
#   ARGS       passed to `cargo nextest run` (or `cargo test`), e.g. a test filter
#
# Ports: Tansu takes the first free port from 29100 + (pid % 400), the registry
# from 28100 + (pid % 400): away from a dev stack (9092/8081), and two test runs
# started at the same moment do not race for one port.
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

# Debian tools the tests run, as COMMAND:PACKAGE, installed only when missing.
TEST_TOOLS=(
    "curl:curl"
    "docker-compose:docker-compose"
    "promtool:prometheus"
    "chromium:chromium"
)

LINT=1
SUITE_ARGS=()
for arg in "$@"; do
    case "$arg" in
        --no-lint) LINT=0 ;;
        *) SUITE_ARGS+=("$arg") ;;
    esac
done
if [ "${CI:-}" = "true" ]; then
    LINT=1
fi

log_init

STACK_DIR="$ROOT/.test-stack"
RUN_DIR="$STACK_DIR/run-$$"
LOG_DIR="$RUN_DIR/logs"
TANSU_DIR="$RUN_DIR/tansu"
TANSU_LOG="$LOG_DIR/tansu.log"
REGISTRY_LOG="$LOG_DIR/registry.log"
REGISTRY_DB="orderflow_registry_test_$$"

TANSU_PID=""
REGISTRY_PID=""
SUITE_PID=""
REGISTRY_DB_CREATED=0

# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    # Interrupted during a build or the suite: stop that first (they run in the
    # background so that a signal to this script is handled at once).
    if [ -n "$RUN_STEP_PID" ] && pid_running "$RUN_STEP_PID"; then
        warn "interrupted: stopping the running step"
        stop_pid "step" "$RUN_STEP_PID"
    fi
    if [ -n "$SUITE_PID" ] && pid_running "$SUITE_PID"; then
        warn "interrupted: stopping the test suite"
        stop_pid "test suite" "$SUITE_PID"
    fi
    if [ -n "$TANSU_PID$REGISTRY_PID" ] || [ "$REGISTRY_DB_CREATED" -eq 1 ] || [ "$PG_STARTED_HERE" -eq 1 ]; then
        step "stop the test services"
        [ -n "$REGISTRY_PID" ] && stop_pid registry "$REGISTRY_PID"
        [ -n "$TANSU_PID" ] && stop_pid tansu "$TANSU_PID"
        rm -rf "$TANSU_DIR"
        # Subshells: a failing drop must not end the cleanup early.
        [ "$REGISTRY_DB_CREATED" -eq 1 ] && (pg_drop_database "$REGISTRY_DB")
        if [ "$PG_STARTED_HERE" -eq 1 ]; then
            # The cluster is the machine's: stop it only when nobody else uses it.
            local clients
            clients="$( (pg_client_count) 2>/dev/null || echo "?")"
            if [ "$clients" = "0" ]; then
                pg_stop && info "stopped PostgreSQL (this run started it)"
            else
                info "PostgreSQL left running: this run started it but $clients other client(s) are connected"
            fi
        fi
        step_ok "logs kept in ${LOG_DIR#"$ROOT"/}"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Old runs whose script is gone: remove their leftovers (logs, data).
mkdir -p "$STACK_DIR"
for old in "$STACK_DIR"/run-*; do
    [ -d "$old" ] || continue
    pid_running "${old##*-}" || rm -rf "$old"
done
mkdir -p "$LOG_DIR" "$TANSU_DIR"

echo "orderflow test run: $(date -u '+%Y-%m-%dT%H:%M:%SZ'), CI=${CI:-false}, logs in ${LOG_DIR#"$ROOT"/}"

# 1. Lint first: a formatting slip should not cost a 13-minute broker build.
if [ "$LINT" -eq 1 ]; then
    step "shellcheck"
    ensure_command shellcheck shellcheck
    shopt -s nullglob
    shell_files=(scripts/*.sh scripts/lib/*.sh .ci/run)
    shopt -u nullglob
    shellcheck -x -S warning "${shell_files[@]}" || die "shellcheck found problems in the scripts above"
    step_ok "${#shell_files[@]} files"
    run_step "cargo fmt --check" cargo fmt --all --check
    run_step "cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
else
    info "lint skipped (--no-lint)"
fi

# 2. Tools.
step "install missing tools"
ensure_tansu
for tool in "${TEST_TOOLS[@]}"; do
    ensure_command "${tool%%:*}" "${tool#*:}"
done
step_ok

# 3. Services. The broker starts before the build so it has settled by the end.
step "PostgreSQL"
pg_start
pg_ensure_role
step_ok "$PG_HOST:$PG_PORT, role $PG_ROLE"

step "Tansu broker (fresh, SQLite engine)"
TANSU_PORT="$(find_free_port $((29100 + $$ % 400)))"
tansu_args "$TANSU_PORT"
(cd "$TANSU_DIR" && exec "${TANSU_ARGS[@]}" >"$TANSU_LOG" 2>&1 </dev/null) &
TANSU_PID=$!
wait_for_tcp "tansu" 127.0.0.1 "$TANSU_PORT" 30 "$TANSU_LOG" "$TANSU_PID"
# Tansu accepts connections a moment before its storage is ready.
sleep 1
pid_running "$TANSU_PID" || fail_service "tansu" "$TANSU_LOG" "exited right after it started listening"
step_ok "127.0.0.1:$TANSU_PORT, pid $TANSU_PID"

run_step "cargo build --workspace --all-targets" cargo build --workspace --all-targets --locked

step "schema registry (fresh database $REGISTRY_DB)"
pg_recreate_database "$REGISTRY_DB"
REGISTRY_DB_CREATED=1
REGISTRY_PORT="$(find_free_port $((28100 + $$ % 400)))"
[ -x target/debug/orderflow ] || die "target/debug/orderflow was not built"
target/debug/orderflow registry serve \
    --listen "127.0.0.1:$REGISTRY_PORT" \
    --database-url "$(pg_url "$REGISTRY_DB")" \
    >"$REGISTRY_LOG" 2>&1 </dev/null &
REGISTRY_PID=$!
wait_for_http "schema registry" "http://127.0.0.1:$REGISTRY_PORT/subjects" 60 "$REGISTRY_LOG" "$REGISTRY_PID"
step_ok "http://127.0.0.1:$REGISTRY_PORT, pid $REGISTRY_PID"

export KAFKA_BROKERS="127.0.0.1:$TANSU_PORT"
export SCHEMA_REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT"
# Admin URL: tests create (and name) their own databases through it.
DATABASE_URL="$(pg_url postgres)"
export DATABASE_URL
TANSU_BIN="$(command -v tansu)"
export TANSU_BIN

# 4. The suite.
if cargo nextest --version >/dev/null 2>&1; then
    profile="default"
    [ "${CI:-}" = "true" ] && profile="ci"
    suite=(cargo nextest run --workspace --no-fail-fast --locked --profile "$profile")
else
    warn "cargo-nextest not found: falling back to cargo test"
    suite=(cargo test --workspace --no-fail-fast --locked)
fi
step "test suite: ${suite[*]} ${SUITE_ARGS[*]:-}"
info "KAFKA_BROKERS=$KAFKA_BROKERS SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL DATABASE_URL=${DATABASE_URL/:$PG_PASSWORD@/:***@}"
suite_rc=0
"${suite[@]}" "${SUITE_ARGS[@]}" </dev/null &
SUITE_PID=$!
wait "$SUITE_PID" || suite_rc=$?
SUITE_PID=""

for service in "tansu:$TANSU_PID:$TANSU_LOG" "schema registry:$REGISTRY_PID:$REGISTRY_LOG"; do
    IFS=: read -r name pid logfile <<<"$service"
    pid_running "$pid" || warn "$name (pid $pid) is no longer running after the suite; its log: $logfile"
done
if [ "$suite_rc" -eq 0 ]; then
    step_ok "all tests passed"
else
    fail_line "test suite exited with code $suite_rc; service logs in $LOG_DIR"
fi
exit "$suite_rc"
