# shellcheck shell=bash
# Where the development stack (scripts/dev-up.sh, scripts/dev-down.sh) keeps its
# state: everything under .dev/ in the repository (git-ignored).
# Needs ROOT set and postgres.sh sourced. Source it.
# shellcheck disable=SC2034 # the variables are read by the scripts that source this file

DEV_DIR="$ROOT/.dev"
DEV_PID_DIR="$DEV_DIR/pids"
DEV_LOG_DIR="$DEV_DIR/logs"
DEV_TANSU_DIR="$DEV_DIR/tansu"

DEV_KAFKA_PORT="${DEV_KAFKA_PORT:-9092}"
DEV_REGISTRY_PORT="${DEV_REGISTRY_PORT:-8081}"
DEV_REGISTRY_URL="http://127.0.0.1:$DEV_REGISTRY_PORT"

DEV_TANSU_PID="$DEV_PID_DIR/tansu.pid"
DEV_TANSU_LOG="$DEV_LOG_DIR/tansu.log"
DEV_REGISTRY_PID="$DEV_PID_DIR/registry.pid"
DEV_REGISTRY_LOG="$DEV_LOG_DIR/registry.log"

# Present when dev-up started PostgreSQL (it was down): dev-down then stops it.
DEV_PG_MARKER="$DEV_DIR/postgres.started-by-dev-up"
# Present once the first batch of order events was sent.
DEV_SEEDED_MARKER="$DEV_DIR/seeded"
DEV_ENV_FILE="$DEV_DIR/env.sh"

DEV_DATABASES=(orderflow_registry orderflow_consumer orderflow_producer)

# Writes .dev/env.sh: the environment the binaries read.
write_dev_env_file() {
    cat >"$DEV_ENV_FILE" <<EOF
# orderflow dev stack (written by scripts/dev-up.sh)
export KAFKA_BROKERS=127.0.0.1:$DEV_KAFKA_PORT
export SCHEMA_REGISTRY_URL=$DEV_REGISTRY_URL
# the consumer's database; the producer's is PRODUCER_DATABASE_URL
export DATABASE_URL=$(pg_url orderflow_consumer)
export CONSUMER_DATABASE_URL=$(pg_url orderflow_consumer)
export PRODUCER_DATABASE_URL=$(pg_url orderflow_producer)
export REGISTRY_DATABASE_URL=$(pg_url orderflow_registry)
export PATH="$ROOT/target/release:\$PATH"
EOF
}
