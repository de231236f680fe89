#!/usr/bin/env bash
# Chaos runs: order events through a 3-broker cluster (RF 3, min.insync.replicas=2) into
# the consumer's projection while faults are injected, each run checked by two
# verifiers: `orderflow verify` and the independent verifier of `orderflow-chaos`. A
# thin launcher of `orderflow-chaos run` (crates/chaos), which supervises every process,
# prints the table and writes a JSON report (<work dir>/report.json); exits 1 on any
# violation.
#
# Usage: scripts/chaos.sh [--events N] [--scenarios a,b,c,d,e,f,g,h,i,j,k] [--group-protocol classic|consumer]
#                         [--workers N] [--rate R] [--cluster-dir D] [--drain-timeout S]
#                         [--bin-dir D] [--lane-poison N] [--max-buffered N] [--rss-bound-mib M]
#                         [--report FILE]
#   a  kill -9 a random consumer worker every 5 s and start a new one (30 s)
#   b  kill -9 the leader of the busiest partition, restart it 20 s later; three times
#   c  stop PostgreSQL (pg_ctl stop -m fast) for 15 s, twice
#   d  scale the workers 1 -> 4 -> 1 while producing
#   e  kill -9 the order service (API and relay) and restart it 3 s later; twice
#   f  a, b, c, d and e at once
#   g  after the load, a trickle (one-record batches) while every write to the
#      projection fails for 10 s (a trigger raising), then PostgreSQL stopped for 8 s
#   h  PostgreSQL stopped for 20 s while workers join, leave and die (--max-buffered 1000)
#   i  a second order service on the same database (the relays share the slots): kill -9
#      it and restart it 3 s later; twice
#   j  once the relay publishes, kill -9 all three brokers (it has no leader to
#      send to) for 30 s, then start them; prints HTTP 2xx to Kafka append delays
#      (the topic uses LogAppendTime)
#   k  once the relay publishes: the brokers frozen (SIGSTOP) 3 s, PostgreSQL
#      stopped, the brokers thawed (the relay's sends complete with no database to
#      record them), PostgreSQL started 20 s later; prints the same delays
#   --rate         records per second of the producer [default: events / 40, at least 250]
#   --cluster-dir  use the running cluster of `scripts/kafka-cluster.sh --dir D` instead
#                  of starting one (scenario b kills and restarts its nodes)
#   --bin-dir      take orderflow, order-producer, order-consumer and orderflow-chaos
#                  from D as they are [default: build them into target/release]
#   --lane-poison  one poison record in a live order's key lane every N HTTP orders in
#                  a to f [default: 0, none; g and h always use 5]
# PostgreSQL: a private cluster (initdb) on a free port under .scratch/, which scenarios
# c, f, g, h and k stop and start; the machine's shared PostgreSQL is never touched. The
# registry: SCHEMA_REGISTRY_URL when set, else a private Apicurio storing in the private
# PostgreSQL. Every flag is also `orderflow-chaos run --help`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

BIN=""
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir) BIN="${2:-}"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --events | --scenarios | --group-protocol | --workers | --rate | --cluster-dir | \
            --drain-timeout | --lane-poison | --max-buffered | --rss-bound-mib | --report)
            [ $# -ge 2 ] || { usage >&2; exit 2; }
            ARGS+=("$1" "$2"); shift 2 ;;
        *) usage >&2; exit 2 ;;
    esac
done

if [ -z "$BIN" ]; then
    BIN="$ROOT/target/release"
    echo "building release binaries" >&2
    (cd "$ROOT" && cargo build --release --quiet -p orderflow-ops -p order-producer \
        -p order-consumer -p orderflow-chaos --bins)
elif [ ! -x "$BIN/orderflow-chaos" ]; then
    # Binaries given without the harness (an older build): the harness of this checkout.
    (cd "$ROOT" && cargo build --quiet -p orderflow-chaos)
    exec "$ROOT/target/debug/orderflow-chaos" run --root "$ROOT" --bin-dir "$BIN" "${ARGS[@]}"
fi
exec "$BIN/orderflow-chaos" run --root "$ROOT" --bin-dir "$BIN" "${ARGS[@]}"
