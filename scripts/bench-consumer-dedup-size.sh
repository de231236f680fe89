#!/usr/bin/env bash
# Throughput versus the size of the dedup table: the engine and the Java baseline
# consume the same topic into databases whose processed_events already holds N rows
# of the same group (a week of its history, as a 7-day retention leaves it), N from
# --sizes. Every run uses that group name; the broker forgets the group after each. Each size's
# rows are written once into a template database (generate_series), and every run
# gets a fresh copy of it. Prints a table and draws docs/bench/dedup-size.png.
#
# The default sizes are small (the run takes minutes); the curve in BENCHMARKS.md:
#   scripts/bench-consumer-dedup-size.sh --sizes 0,10000000,50000000
# (filling 50 million rows takes tens of minutes and about 10 GB of disk).
# Usage: scripts/bench-consumer-dedup-size.sh [--sizes N,N,...] [--orders N] [--runs N]
# Environment: as scripts/bench-consumer.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
# shellcheck source=scripts/lib/bench_consumer.sh
source "$ROOT/scripts/lib/bench_consumer.sh"

SIZES="0,1000000"
ORDERS=20000
RUNS=1
bench_curve_init "[--sizes N,N,...] [--orders N] [--runs N]" --sizes SIZES --orders ORDERS --runs RUNS -- "$@"
TOPIC="bench-dedup-$RUN_ID"
RECORDS="$(bench_seed "$TOPIC" 12 "$ORDERS")"
echo "topic: $RECORDS events of $ORDERS orders, 12 partitions; dedup sizes $SIZES"
ADMIN_BASE="${DATABASE_URL%/*}"
BENCH_GROUP="bench-dedup-$RUN_ID"

# from_template TEMPLATE NAME: a copy of the template database; prints its URL.
from_template() {
    local name="bench_consumer_${RUN_ID}_$2"
    # FILE_COPY: a copy of the files, not of every page through the WAL (gigabytes here).
    psql "$DATABASE_URL" -XAtqc "CREATE DATABASE $name TEMPLATE $1 STRATEGY FILE_COPY" >/dev/null
    echo "$ADMIN_BASE/$name"
}

CSV="$(mktemp)"
printf '| %12s | %8s | %10s | %8s | %-14s |\n' "dedup rows" "consumer" "records/s" "secs" "load 1/5/15"
for size in ${SIZES//,/ }; do
    template_url="$(bench_fresh_db "tpl$size")"
    template="${template_url##*/}"
    if ((size > 0)); then
        start=$SECONDS
        "$BIN/consumer-bench" fill-dedup --database-url "$template_url" --count "$size" --group "$BENCH_GROUP"
        echo "filled $size dedup rows in $((SECONDS - start)) s ($(psql "$template_url" -XAtqc "SELECT pg_size_pretty(pg_total_relation_size('processed_events'))"))"
    fi
    for ((i = 1; i <= RUNS; i++)); do
        read -r rate _ secs _ <<<"$(bench_engine "$TOPIC" "$(from_template "$template" "e${size}_$i")")"
        bench_forget_group "$BENCH_GROUP"
        printf '| %12s | %8s | %10s | %8s | %-14s |\n' "$size" engine "$rate" "$secs" "$(bench_loadavg)"
        echo "engine,$size,$rate" >>"$CSV"
        read -r rate _ secs _ <<<"$(bench_java "$TOPIC" "$(from_template "$template" "j${size}_$i")" "$RECORDS")"
        bench_forget_group "$BENCH_GROUP"
        printf '| %12s | %8s | %10s | %8s | %-14s |\n' "$size" java "$rate" "$secs" "$(bench_loadavg)"
        echo "java,$size,$rate" >>"$CSV"
    done
    # Free the disk before the next size.
    psql "$DATABASE_URL" -XAtqc "SELECT datname FROM pg_database WHERE datname LIKE 'bench_consumer_${RUN_ID}_%'" |
        while read -r db; do psql "$DATABASE_URL" -XAtqc "DROP DATABASE \"$db\" WITH (FORCE)" >/dev/null; done
done
python3 "$ROOT/scripts/lib/bench_plot.py" "$ROOT/docs/bench/dedup-size.png" \
    "Throughput vs dedup table size ($RECORDS events, 12 partitions)" \
    "rows already in processed_events" "records/s" --categorical \
    --note "$(date -u +%F), load $(bench_loadavg), $(nproc) CPUs shared" <"$CSV"
echo "plot: docs/bench/dedup-size.png"
rm -f "$CSV"
echo "end: $(date -u +%FT%TZ), load average $(bench_loadavg)"
