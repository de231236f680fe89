#!/usr/bin/env bash
# The relay's promote statement (run after every round of acknowledgements, holding the
# orders' locks) against an outbox with a long history: SENT_ROWS retained sent rows
# and ORDERS orders with a pending and two waiting rows each. Times the statement as it
# is now (crates/outbox/sql/promote_waiting_outbox.sql) and as it was before it said
# `sent_at IS NULL` (the previous design, kept below), each in a transaction rolled back.
#
# Usage: DATABASE_URL=postgres://... scripts/bench-outbox-promote.sh
#   SENT_ROWS (1000000), ORDERS (500), RUNS (3), OLD_TIMEOUT (300s: the old statement
#   is cut off there and reported as longer).
# Creates and drops its own database. Prints one line per variant and run, then the
# medians.
set -euo pipefail
: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL admin URL}"
SENT_ROWS="${SENT_ROWS:-1000000}"
ORDERS="${ORDERS:-500}"
RUNS="${RUNS:-3}"
OLD_TIMEOUT="${OLD_TIMEOUT:-300s}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DB="bench_promote_$$"
BASE="${DATABASE_URL%%\?*}"
URL="${BASE%/*}/$DB"

psql "$DATABASE_URL" -qAtc "CREATE DATABASE $DB"
trap 'psql "$DATABASE_URL" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT

psql "$URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE SCHEMA order_service" >/dev/null
for migration in "$ROOT"/crates/outbox/migrations/*.sql; do
  psql "$URL" -qAt -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
done

echo "seeding $SENT_ROWS sent rows and $ORDERS orders with unsent events..." >&2
psql "$URL" -qAt -v ON_ERROR_STOP=1 <<SQL
INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
SELECT 'done-' || g, 'shipped', 'c', 'EUR', 100 FROM generate_series(1, $SENT_ROWS / 4) g;
INSERT INTO order_service.outbox
    (order_id, event_id, event_type, traceparent, payload, state, sent_at, created_at, attempts)
SELECT 'done-' || ((g - 1) / 4 + 1), gen_random_uuid(), 'OrderCreated', 'tp', '\x00'::bytea,
       'sent', now() - interval '1 hour', now() - interval '1 hour', 1
FROM generate_series(1, $SENT_ROWS) g;
INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents)
SELECT 'live-' || g, 'created', 'c', 'EUR', 100 FROM generate_series(1, $ORDERS) g;
INSERT INTO order_service.outbox (order_id, event_id, event_type, traceparent, payload, state)
SELECT 'live-' || g, gen_random_uuid(), 'OrderCreated', 'tp', '\x00'::bytea,
       CASE WHEN k = 1 THEN 'pending' ELSE 'waiting' END
FROM generate_series(1, 3) k, generate_series(1, $ORDERS) g ORDER BY k, g;
-- As after a round: the pending heads were just marked sent.
UPDATE order_service.outbox SET state = 'sent', sent_at = now() WHERE order_id LIKE 'live-%' AND state = 'pending';
VACUUM ANALYZE order_service.outbox;
ANALYZE order_service.orders;
SQL

OLD_PROMOTE="UPDATE order_service.outbox SET state = 'pending'
WHERE id IN (SELECT min(w.id) FROM order_service.outbox w
             WHERE w.order_id = ANY(\$1) AND w.state = 'waiting' GROUP BY w.order_id)
AND NOT EXISTS (SELECT 1 FROM order_service.outbox head
                WHERE head.order_id = outbox.order_id AND head.state IN ('pending', 'parked'))"
NEW_PROMOTE="$(grep -v '^--' "$ROOT/crates/outbox/sql/promote_waiting_outbox.sql")"
# EXECUTE takes no subquery: the order ids as a literal array.
ARRAY="ARRAY[$(seq -f "'live-%g'" -s, 1 "$ORDERS")]"

# Milliseconds of one execution (as the relay runs it: a prepared statement with the
# order ids bound), or "timeout".
run() {
  local sql="$1" timeout="$2"
  psql "$URL" -qAt -v ON_ERROR_STOP=1 2>/dev/null <<SQL || echo timeout
BEGIN;
SET LOCAL statement_timeout = '$timeout';
PREPARE promote(text[]) AS $sql;
EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE promote($ARRAY);
ROLLBACK;
SQL
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else print a[int((NR+1)/2)]}'; }

for variant in new old; do
  times=()
  for _ in $(seq "$RUNS"); do
    if [[ $variant == new ]]; then out="$(run "$NEW_PROMOTE" 60s)"; else out="$(run "$OLD_PROMOTE" "$OLD_TIMEOUT")"; fi
    if [[ $out == *timeout* ]]; then ms="timeout"; else
      ms="$(printf '%s' "$out" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)[0]["Execution Time"],1))')"
    fi
    echo "$variant promote, $ORDERS orders, $SENT_ROWS sent rows: $ms ms"
    times+=("$ms")
    [[ $ms == timeout ]] && break
  done
  m="$(printf '%s\n' "${times[@]}" | grep -v timeout | median || true)"
  echo "median $variant: ${m} ms (runs: ${times[*]})"
done
