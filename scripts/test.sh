#!/usr/bin/env bash
# The project's test command (README: `scripts/test.sh`; CI runs it through .ci/run).
#
#  1. lints, failing fast: shellcheck, cargo fmt --check, cargo clippy -D warnings
#  2. installs what is missing (skipped when present): the build's OpenSSL headers and
#     pkg-config (libssl-dev, for rdkafka's TLS), the Kafka runtime and Apicurio
#     from Maven Central (scripts/runtime/pom.xml, cached in ~/.m2 and ~/.cache/orderflow),
#     Python's confluent-kafka (the independent client), and the Debian tools the tests call
#  3. starts the real services the integration tests use, all fresh and on free ports:
#     PostgreSQL 15 (the machine's cluster), one Apache Kafka broker, a 3-broker Kafka
#     cluster (RF 3, min.insync.replicas 2) for failover tests, and Apicurio Registry on a
#     new PostgreSQL database
#  4. runs the whole suite (cargo nextest when installed, else cargo test) with
#     KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL, KAFKA_CLUSTER_BROKERS and
#     KAFKA_CLUSTER_DIR exported
#  5. the chaos suite's short variant on the 3-broker cluster, once the suite no longer
#     uses it: `scripts/chaos.sh --events 10000 --scenarios a,b,c` with the debug
#     binaries (workers killed, brokers killed, PostgreSQL stopped; checked by
#     `orderflow verify`); only on a whole run (no ARGS), about 4 minutes
#  6. stops everything it started, deletes its broker data, and exits non-zero when the
#     suite or the chaos run failed
#
# Usage: scripts/test.sh [--no-lint] [ARGS...]
#   --no-lint  skip step 1 (quick local iterations; CI always lints)
#   ARGS       passed to `cargo nextest run` (or `cargo test`), e.g. a test filter; a
#              filtered run skips step 5
#
# Ports: the broker takes the first free port from 29100 + (pid % 400), the cluster
# from 27100 + (pid % 300), the registry from 28100 + (pid % 400): away from a dev
# stack (9092/8081), and two runs started at the same moment do not race for a port.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"

# Debian tools the tests run, as COMMAND:PACKAGE, installed only when missing.
TEST_TOOLS=(
    "curl:curl"
    "pg_ctlcluster:postgresql-15"
    "docker-compose:docker-compose"
    "promtool:prometheus"
    "chromium:chromium"
    "openssl:openssl"
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
KAFKA_DIR="$RUN_DIR/kafka"
KAFKA_LOG="$LOG_DIR/kafka.log"
CLUSTER_DIR="$RUN_DIR/cluster"
REGISTRY_LOG="$LOG_DIR/registry.log"
REGISTRY_DB="orderflow_registry_test_$$"

KAFKA_PID=""
CLUSTER_STARTED=0
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
    if [ -n "$KAFKA_PID$REGISTRY_PID" ] || [ "$CLUSTER_STARTED" -eq 1 ] || [ "$REGISTRY_DB_CREATED" -eq 1 ] || [ "$PG_STARTED_HERE" -eq 1 ]; then
        step "stop the test services"
        [ -n "$REGISTRY_PID" ] && stop_pid registry "$REGISTRY_PID"
        [ -n "$KAFKA_PID" ] && stop_pid kafka "$KAFKA_PID"
        [ "$CLUSTER_STARTED" -eq 1 ] && scripts/kafka-cluster.sh --dir "$CLUSTER_DIR" stop
        # Keep the brokers' logs beside the others; drop their data.
        for f in "$CLUSTER_DIR"/node*/broker.log; do
            [ -f "$f" ] && cp "$f" "$LOG_DIR/cluster-$(basename "$(dirname "$f")").log"
        done
        rm -rf "$KAFKA_DIR" "$CLUSTER_DIR"
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
mkdir -p "$LOG_DIR" "$KAFKA_DIR"

echo "orderflow test run: $(date -u '+%Y-%m-%dT%H:%M:%SZ'), CI=${CI:-false}, logs in ${LOG_DIR#"$ROOT"/}"

# 1. Lint first: a formatting slip should not cost a build and a broker start.
if [ "$LINT" -eq 1 ]; then
    step "shellcheck"
    ensure_command shellcheck shellcheck
    shopt -s nullglob
    shell_files=(scripts/*.sh scripts/lib/*.sh .ci/run)
    shopt -u nullglob
    shellcheck -x -S warning "${shell_files[@]}" || die "shellcheck found problems in the scripts above"
    step_ok "${#shell_files[@]} files"
    run_step "cargo fmt --check" cargo fmt --all --check
    ensure_build_dependencies
    run_step "cargo clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
else
    info "lint skipped (--no-lint)"
fi

# 2. Tools and runtimes.
step "install missing tools"
ensure_build_dependencies
for tool in "${TEST_TOOLS[@]}"; do
    ensure_command "${tool%%:*}" "${tool#*:}"
done
kafka_classpath
apicurio_ensure
ensure_python_confluent_kafka
evolution_writer_build
# The tracing tests start their own Jaeger from this cached build (minutes the first time).
jaeger_ensure_binary
export JAEGER_BIN
step_ok "Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_RUNTIME_POM"), Apicurio $APICURIO_VERSION"

# 3. Services. They start before the build so they have settled by its end.
step "PostgreSQL"
pg_start
pg_ensure_role
step_ok "$PG_HOST:$PG_PORT, role $PG_ROLE"

step "Apache Kafka broker (fresh, single node)"
KAFKA_PORT="$(find_free_port $((29100 + $$ % 400)))"
KAFKA_CONTROLLER_PORT="$(find_free_port $((KAFKA_PORT + 1)))"
kafka_write_config "$KAFKA_DIR/server.properties" 1 "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" \
    "1@127.0.0.1:$KAFKA_CONTROLLER_PORT" "$KAFKA_DIR/data" 1 test
kafka_format "$KAFKA_DIR/server.properties" "$(kafka_random_cluster_id)"
kafka_jvm_args 1g
"${KAFKA_JVM_ARGS[@]}" "$KAFKA_DIR/server.properties" >"$KAFKA_LOG" 2>&1 </dev/null &
KAFKA_PID=$!
step_ok "starting on 127.0.0.1:$KAFKA_PORT, pid $KAFKA_PID"

step "Apache Kafka 3-broker cluster (fresh, RF 3, min.insync.replicas 2)"
CLUSTER_STARTED=1
scripts/kafka-cluster.sh --dir "$CLUSTER_DIR" start
step_ok "$(cat "$CLUSTER_DIR/bootstrap")"

step "Apicurio Registry (fresh database $REGISTRY_DB)"
pg_recreate_database "$REGISTRY_DB"
REGISTRY_DB_CREATED=1
REGISTRY_PORT="$(find_free_port $((28100 + $$ % 400)))"
apicurio_args "$REGISTRY_PORT" "$(pg_url "$REGISTRY_DB")"
"${APICURIO_ARGS[@]}" >"$REGISTRY_LOG" 2>&1 </dev/null &
REGISTRY_PID=$!
REGISTRY_BASE="http://127.0.0.1:$REGISTRY_PORT"
apicurio_wait_ready "schema registry" "$REGISTRY_BASE" 120 "$REGISTRY_LOG" "$REGISTRY_PID"
apicurio_set_backward "$REGISTRY_BASE"
step_ok "$REGISTRY_BASE$APICURIO_CCOMPAT_PATH, pid $REGISTRY_PID"

step "wait for the Kafka broker"
kafka_wait_ready "kafka" "127.0.0.1:$KAFKA_PORT" 1 120 "$KAFKA_LOG" "$KAFKA_PID"
step_ok "127.0.0.1:$KAFKA_PORT answers metadata requests"

run_step "dashboard assets (npm)" scripts/build-dashboard.sh
run_step "cargo build --workspace --all-targets" cargo build --workspace --all-targets --locked

export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export SCHEMA_REGISTRY_URL="$REGISTRY_BASE$APICURIO_CCOMPAT_PATH"
KAFKA_CLUSTER_BROKERS="$(cat "$CLUSTER_DIR/bootstrap")"
export KAFKA_CLUSTER_BROKERS
export KAFKA_CLUSTER_DIR="$CLUSTER_DIR"
# Admin URL: tests create (and name) their own databases through it.
DATABASE_URL="$(pg_url postgres)"
export DATABASE_URL

# 4. The suite.
if cargo nextest --version >/dev/null 2>&1; then
    profile="default"
    [ "${CI:-}" = "true" ] && profile="ci"
    suite=(cargo nextest run --workspace --no-fail-fast --locked --profile "$profile")
else
    info "cargo-nextest not installed: running cargo test"
    suite=(cargo test --workspace --no-fail-fast --locked)
fi
step "test suite: ${suite[*]} ${SUITE_ARGS[*]:-}"
info "KAFKA_BROKERS=$KAFKA_BROKERS KAFKA_CLUSTER_BROKERS=$KAFKA_CLUSTER_BROKERS SCHEMA_REGISTRY_URL=$SCHEMA_REGISTRY_URL DATABASE_URL=${DATABASE_URL/:$PG_PASSWORD@/:***@}"
suite_rc=0
"${suite[@]}" "${SUITE_ARGS[@]}" </dev/null &
SUITE_PID=$!
wait "$SUITE_PID" || suite_rc=$?
SUITE_PID=""

for service in "kafka:$KAFKA_PID:$KAFKA_LOG" "schema registry:$REGISTRY_PID:$REGISTRY_LOG"; do
    IFS=: read -r name pid logfile <<<"$service"
    pid_running "$pid" || warn "$name (pid $pid) is no longer running after the suite; its log: $logfile"
done
if [ "$suite_rc" -eq 0 ]; then
    step_ok "all tests passed"
else
    fail_line "test suite exited with code $suite_rc; service logs in $LOG_DIR"
fi

# 5. Chaos, short variant: scenario b kills the cluster's brokers, so it runs after the
# suite, which shares that cluster.
chaos_rc=0
if [ "${#SUITE_ARGS[@]}" -eq 0 ]; then
    step "chaos suite, short variant (10,000 events; scenarios a, b, c)"
    scripts/chaos.sh --events 10000 --scenarios a,b,c --cluster-dir "$CLUSTER_DIR" \
        --bin-dir "$ROOT/target/debug" </dev/null &
    SUITE_PID=$!
    wait "$SUITE_PID" || chaos_rc=$?
    SUITE_PID=""
    if [ "$chaos_rc" -eq 0 ]; then
        step_ok "0 lost, 0 applied twice, every poison record dead-lettered"
    else
        fail_line "scripts/chaos.sh exited with code $chaos_rc (its logs: .scratch/chaos-*)"
    fi
else
    info "chaos short variant skipped: a filtered run (${SUITE_ARGS[*]})"
fi
[ "$suite_rc" -eq 0 ] && suite_rc="$chaos_rc"
exit "$suite_rc"
