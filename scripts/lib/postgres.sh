# shellcheck shell=bash
# The machine's PostgreSQL 15 cluster (Debian's pg_ctlcluster): start it, make
# the `orderflow` role, create and drop databases. Admin statements go through
# the Unix socket as the `postgres` user (peer auth); clients use TCP with the
# role's password (Debian's pg_hba asks for scram on 127.0.0.1).
# Needs log.sh and install.sh. Source it; it defines functions only.

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_HOST="127.0.0.1"
PG_PORT="${PG_PORT:-5432}"
PG_ROLE="orderflow"
PG_PASSWORD="orderflow"

# Set to 1 by pg_start when this process started the cluster (it was down).
# shellcheck disable=SC2034 # read by the scripts that source this file
PG_STARTED_HERE=0

# postgres://orderflow:orderflow@127.0.0.1:5432/DBNAME
pg_url() {
    printf 'postgres://%s:%s@%s:%s/%s' "$PG_ROLE" "$PG_PASSWORD" "$PG_HOST" "$PG_PORT" "$1"
}

# The services' own roles (deploy/postgres/service-roles.sql): a migration role and a
# runtime role per service, and the registry's role. On this local stack each role's
# password is its name (like the admin role's); compose takes them from .env.
PG_ORDER_OWNER="orderflow_order_owner"
PG_ORDER_APP="orderflow_order_app"
PG_CONSUMER_OWNER="orderflow_consumer_owner"
PG_CONSUMER_APP="orderflow_consumer_app"
PG_REGISTRY_OWNER="orderflow_registry_owner"

# pg_role_url ROLE DBNAME: postgres://ROLE:ROLE@127.0.0.1:5432/DBNAME
pg_role_url() {
    printf 'postgres://%s:%s@%s:%s/%s' "$1" "$1" "$PG_HOST" "$PG_PORT" "$2"
}

# pg_ensure_service_roles ORDER_DB CONSUMER_DB REGISTRY_DB: creates (or resets) the
# services' roles, gives each database to its migration role and lets only the
# service's runtime role connect besides (deploy/postgres/service-roles.sql; idempotent).
pg_ensure_service_roles() {
    local script="$ROOT/deploy/postgres/service-roles.sql"
    [ -f "$script" ] || die "$script not found"
    pg_admin_psql -v order_db="$1" -v consumer_db="$2" -v registry_db="$3" \
        -v order_owner="$PG_ORDER_OWNER" -v order_owner_password="$PG_ORDER_OWNER" \
        -v order_app="$PG_ORDER_APP" -v order_app_password="$PG_ORDER_APP" \
        -v consumer_owner="$PG_CONSUMER_OWNER" -v consumer_owner_password="$PG_CONSUMER_OWNER" \
        -v consumer_app="$PG_CONSUMER_APP" -v consumer_app_password="$PG_CONSUMER_APP" \
        -v registry_owner="$PG_REGISTRY_OWNER" -v registry_owner_password="$PG_REGISTRY_OWNER" \
        <"$script" >/dev/null || die "cannot set up the services' roles ($script)"
}

# Runs psql as the postgres superuser over the socket; extra args are passed on.
# From / so that psql does not complain about an unreadable working directory.
pg_admin_psql() {
    (cd / && as_root runuser -u postgres -- env PGOPTIONS='-c client_min_messages=warning' psql -X -q -At -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
}

pg_is_running() {
    as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" status >/dev/null 2>&1
}

# Starts the cluster if it is down (idempotent) and waits until it accepts
# connections on 127.0.0.1, at most 30 s.
pg_start() {
    command -v pg_ctlcluster >/dev/null 2>&1 \
        || die "pg_ctlcluster not found: install Debian's postgresql-$PG_VERSION"
    if pg_is_running; then
        info "PostgreSQL $PG_VERSION/$PG_CLUSTER already running"
    else
        info "starting PostgreSQL $PG_VERSION/$PG_CLUSTER"
        as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start \
            || die "pg_ctlcluster $PG_VERSION $PG_CLUSTER start failed (log: /var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log)"
        # shellcheck disable=SC2034 # read by the scripts that source this file
        PG_STARTED_HERE=1
    fi
    local deadline=$((SECONDS + 30))
    until pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            print_log_tail "/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log" 20
            die "PostgreSQL did not accept connections on $PG_HOST:$PG_PORT within 30 s"
        fi
        sleep 0.5
    done
}

# Creates the login role `orderflow` (password orderflow, SUPERUSER so tests can
# create databases and extensions) or resets its password and rights.
pg_ensure_role() {
    local exists
    exists="$(pg_admin_psql -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE'")" \
        || die "cannot query PostgreSQL roles"
    if [ "$exists" = "1" ]; then
        pg_admin_psql -c "ALTER ROLE $PG_ROLE WITH LOGIN SUPERUSER CREATEDB PASSWORD '$PG_PASSWORD'" \
            || die "cannot update role $PG_ROLE"
    else
        pg_admin_psql -c "CREATE ROLE $PG_ROLE WITH LOGIN SUPERUSER CREATEDB PASSWORD '$PG_PASSWORD'" \
            || die "cannot create role $PG_ROLE"
        info "created role $PG_ROLE"
    fi
    # Prove that the client path (TCP + password) works, not only the socket.
    PGPASSWORD="$PG_PASSWORD" psql -X -q -At -h "$PG_HOST" -p "$PG_PORT" -U "$PG_ROLE" -d postgres -c 'SELECT 1' >/dev/null \
        || die "role $PG_ROLE cannot log in over TCP at $PG_HOST:$PG_PORT (check pg_hba.conf)"
}

pg_database_exists() {
    [ "$(pg_admin_psql -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" = "1" ]
}

# Creates database NAME owned by the orderflow role if it does not exist.
pg_ensure_database() {
    if pg_database_exists "$1"; then
        return 0
    fi
    pg_admin_psql -c "CREATE DATABASE \"$1\" OWNER $PG_ROLE" || die "cannot create database $1"
    info "created database $1"
}

# Drops database NAME if it exists, disconnecting its clients.
pg_drop_database() {
    pg_admin_psql -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" || die "cannot drop database $1"
}

# Drops and re-creates database NAME, so it starts empty.
pg_recreate_database() {
    pg_drop_database "$1"
    pg_admin_psql -c "CREATE DATABASE \"$1\" OWNER $PG_ROLE" || die "cannot create database $1"
}

# Number of client connections other than the one asking.
pg_client_count() {
    pg_admin_psql -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
}

# Stops the cluster.
pg_stop() {
    as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop
}
