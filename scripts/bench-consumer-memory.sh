#!/usr/bin/env bash
# Peak memory (RSS) of order-consumer versus --max-buffered and record size: one run
# per pair on a fresh group and database, the peak taken by /usr/bin/time. Record
# size is set by padding every event (the producer field). Prints a table and draws
# docs/bench/memory.png (one line per record size).
# Usage: scripts/bench-consumer-memory.sh [--orders N] [--buffered N,N,...] [--padding B,B,...]
# Environment: as scripts/bench-consumer.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
# shellcheck source=scripts/lib/bench_consumer.sh
source "$ROOT/scripts/lib/bench_consumer.sh"

ORDERS=10000
BUFFERED="1000,10000,50000"
PADDING="0,1024,10240"
bench_curve_init "[--orders N] [--buffered N,...] [--padding B,...]" --orders ORDERS --buffered BUFFERED --padding PADDING -- "$@"
row() { printf '| %8s | %12s | %10s | %8s | %-14s |\n' "$@"; }
row "padding" "max-buffered" "records/s" "RSS MiB" "load 1/5/15"
CSV="$(mktemp)"
for padding in ${PADDING//,/ }; do
    topic="bench-mem-$padding-$RUN_ID"
    bench_seed "$topic" 12 "$ORDERS" --padding "$padding" >/dev/null
    for buffered in ${BUFFERED//,/ }; do
        read -r rate _ _ rss _ <<<"$(bench_engine "$topic" "$(bench_fresh_db "m${padding}_$buffered")" --max-buffered "$buffered")"
        row "$padding" "$buffered" "$rate" "$rss" "$(bench_loadavg)"
        echo "record +$padding B,$buffered,$rss" >>"$CSV"
    done
done
python3 "$ROOT/scripts/lib/bench_plot.py" "$ROOT/docs/bench/memory.png" \
    "order-consumer peak RSS vs --max-buffered ($((ORDERS * 3)) events)" "max-buffered (records)" "peak RSS (MiB)" \
    --logx --note "$(date -u +%F), padding = bytes added to every event" <"$CSV"
echo "plot: docs/bench/memory.png"
rm -f "$CSV"
echo "end: $(date -u +%FT%TZ), load average $(bench_loadavg)"
