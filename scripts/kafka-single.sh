#!/usr/bin/env bash
# A private single Apache Kafka broker (KRaft, broker+controller, replication 1) that a
# test may take away and bring back: a Kafka outage without touching the shared brokers.
#
# Usage: scripts/kafka-single.sh --dir DIR COMMAND
#   start     format and start the node on free ports; waits until it serves metadata;
#             writes DIR/bootstrap (host:port)
#   kill      SIGKILL the node (an outage; its data stays)
#   restart   starts the node again on the same ports and waits until it serves metadata
#   stop      stops the node (SIGTERM, then SIGKILL after 15 s) and deletes nothing
#   bootstrap prints the bootstrap address
# KAFKA_SINGLE_BASE_PORT (default 26100 + pid % 600) is where the search for free ports
# starts: below the kernel's ephemeral range, so that no client connection holds the
# node's port while it is down. The JVM gets -Xmx384m.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

DIR=""
if [ "${1:-}" = "--dir" ] && [ $# -ge 2 ]; then
    DIR="$2"
    shift 2
fi
COMMAND="${1:-}"
if [ -z "$DIR" ] || [ -z "$COMMAND" ]; then usage >&2; exit 2; fi
log_init

node_pid() { read_pid_file "$DIR/pid"; }

start_node() {
    if pid_matches "$(node_pid)" kafka.Kafka; then
        die "the broker in $DIR is already running (pid $(node_pid))"
    fi
    kafka_jvm_args 384m
    start_detached "$DIR/pid" "$DIR/broker.log" "$DIR" "${KAFKA_JVM_ARGS[@]}" "$DIR/server.properties" >/dev/null
    kafka_wait_ready "kafka (single)" "$(cat "$DIR/bootstrap")" 1 120 "$DIR/broker.log" "$(node_pid)"
}

case "$COMMAND" in
    start)
        [ ! -f "$DIR/bootstrap" ] || die "$DIR already holds a broker (stop it and delete $DIR first)"
        kafka_classpath
        ensure_python_confluent_kafka
        mkdir -p "$DIR"
        port="$(find_free_port "${KAFKA_SINGLE_BASE_PORT:-$((26100 + $$ % 600))}")"
        cport="$(find_free_port $((port + 1)))"
        kafka_write_config "$DIR/server.properties" 1 "$port" "$cport" "1@127.0.0.1:$cport" "$DIR/data" 1 test
        kafka_format "$DIR/server.properties" "$(kafka_random_cluster_id)"
        printf '127.0.0.1:%s\n' "$port" >"$DIR/bootstrap"
        start_node
        ;;
    kill)
        pid="$(node_pid)"
        pid_matches "$pid" kafka.Kafka || die "the broker in $DIR is not running"
        kill -KILL "$pid"
        while pid_running "$pid"; do sleep 0.1; done
        ;;
    restart)
        [ -f "$DIR/bootstrap" ] || die "no broker in $DIR: start it first"
        kafka_classpath
        start_node
        ;;
    stop)
        pid="$(node_pid)"
        if pid_matches "$pid" kafka.Kafka; then stop_pid "kafka (single)" "$pid"; fi
        ;;
    bootstrap) cat "$DIR/bootstrap" ;;
    *) usage >&2; exit 2 ;;
esac
