#!/usr/bin/env bash
# A 3-broker Apache Kafka cluster (KRaft, each node broker+controller) on one host, for
# failover tests and the chaos runs: replication factor 3, min.insync.replicas=2,
# unclean leader election off, brokers fenced 6 s after they stop heartbeating, KIP-848
# group sessions of 6 s (test settings: see kafka_write_config).
#
# Usage: scripts/kafka-cluster.sh --dir DIR COMMAND [N]
#   start          format and start nodes 1..3 on free ports; waits until all three
#                  serve metadata; writes DIR/bootstrap (host:port,host:port,host:port)
#   stop           stops every node (SIGTERM, then SIGKILL after 15 s) and deletes nothing
#   kill N         SIGKILL node N (a crash); its data stays
#   start-node N   starts node N again and waits until the cluster lists 3 brokers
#   status         one line per node: id, address, pid, running or not
#   bootstrap      prints the bootstrap list
# Node N has broker id N. KAFKA_CLUSTER_BASE_PORT (default 27100 + pid % 300) is where
# the search for free ports starts: below the kernel's ephemeral range, so that no client
# connection holds a node's port while the node is down. Each JVM gets -Xmx512m.
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
NODE="${2:-}"
[ -n "$DIR" ] && [ -n "$COMMAND" ] || { usage >&2; exit 2; }
log_init

node_dir() { printf '%s/node%s' "$DIR" "$1"; }
node_port() { sed -n "s/^$1 \([0-9]*\) .*/\1/p" "$DIR/nodes"; }
node_pid() { read_pid_file "$(node_dir "$1")/pid"; }

check_node() {
    case "$1" in
        1 | 2 | 3) ;;
        *) die "node must be 1, 2 or 3 (got '${1:-}')" ;;
    esac
    [ -f "$DIR/nodes" ] || die "$DIR/nodes not found: start the cluster first (--dir $DIR start)"
}

start_node() {
    local n="$1" dir
    dir="$(node_dir "$n")"
    if pid_matches "$(node_pid "$n")" kafka.Kafka; then
        die "node $n is already running (pid $(node_pid "$n"))"
    fi
    kafka_jvm_args 512m
    start_detached "$dir/pid" "$dir/broker.log" "$dir" "${KAFKA_JVM_ARGS[@]}" "$dir/server.properties" >/dev/null
}

cmd_start() {
    [ ! -f "$DIR/nodes" ] || die "$DIR already holds a cluster (stop it and delete $DIR first)"
    kafka_classpath
    ensure_python_confluent_kafka
    mkdir -p "$DIR"
    local base="${KAFKA_CLUSTER_BASE_PORT:-$((27100 + $$ % 300))}" voters="" n port cport
    local ports=() cports=()
    for n in 1 2 3; do
        port="$(find_free_port "$base")"
        cport="$(find_free_port $((port + 1)))"
        base=$((cport + 1))
        ports[n]="$port"
        cports[n]="$cport"
        voters="${voters:+$voters,}$n@127.0.0.1:$cport"
    done
    : >"$DIR/nodes"
    local cid bootstrap=""
    cid="$(kafka_random_cluster_id)"
    for n in 1 2 3; do
        kafka_write_config "$(node_dir "$n")/server.properties" "$n" "${ports[n]}" "${cports[n]}" \
            "$voters" "$(node_dir "$n")/data" 3 test
        kafka_format "$(node_dir "$n")/server.properties" "$cid"
        printf '%s %s %s\n' "$n" "${ports[n]}" "${cports[n]}" >>"$DIR/nodes"
        bootstrap="${bootstrap:+$bootstrap,}127.0.0.1:${ports[n]}"
    done
    printf '%s\n' "$bootstrap" >"$DIR/bootstrap"
    for n in 1 2 3; do
        start_node "$n"
    done
    kafka_wait_ready "kafka cluster" "$bootstrap" 3 120 "$(node_dir 1)/broker.log" "$(node_pid 1)"
    info "3-broker cluster up: $bootstrap (data in $DIR)"
}

cmd_stop() {
    [ -f "$DIR/nodes" ] || return 0
    local n pid
    for n in 1 2 3; do
        pid="$(node_pid "$n")"
        pid_matches "$pid" kafka.Kafka && kill -TERM "$pid" 2>/dev/null || true
    done
    for n in 1 2 3; do
        pid="$(node_pid "$n")"
        pid_matches "$pid" kafka.Kafka && stop_pid "kafka node $n" "$pid"
    done
    return 0
}

case "$COMMAND" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    kill)
        check_node "$NODE"
        pid="$(node_pid "$NODE")"
        pid_matches "$pid" kafka.Kafka || die "node $NODE is not running"
        kill -KILL "$pid"
        while pid_running "$pid"; do sleep 0.1; done
        ;;
    start-node)
        check_node "$NODE"
        kafka_classpath
        start_node "$NODE"
        kafka_wait_ready "kafka node $NODE" "127.0.0.1:$(node_port "$NODE")" 3 120 \
            "$(node_dir "$NODE")/broker.log" "$(node_pid "$NODE")"
        ;;
    status)
        [ -f "$DIR/nodes" ] || die "no cluster in $DIR"
        for n in 1 2 3; do
            pid="$(node_pid "$n")"
            state="stopped"
            pid_matches "$pid" kafka.Kafka && state="running"
            printf 'node %s 127.0.0.1:%s pid %s %s\n' "$n" "$(node_port "$n")" "${pid:--}" "$state"
        done
        ;;
    bootstrap) cat "$DIR/bootstrap" ;;
    *) usage >&2; exit 2 ;;
esac
