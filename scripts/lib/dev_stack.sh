# shellcheck shell=bash
# Where the development stack (scripts/dev-up.sh, scripts/dev-down.sh) keeps its
# state: everything under .dev/ in the repository (git-ignored).
# Needs ROOT set and postgres.sh sourced. Source it.
# shellcheck disable=SC2034 # the variables are read by the scripts that source this file

DEV_DIR="$ROOT/.dev"
DEV_PID_DIR="$DEV_DIR/pids"
DEV_LOG_DIR="$DEV_DIR/logs"
DEV_KAFKA_DIR="$DEV_DIR/kafka"
DEV_JAEGER_DIR="$DEV_DIR/jaeger"

DEV_KAFKA_PORT="${DEV_KAFKA_PORT:-9092}"
DEV_KAFKA_CONTROLLER_PORT="${DEV_KAFKA_CONTROLLER_PORT:-9093}"
DEV_REGISTRY_PORT="${DEV_REGISTRY_PORT:-8081}"
DEV_REGISTRY_BASE="http://127.0.0.1:$DEV_REGISTRY_PORT"
DEV_REGISTRY_URL="$DEV_REGISTRY_BASE/apis/ccompat/v7"
DEV_ORDER_API="${DEV_ORDER_API:-127.0.0.1:8080}"
DEV_LAG_LISTEN="${DEV_LAG_LISTEN:-127.0.0.1:9300}"
# Jaeger: OTLP/HTTP in (the pipeline exports there), the UI and query API out. Its other
# listeners (OTLP gRPC, query gRPC, health, its own metrics) take the ports after these.
DEV_JAEGER_OTLP_PORT="${DEV_JAEGER_OTLP_PORT:-4318}"
DEV_JAEGER_UI_PORT="${DEV_JAEGER_UI_PORT:-16686}"
DEV_GROUP="orders-projector"

# The processes dev-up starts, in start order; dev-down stops them in reverse.
# NAME:WORD (WORD must appear in the process's command line: guards against a
# recycled pid in a stale pid file).
DEV_SERVICES=(kafka:kafka.Kafka registry:quarkus-run.jar jaeger:jaeger order-service:order-producer
    consumer-1:order-consumer consumer-2:order-consumer lag:orderflow generator:order-producer)

# Present when dev-up started PostgreSQL (it was down): dev-down then stops it.
DEV_PG_MARKER="$DEV_DIR/postgres.started-by-dev-up"
DEV_ENV_FILE="$DEV_DIR/env.sh"

# orderflow_scratch: a second consumer database, for trying another group (a group
# keeps its projection in a database of its own: the consumer refuses a second one).
DEV_DATABASES=(orderflow_registry orderflow_consumer orderflow_producer orderflow_scratch)

dev_pid_file() { printf '%s/%s.pid' "$DEV_PID_DIR" "$1"; }
dev_log_file() { printf '%s/%s.log' "$DEV_LOG_DIR" "$1"; }

# Writes .dev/env.sh: the environment the binaries read.
write_dev_env_file() {
    cat >"$DEV_ENV_FILE" <<ENV
# orderflow dev stack (written by scripts/dev-up.sh)
export KAFKA_BROKERS=127.0.0.1:$DEV_KAFKA_PORT
export SCHEMA_REGISTRY_URL=$DEV_REGISTRY_URL
# the consumer's database and the producer's, as each service's runtime role (rows
# only); the migration roles' URLs let a service started from here migrate first
export DATABASE_URL=$(pg_role_url "$PG_CONSUMER_APP" orderflow_consumer)
export CONSUMER_DATABASE_MIGRATION_URL=$(pg_role_url "$PG_CONSUMER_OWNER" orderflow_consumer)
export PRODUCER_DATABASE_URL=$(pg_role_url "$PG_ORDER_APP" orderflow_producer)
export PRODUCER_DATABASE_MIGRATION_URL=$(pg_role_url "$PG_ORDER_OWNER" orderflow_producer)
# a consumer database for another group than the dev workers' (one group a database),
# with the consumer's roles: pass both URLs to a second group's order-consumer
export SCRATCH_DATABASE_URL=$(pg_role_url "$PG_CONSUMER_APP" orderflow_scratch)
export SCRATCH_DATABASE_MIGRATION_URL=$(pg_role_url "$PG_CONSUMER_OWNER" orderflow_scratch)
export PATH="$ROOT/target/release:\$PATH"
$(if [ "${DEV_TRACING:-1}" -eq 1 ]; then
        printf '# traces to the dev Jaeger (UI http://127.0.0.1:%s/)\n' "$DEV_JAEGER_UI_PORT"
        printf 'export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%s\n' "$DEV_JAEGER_OTLP_PORT"
    fi)
ENV
}
