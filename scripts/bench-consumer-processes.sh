#!/usr/bin/env bash
# Throughput versus consumer processes on one group (1 to 4 by default), the engine
# and the Java baseline side by side: N processes start together on a fresh group
# and database; the group's rate is the topic's records over the longest process's
# active span (first record received to last record done). Prints a table and draws
# docs/bench/processes.png.
# Usage: scripts/bench-consumer-processes.sh [--orders N] [--max N]
# Environment: as scripts/bench-consumer.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
# shellcheck source=scripts/lib/bench_consumer.sh
source "$ROOT/scripts/lib/bench_consumer.sh"

ORDERS=20000
MAX=4
bench_curve_init "[--orders N] [--max N]" --orders ORDERS --max MAX -- "$@"
TOPIC="bench-procs-$RUN_ID"
RECORDS="$(bench_seed "$TOPIC" 12 "$ORDERS")"
echo "topic: $RECORDS events of $ORDERS orders, 12 partitions"
row() { printf '| %9s | %8s | %10s | %8s | %-14s |\n' "$@"; }
row processes consumer "records/s" secs "load 1/5/15"

# group_rate KIND N: N processes of KIND (engine|java) on one fresh group and database.
group_rate() {
    local kind="$1" n="$2" db group dir i
    db="$(bench_fresh_db "$kind$n")"
    group="bench-$kind-$RUN_ID-$n"
    dir="$(mktemp -d)"
    for ((i = 1; i <= n; i++)); do
        if [[ "$kind" == engine ]]; then
            "$BIN/order-consumer" --topic "$TOPIC" --group "$group" --database-url "$db" \
                --metrics-addr "" --exit-when-idle 3 --log-level warn >"$dir/$i" &
        else
            java -cp "$BENCH_JAVA_DIR/target/classes:$BENCH_JAVA_DIR/target/lib/*" \
                io.orderflow.bench.BaselineConsumer --topic "$TOPIC" --group "$group" \
                --database-url "$db" --registry-url "$SCHEMA_REGISTRY_URL" \
                --brokers "$KAFKA_BROKERS" --idle-ms 3000 >"$dir/$i" 2>/dev/null &
        fi
    done
    wait
    python3 - "$dir" "$RECORDS" "$(psql "$db" -XAtqc 'SELECT count(*) FROM processed_events')" <<'PY'
import json, os, sys
d, records, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spans = [json.loads(open(os.path.join(d, f)).read().strip().splitlines()[-1])["active_secs"] for f in os.listdir(d)]
if rows != records:
    sys.exit(f"the group applied {rows} of {records} events")
secs = max(spans)
print(f"{records / secs:.0f} {secs:.2f}")
PY
    rm -rf "$dir"
}

CSV="$(mktemp)"
for ((n = 1; n <= MAX; n++)); do
    for kind in engine java; do
        read -r rate secs <<<"$(group_rate "$kind" "$n")"
        row "$n" "$kind" "$rate" "$secs" "$(bench_loadavg)"
        echo "$kind,$n,$rate" >>"$CSV"
    done
done
python3 "$ROOT/scripts/lib/bench_plot.py" "$ROOT/docs/bench/processes.png" \
    "Throughput vs consumer processes on one group ($RECORDS events, 12 partitions)" \
    "processes" "records/s" --categorical \
    --note "$(date -u +%F), load $(bench_loadavg), $(nproc) CPUs shared by the processes, broker and PostgreSQL" <"$CSV"
echo "plot: docs/bench/processes.png"
rm -f "$CSV"
echo "end: $(date -u +%FT%TZ), load average $(bench_loadavg)"
