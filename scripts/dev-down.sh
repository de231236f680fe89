#!/usr/bin/env bash
# Stops exactly what scripts/dev-up.sh started: the pipeline's processes, the schema
# registry and Kafka (by their pid files in .dev/pids/, newest first), and PostgreSQL
# only when dev-up started it.
# Data (broker log, databases) is kept unless --purge.
#
# Usage: scripts/dev-down.sh [--purge | --stream]
#   --purge   also drop the dev databases and delete .dev/ (broker data, logs)
#   --stream  stop only the generated order stream and leave the rest running (so that a
#             consumer's --exit-when-idle can see the topic go idle); dev-up restarts it
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
# shellcheck source=scripts/lib/dev_stack.sh
source scripts/lib/dev_stack.sh

PURGE=0
STREAM_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --purge) PURGE=1 ;;
        --stream) STREAM_ONLY=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$arg' (see --help)" ;;
    esac
done

log_init

# stop_from_pid_file NAME PIDFILE WORD: stops the process if the pid file names
# a live process whose command line contains WORD; removes the pid file.
stop_from_pid_file() {
    local name="$1" pidfile="$2" word="$3" pid
    pid="$(read_pid_file "$pidfile")"
    if [ -z "$pid" ]; then
        info "$name: no pid file, nothing to stop"
    elif pid_matches "$pid" "$word"; then
        stop_pid "$name" "$pid"
        info "$name: stopped (pid $pid)"
    else
        info "$name: pid $pid from the pid file is not running (stale pid file removed)"
    fi
    rm -f "$pidfile"
}

if [ "$STREAM_ONLY" -eq 1 ]; then
    [ "$PURGE" -eq 0 ] || die "--stream and --purge exclude each other: --stream stops only the order stream"
    step "stop the order stream"
    stop_from_pid_file generator "$(dev_pid_file generator)" order-producer
    step_ok
    exit 0
fi

step "stop services started by dev-up"
for ((i = ${#DEV_SERVICES[@]} - 1; i >= 0; i--)); do
    service="${DEV_SERVICES[i]}"
    stop_from_pid_file "${service%%:*}" "$(dev_pid_file "${service%%:*}")" "${service#*:}"
done
step_ok

if [ "$PURGE" -eq 1 ]; then
    step "drop the dev databases"
    if pg_is_running; then
        for db in "${DEV_DATABASES[@]}"; do
            pg_drop_database "$db"
        done
        step_ok "${DEV_DATABASES[*]}"
    else
        info "PostgreSQL is not running: databases left as they are"
    fi
fi

if [ -f "$DEV_PG_MARKER" ]; then
    step "stop PostgreSQL (dev-up started it)"
    if ! pg_is_running; then
        step_ok "already stopped"
    else
        clients="$(pg_client_count)"
        if [ "$clients" = "0" ]; then
            pg_stop
            step_ok
        else
            # Keep the marker: a later dev-down may still stop it.
            step_ok "left running: $clients client(s) not started by dev-up are connected"
        fi
    fi
    pg_is_running || rm -f "$DEV_PG_MARKER"
else
    info "PostgreSQL: not started by dev-up, left as it is"
fi

if [ "$PURGE" -eq 1 ]; then
    rm -rf "$DEV_DIR"
    info "deleted ${DEV_DIR#"$ROOT"/}/"
else
    info "data kept in ${DEV_DIR#"$ROOT"/}/ (--purge deletes it)"
fi
