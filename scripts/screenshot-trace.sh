#!/usr/bin/env bash
# The README's picture of one order's trace in Jaeger's web UI (issue 20): starts a
# private Jaeger with the web UI, a release `order-producer serve` and `order-consumer`
# exporting to it (on the broker, registry and PostgreSQL of the environment, with a
# fresh topic and fresh databases), creates an order and pays it over HTTP with a
# traceparent of its own, waits until Jaeger holds the payment's trace down to the
# consumer's projection transaction, and has headless Chromium (Debian's chromium,
# playwright-core of crates/lag/dashboard) save the trace page to docs/jaeger-trace.png.
#
# The Jaeger binary of scripts/lib/jaeger.sh has a placeholder where the UI goes (the
# UI is the separate jaeger-ui project, published by no package registry): this script
# needs JAEGER_UI_ASSETS, the build/ folder of jaeger-ui (its tag v1.75.0, built with
# `npm ci` and `vite build` in packages/jaeger-ui after `babel` in packages/plexus).
#
# Needs KAFKA_BROKERS, SCHEMA_REGISTRY_URL, DATABASE_URL (a role that may CREATE
# DATABASE) and JAEGER_UI_ASSETS.
# Usage: scripts/screenshot-trace.sh [OUT.png]   (default docs/jaeger-trace.png)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"

OUT="${1:-docs/jaeger-trace.png}"
: "${KAFKA_BROKERS:?KAFKA_BROKERS must name the broker}"
: "${SCHEMA_REGISTRY_URL:?SCHEMA_REGISTRY_URL must name the registry}"
: "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL (admin role)}"
: "${JAEGER_UI_ASSETS:?JAEGER_UI_ASSETS must be a built jaeger-ui (see the head of this script)}"
[[ -f "$JAEGER_UI_ASSETS/index.html" ]] || die "no index.html in JAEGER_UI_ASSETS=$JAEGER_UI_ASSETS"
PLAYWRIGHT_CORE="$ROOT/crates/lag/dashboard/node_modules/playwright-core/index.mjs"
[[ -f "$PLAYWRIGHT_CORE" ]] || die "playwright-core missing: run scripts/build-dashboard.sh"
export PLAYWRIGHT_CORE SCHEMA_REGISTRY_URL
log_init
cargo build --release --quiet -p order-consumer --bins
cargo build --release --quiet -p order-producer --bins
BIN="$ROOT/target/release"

RUN_ID="trace_shot_$(date +%s)$$"
WORK="$(mktemp -d /tmp/screenshot-trace.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    "$BIN/consumer-bench" drop-dbs --prefix "${RUN_ID}_" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

jaeger_start_private "$WORK"
PIDS+=("$JAEGER_PID")
info "jaeger $JAEGER_VERSION with its web UI: $JAEGER_UI"

TOPIC="orders-${RUN_ID//_/-}"
python3 - "$KAFKA_BROKERS" "$TOPIC" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
for future in admin.create_topics([NewTopic(sys.argv[2], 3, 1), NewTopic(sys.argv[2] + ".dlq", 3, 1)]).values():
    future.result()
PY
SERVICE_DB="${DATABASE_URL%/*}/${RUN_ID}_service"
psql -q "$DATABASE_URL" -c "CREATE DATABASE ${RUN_ID}_service" >/dev/null
CONSUMER_DB="$("$BIN/consumer-bench" fresh-db --name "${RUN_ID}_consumer")"
API_PORT="$(find_free_port 24800)"

export OTEL_EXPORTER_OTLP_ENDPOINT="$JAEGER_OTLP_HTTP" OTEL_BSP_SCHEDULE_DELAY=200
env OTEL_SERVICE_NAME=order-service "$BIN/order-producer" serve --listen "127.0.0.1:$API_PORT" \
    --database-url "$SERVICE_DB" --brokers "$KAFKA_BROKERS" --topic "$TOPIC" --metrics-addr "" \
    >"$WORK/service.log" 2>&1 &
PIDS+=("$!")
wait_for_http "order service" "http://127.0.0.1:$API_PORT/orders/none" 60 "$WORK/service.log" "${PIDS[-1]}"
env OTEL_SERVICE_NAME=order-consumer "$BIN/order-consumer" --topic "$TOPIC" --group "$RUN_ID" \
    --database-url "$CONSUMER_DB" --brokers "$KAFKA_BROKERS" --metrics-addr "" >"$WORK/consumer.log" 2>&1 &
PIDS+=("$!")

traceparent() { echo "00-$1-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')-01"; }
random_id() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
CREATE="$(random_id)"
ORDER_ID="$(curl -sf -XPOST "http://127.0.0.1:$API_PORT/orders" -H 'Content-Type: application/json' \
    -H "traceparent: $(traceparent "$CREATE")" \
    -d '{"customer_id":"c-1","currency":"EUR","items":[{"sku":"A-1","quantity":2,"unit_price_cents":1250}]}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["order_id"])')"
PAY="$(random_id)"
curl -sf -XPOST "http://127.0.0.1:$API_PORT/orders/$ORDER_ID/pay" -H 'Content-Type: application/json' \
    -H "traceparent: $(traceparent "$PAY")" -d '{"payment_id":"p-1","amount_cents":2500}' >/dev/null
info "order $ORDER_ID created (trace $CREATE) and paid (trace $PAY)"

# Jaeger holds the payment's trace once the consumer's projection transaction is in.
deadline=$((SECONDS + 90))
until curl -sf "$JAEGER_UI/api/traces/$PAY" | python3 -c '
import json, sys
spans = json.load(sys.stdin)["data"][0]["spans"]
sys.exit(0 if any(s["operationName"].startswith("transaction orders") for s in spans) else 1)' 2>/dev/null; do
    ((SECONDS < deadline)) || die "trace $PAY did not reach the consumer's transaction within 90 s (logs: $WORK)"
    sleep 1
done
mkdir -p "$(dirname "$OUT")"
node scripts/jaeger_trace_screenshot.mjs "$JAEGER_UI" "$PAY" "$OUT"
info "saved $OUT"
