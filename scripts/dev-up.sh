#!/usr/bin/env bash
# Runs the orderflow pipeline on this machine without Docker (README: the run command),
# as `docker compose up` does:
#
#   PostgreSQL 15 (the machine's cluster)  127.0.0.1:5432  databases orderflow_registry,
#                                                          orderflow_consumer, orderflow_producer,
#                                                          orderflow_scratch (another group's),
#                                          each with its own roles (deploy/postgres/service-roles.sql:
#                                          the services migrate as the owner, run as a role
#                                          that cannot change tables; docs/security.md)
#   Apache Kafka (KRaft, one node)         127.0.0.1:9092  data in .dev/kafka   (DEV_KAFKA_PORT)
#   Apicurio Registry (PostgreSQL storage) 127.0.0.1:8081  /apis/ccompat/v7     (DEV_REGISTRY_PORT)
#   Jaeger v2 (in-memory traces)           127.0.0.1:16686 query API, OTLP/HTTP in on :4318
#                                          (DEV_JAEGER_UI_PORT, DEV_JAEGER_OTLP_PORT)
#
# then builds the release binaries, applies topics.yaml, registers the order schemas
# (v1, then v2) and starts the pipeline:
#
#   order service (HTTP API + outbox relay)  http://127.0.0.1:8080   metrics :9101
#   two consumer workers, group orders-projector                      metrics :9102, :9103
#   lag exporter and dashboard               http://127.0.0.1:9300/
#   a gentle stream of generated orders (10 events/s, 1% duplicates, 0.5% poison)
#
# Installs what a fresh machine lacks (OpenSSL headers and pkg-config for the build, Java,
# Maven, the Kafka runtime and Apicurio from Maven Central, PostgreSQL, and Jaeger, built
# once with Go into ~/.cache/orderflow: several minutes the first time). Idempotent: a
# second run reuses what is already up (pid files + health checks). All state lives in
# .dev/ (git-ignored); logs in .dev/logs/.
# Stop with scripts/dev-down.sh (--purge also deletes the data).
#
# Usage: scripts/dev-up.sh [--infra-only] [--no-tracing]
#   --infra-only  start PostgreSQL, Kafka, the registry and Jaeger (topics and schemas
#                 too), not the pipeline's processes
#   --no-tracing  no Jaeger, and the pipeline exports no traces (also DEV_TRACING=0)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
# shellcheck source=scripts/lib/dev_stack.sh
source scripts/lib/dev_stack.sh

INFRA_ONLY=0
DEV_TRACING="${DEV_TRACING:-1}"
for arg in "$@"; do
    case "$arg" in
        --infra-only) INFRA_ONLY=1 ;;
        --no-tracing) DEV_TRACING=0 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$arg' (see --help)" ;;
    esac
done

log_init
mkdir -p "$DEV_DIR" "$DEV_PID_DIR" "$DEV_LOG_DIR" "$DEV_KAFKA_DIR"
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

# running NAME WORD: true (and prints the pid) when NAME's pid file names a live
# process whose command line contains WORD; removes a stale pid file.
running() {
    local pidfile pid
    pidfile="$(dev_pid_file "$1")"
    pid="$(read_pid_file "$pidfile")"
    if pid_matches "$pid" "$2"; then
        printf '%s\n' "$pid"
        return 0
    fi
    rm -f "$pidfile"
    return 1
}

# start NAME CMD...: starts CMD detached with its pid file and log under .dev/.
start() {
    local name="$1"
    shift
    start_detached "$(dev_pid_file "$name")" "$(dev_log_file "$name")" "$ROOT" "$@"
}

# need_free_port PORT VAR: fails when something dev-up did not start listens on PORT.
need_free_port() {
    if port_is_open 127.0.0.1 "$1"; then
        die "127.0.0.1:$1 is taken by a process dev-up did not start: stop it, or set $2"
    fi
}

step "install missing tools"
ensure_build_dependencies
ensure_command curl curl
ensure_command pg_ctlcluster postgresql-15
kafka_classpath
apicurio_ensure
ensure_python_confluent_kafka
[ "$DEV_TRACING" -eq 0 ] || jaeger_ensure_binary
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
pg_ensure_service_roles orderflow_producer orderflow_consumer orderflow_registry
# The scratch database (a second group's) belongs to the consumer's roles as well.
pg_ensure_service_roles orderflow_producer orderflow_scratch ""
step_ok "$PG_HOST:$PG_PORT, databases ${DEV_DATABASES[*]}, each with its service's roles"

step "Apache Kafka on 127.0.0.1:$DEV_KAFKA_PORT"
if kafka_pid="$(running kafka kafka.Kafka)"; then
    kafka_wait_ready "kafka" "127.0.0.1:$DEV_KAFKA_PORT" 1 60 "$(dev_log_file kafka)" "$kafka_pid"
    step_ok "already running (pid $kafka_pid), reused"
else
    need_free_port "$DEV_KAFKA_PORT" DEV_KAFKA_PORT
    need_free_port "$DEV_KAFKA_CONTROLLER_PORT" DEV_KAFKA_CONTROLLER_PORT
    kafka_write_config "$DEV_KAFKA_DIR/server.properties" 1 "$DEV_KAFKA_PORT" "$DEV_KAFKA_CONTROLLER_PORT" \
        "1@127.0.0.1:$DEV_KAFKA_CONTROLLER_PORT" "$DEV_KAFKA_DIR/data" 1
    # The cluster id is kept so the durable data dir formats once and restarts as is.
    [ -s "$DEV_KAFKA_DIR/cluster-id" ] || kafka_random_cluster_id >"$DEV_KAFKA_DIR/cluster-id"
    kafka_format "$DEV_KAFKA_DIR/server.properties" "$(cat "$DEV_KAFKA_DIR/cluster-id")"
    kafka_jvm_args 1g
    kafka_pid="$(start kafka "${KAFKA_JVM_ARGS[@]}" "$DEV_KAFKA_DIR/server.properties")"
    kafka_wait_ready "kafka" "127.0.0.1:$DEV_KAFKA_PORT" 1 120 "$(dev_log_file kafka)" "$kafka_pid"
    step_ok "started (pid $kafka_pid, data ${DEV_KAFKA_DIR#"$ROOT"/})"
fi

step "Apicurio Registry on 127.0.0.1:$DEV_REGISTRY_PORT"
if registry_pid="$(running registry quarkus-run.jar)"; then
    apicurio_wait_ready "schema registry" "$DEV_REGISTRY_BASE" 60 "$(dev_log_file registry)" "$registry_pid"
    step_ok "already running (pid $registry_pid), reused"
else
    need_free_port "$DEV_REGISTRY_PORT" DEV_REGISTRY_PORT
    apicurio_args "$DEV_REGISTRY_PORT" "$(pg_role_url "$PG_REGISTRY_OWNER" orderflow_registry)"
    registry_pid="$(start registry "${APICURIO_ARGS[@]}")"
    apicurio_wait_ready "schema registry" "$DEV_REGISTRY_BASE" 120 "$(dev_log_file registry)" "$registry_pid"
    step_ok "started (pid $registry_pid)"
fi
apicurio_set_backward "$DEV_REGISTRY_BASE"

if [ "$DEV_TRACING" -eq 1 ]; then
    step "Jaeger on 127.0.0.1:$DEV_JAEGER_UI_PORT (OTLP/HTTP in on :$DEV_JAEGER_OTLP_PORT)"
    if jaeger_pid="$(running jaeger jaeger)"; then
        step_ok "already running (pid $jaeger_pid), reused"
    else
        jaeger_ports=("$DEV_JAEGER_OTLP_PORT" "$DEV_JAEGER_UI_PORT")
        for port in "${jaeger_ports[@]}"; do
            need_free_port "$port" "DEV_JAEGER_OTLP_PORT or DEV_JAEGER_UI_PORT"
        done
        # OTLP gRPC, query gRPC, health and Jaeger's own metrics: whatever is free.
        grpc="$(find_free_port 14317)"
        qgrpc="$(find_free_port $((grpc + 1)))"
        health="$(find_free_port $((qgrpc + 1)))"
        metrics="$(find_free_port $((health + 1)))"
        jaeger_write_config "$DEV_JAEGER_DIR/jaeger.yaml" "$grpc" "$DEV_JAEGER_OTLP_PORT" \
            "$DEV_JAEGER_UI_PORT" "$qgrpc" "$health" "$metrics"
        jaeger_pid="$(start jaeger "$JAEGER_BIN" --config "$DEV_JAEGER_DIR/jaeger.yaml")"
        wait_for_http "jaeger" "http://127.0.0.1:$DEV_JAEGER_UI_PORT/api/services" 60 \
            "$(dev_log_file jaeger)" "$jaeger_pid"
        step_ok "started (pid $jaeger_pid)"
    fi
    # Every pipeline process started below exports its spans there.
    export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$DEV_JAEGER_OTLP_PORT"
else
    unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
fi

run_step "dashboard assets (npm)" scripts/build-dashboard.sh
run_step "cargo build --release" cargo build --release --locked

ORDERFLOW="$ROOT/target/release/orderflow"
PRODUCER="$ROOT/target/release/order-producer"
CONSUMER="$ROOT/target/release/order-consumer"
for binary in "$ORDERFLOW" "$PRODUCER" "$CONSUMER"; do
    [ -x "$binary" ] || die "$binary was not built"
done

export KAFKA_BROKERS="127.0.0.1:$DEV_KAFKA_PORT"
export SCHEMA_REGISTRY_URL="$DEV_REGISTRY_URL"

[ -f topics.yaml ] || die "topics.yaml not found in $ROOT"
run_step "orderflow topics apply --file topics.yaml" "$ORDERFLOW" topics apply --file topics.yaml

step "register schemas (subject orders-value: v1, then v2)"
for version in v1 v2; do
    schema="schemas/avro/order_event.$version.avsc"
    [ -f "$schema" ] || die "$schema not found"
    "$ORDERFLOW" registry register --schema-registry-url "$SCHEMA_REGISTRY_URL" --subject orders-value --schema "$schema" >/dev/null \
        || die "registering $schema under orders-value failed"
done
step_ok

write_dev_env_file

if [ "$INFRA_ONLY" -eq 0 ]; then
    step "pipeline processes"
    if pid="$(running order-service order-producer)"; then
        info "order service already running (pid $pid)"
    else
        need_free_port "${DEV_ORDER_API##*:}" DEV_ORDER_API
        pid="$(start order-service env OTEL_SERVICE_NAME=order-service "$PRODUCER" serve --listen "$DEV_ORDER_API" \
            --database-url "$(pg_role_url "$PG_ORDER_APP" orderflow_producer)" \
            --database-migration-url "$(pg_role_url "$PG_ORDER_OWNER" orderflow_producer)" \
            --metrics-addr 127.0.0.1:9101)"
        wait_for_http "order service" "http://$DEV_ORDER_API/healthz" 60 "$(dev_log_file order-service)" "$pid"
        info "order service started (pid $pid): http://$DEV_ORDER_API"
    fi
    for n in 1 2; do
        if pid="$(running "consumer-$n" order-consumer)"; then
            info "consumer worker $n already running (pid $pid)"
        else
            pid="$(start "consumer-$n" "$CONSUMER" --group "$DEV_GROUP" \
                --database-url "$(pg_role_url "$PG_CONSUMER_APP" orderflow_consumer)" \
                --database-migration-url "$(pg_role_url "$PG_CONSUMER_OWNER" orderflow_consumer)" \
                --metrics-addr "127.0.0.1:910$((n + 1))")"
            wait_for_http "consumer worker $n" "http://127.0.0.1:910$((n + 1))/healthz" 60 "$(dev_log_file "consumer-$n")" "$pid"
            info "consumer worker $n started (pid $pid)"
        fi
    done
    if pid="$(running lag orderflow)"; then
        info "lag exporter already running (pid $pid)"
    else
        need_free_port "${DEV_LAG_LISTEN##*:}" DEV_LAG_LISTEN
        pid="$(start lag "$ORDERFLOW" lag serve --listen "$DEV_LAG_LISTEN")"
        wait_for_http "lag exporter" "http://$DEV_LAG_LISTEN/healthz" 60 "$(dev_log_file lag)" "$pid"
        info "lag exporter started (pid $pid)"
    fi
    if pid="$(running generator order-producer)"; then
        info "order stream already running (pid $pid)"
    else
        pid="$(start generator env OTEL_SERVICE_NAME=order-generator "$PRODUCER" generate --count 100000000 --rate 10 --orders 500 \
            --duplicate-ratio 0.01 --poison-ratio 0.005 --metrics-addr 127.0.0.1:9104)"
        info "order stream started (pid $pid): 10 events/s"
    fi
    step_ok
fi

echo
echo "orderflow is up ($SECONDS s)."
if [ "$INFRA_ONLY" -eq 0 ]; then
    echo "  dashboard:     http://$DEV_LAG_LISTEN/"
    echo "  order API:     curl -s -XPOST http://$DEV_ORDER_API/orders -H 'Content-Type: application/json' -d @order.json"
fi
if [ "$DEV_TRACING" -eq 1 ]; then
    echo "  traces:        http://127.0.0.1:$DEV_JAEGER_UI_PORT/api/traces   (Jaeger query API; README: follow an order)"
fi
echo "  Kafka:         127.0.0.1:$DEV_KAFKA_PORT      registry: $DEV_REGISTRY_URL"
echo "  environment:   source .dev/env.sh   (then: orderflow lag, order-consumer --help, ...)"
echo "  logs:          ${DEV_LOG_DIR#"$ROOT"/}/"
echo "  stop:          scripts/dev-down.sh   (--purge also deletes the data)"
