#!/usr/bin/env bash
# Throughput versus the shape of the topic, engine and Java baseline side by side:
#   partitions: 12, 96, 384 (uniform keys, ORDERS lifecycles of 3 events);
#   key skew (12 partitions): ORDERS lifecycles plus as many again extra copies of
#   written events (redeliveries, so every record stays valid and the dedup table
#   absorbs the copies), spread uniformly, by Zipf 1.2 over the orders, or all on
#   one order (that order then carries half the events).
# Prints tables and draws docs/bench/partitions.png and docs/bench/skew.png.
# Usage: scripts/bench-consumer-shape.sh [--orders N] [--partitions N,N,...] [--skews S,...]
#   (skews: uniform, zipf, hot). Environment: as scripts/bench-consumer.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
# shellcheck source=scripts/lib/bench_consumer.sh
source "$ROOT/scripts/lib/bench_consumer.sh"

ORDERS=10000
PARTITION_LIST="12,96,384"
SKEWS="uniform,zipf,hot"
bench_curve_init "[--orders N] [--partitions N,...] [--skews S,...]" --orders ORDERS --partitions PARTITION_LIST --skews SKEWS -- "$@"
row() { printf '| %-12s | %8s | %10s | %8s | %8s | %-14s |\n' "$@"; }

# measure LABEL TOPIC RECORDS CSV: one run of each contender, alternating order by label.
measure() {
    local label="$1" topic="$2" records="$3" csv="$4" rate n secs
    read -r rate n secs _ <<<"$(bench_engine "$topic" "$(bench_fresh_db "e$RANDOM$RANDOM")")"
    row "$label" engine "$rate" "$n" "$secs" "$(bench_loadavg)"
    echo "engine,$label,$rate" >>"$csv"
    read -r rate n secs _ <<<"$(bench_java "$topic" "$(bench_fresh_db "j$RANDOM$RANDOM")" "$records")"
    row "$label" java "$rate" "$n" "$secs" "$(bench_loadavg)"
    echo "java,$label,$rate" >>"$csv"
}

NOTE="$(date -u +%F), load $(bench_loadavg), $(nproc) CPUs shared"
PART_CSV="$(mktemp)"
echo "partitions ($ORDERS orders x 3 events, uniform keys)"
row "partitions" consumer "records/s" records secs "load 1/5/15"
for partitions in ${PARTITION_LIST//,/ }; do
    topic="bench-parts-$partitions-$RUN_ID"
    records="$(bench_seed "$topic" "$partitions" "$ORDERS")"
    measure "$partitions" "$topic" "$records" "$PART_CSV"
done
python3 "$ROOT/scripts/lib/bench_plot.py" "$ROOT/docs/bench/partitions.png" \
    "Throughput vs partitions ($((ORDERS * 3)) events)" "partitions" "records/s" --categorical \
    --note "$NOTE" <"$PART_CSV"

SKEW_CSV="$(mktemp)"
echo
echo "key skew ($ORDERS orders x 3 events + $((ORDERS * 3)) redelivered copies, 12 partitions)"
row "skew" consumer "records/s" records secs "load 1/5/15"
for skew in ${SKEWS//,/ }; do
    topic="bench-skew-$skew-$RUN_ID"
    records="$(bench_seed "$topic" 12 "$ORDERS" --extra $((ORDERS * 3)) --skew "$skew")"
    measure "$skew" "$topic" "$records" "$SKEW_CSV"
done
python3 "$ROOT/scripts/lib/bench_plot.py" "$ROOT/docs/bench/skew.png" \
    "Throughput vs key skew ($((ORDERS * 6)) records, half of them copies)" "skew of the copies" \
    "records/s" --categorical --note "$NOTE" <"$SKEW_CSV"
echo "plots: docs/bench/partitions.png docs/bench/skew.png"
rm -f "$PART_CSV" "$SKEW_CSV"
echo "end: $(date -u +%FT%TZ), load average $(bench_loadavg)"
