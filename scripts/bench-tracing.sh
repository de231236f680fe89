#!/usr/bin/env bash
# The cost of tracing (issue 20): the consumer and the order API with span export off,
# on at 100% sampling and on at 1% (OTEL_TRACES_SAMPLER=parentbased_traceidratio,
# OTEL_TRACES_SAMPLER_ARG=0.01), exporting over OTLP/HTTP to a real Jaeger (a private
# one, in memory, scripts/lib/jaeger.sh) on this machine. In one invocation, on the same
# broker, database server and Jaeger, the three modes run in a rotating order in every
# round (so none always runs first or last), each run on a fresh database (and, for the
# consumer, a fresh group). Prints every run with the load average, then the medians and
# each mode's throughput as a ratio of "off". Not a timed test: figures depend on the
# machine's load, which is printed with every run.
#
#   consumer: order-consumer over one topic of events written by `order-producer
#     generate` (every record carries a sampled traceparent, as in production),
#     records/s over its active span; p99 of orderflow_consumer_processing_seconds
#     (dispatch to done, per record; interpolated in the histogram's buckets as
#     Prometheus' histogram_quantile does), read from its last /metrics scrape.
#   api: POST /orders at saturation with wrk (BENCH_CONNECTIONS, default 32), answered
#     orders/s (failed requests counted apart) and p99; the relay publishes meanwhile
#     (its publish spans are part of the cost).
#
# Needs SCHEMA_REGISTRY_URL and DATABASE_URL (a role that may CREATE DATABASE); starts a
# private broker and a private Jaeger and stops both.
# Usage: scripts/bench-tracing.sh [--runs N] [--orders N] [--api-secs S] [--only consumer|api]
#   --runs N      rounds, each running all three modes (default 3)
#   --orders N    order lifecycles of the consumer's topic (default 20000)
#   --api-secs S  seconds of each wrk run (default 15)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
# shellcheck source=scripts/lib/bench_consumer.sh
source "$ROOT/scripts/lib/bench_consumer.sh"

RUNS=3
ORDERS=20000
API_SECS=15
ONLY=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --orders) ORDERS="$2"; shift 2 ;;
        --api-secs) API_SECS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        *) echo "usage: $0 [--runs N] [--orders N] [--api-secs S] [--only consumer|api]" >&2; exit 2 ;;
    esac
done
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
MODES=(off all 1pct)

bench_init
ensure_command wrk wrk
cargo build --release --quiet -p order-producer --bins
WORK="$(mktemp -d /tmp/bench-tracing.XXXXXX)"
JAEGER_PID="" SERVICE_PID=""
cleanup() {
    for pid in "$SERVICE_PID" "$JAEGER_PID"; do
        if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    done
    psql -q "$DATABASE_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'bench_tracing_${RUN_ID}_%'" 2>/dev/null |
        while read -r db; do psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
    rm -rf "$WORK"
    bench_cleanup
}
trap cleanup EXIT
jaeger_start_private "$WORK"
echo "jaeger: $JAEGER_VERSION (private, in memory), OTLP/HTTP $JAEGER_OTLP_HTTP"

# mode_env MODE: sets MODE_ENV to the `env` arguments of MODE. Callers start
# `env "${MODE_ENV[@]}" BINARY ... &` themselves, so that $! is the binary's own PID
# (env execs it): a shell function run with & is a subshell, and killing its PID
# left the service running.
mode_env() {
    case "$1" in
        off) MODE_ENV=(-u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_TRACES_SAMPLER -u OTEL_TRACES_SAMPLER_ARG) ;;
        all) MODE_ENV=(OTEL_EXPORTER_OTLP_ENDPOINT="$JAEGER_OTLP_HTTP" OTEL_TRACES_SAMPLER=parentbased_always_on
            OTEL_SERVICE_NAME="bench-$1") ;;
        1pct) MODE_ENV=(OTEL_EXPORTER_OTLP_ENDPOINT="$JAEGER_OTLP_HTTP" OTEL_TRACES_SAMPLER=parentbased_traceidratio
            OTEL_TRACES_SAMPLER_ARG=0.01 OTEL_SERVICE_NAME="bench-$1") ;;
    esac
}

# metric FILE NAME: the value of an unlabelled counter in a /metrics body (0 if absent).
metric() { awk -v n="$2" '$1 == n {print $2; found=1} END {if (!found) print 0}' "$1"; }

# p99_of FILE HISTOGRAM: the 99th percentile in milliseconds, interpolated in the
# histogram's buckets (summed over its label sets), as histogram_quantile does.
p99_of() {
    python3 - "$1" "$2" <<'PY'
import re, sys
buckets = {}
for line in open(sys.argv[1]):
    m = re.match(re.escape(sys.argv[2]) + r'_bucket\{.*le="([^"]+)".*\} (\S+)', line)
    if m:
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        buckets[le] = buckets.get(le, 0.0) + float(m.group(2))
bounds = sorted(buckets)
total = buckets.get(float("inf"), 0.0)
if total == 0:
    print("?"); sys.exit()
rank, lower, below = 0.99 * total, 0.0, 0.0
for le in bounds:
    if buckets[le] >= rank:
        if le == float("inf"):
            print(f">{lower * 1000:g}"); sys.exit()
        print(f"{(lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1e-9)) * 1000:.1f}")
        sys.exit()
    lower, below = le, buckets[le]
PY
}

# scrape_until_exit PID URL FILE: keeps the last /metrics body of a process in FILE.
scrape_until_exit() {
    while kill -0 "$1" 2>/dev/null; do
        curl -sf "$2" -o "$3.tmp" 2>/dev/null && mv "$3.tmp" "$3"
        sleep 0.25
    done
}

fresh_db() { # fresh_db NAME: an empty database of this run; prints its URL
    psql -q "$DATABASE_URL" -c "CREATE DATABASE bench_tracing_${RUN_ID}_$1" >/dev/null
    echo "${DATABASE_URL%/*}/bench_tracing_${RUN_ID}_$1"
}

row() { printf '| %5s | %-8s | %-4s | %10s | %9s | %6s | %9s | %9s | %-14s |\n' "$@"; }
header() {
    row "round" "bench" "mode" "per sec" "p99 ms" "failed" "spans out" "dropped" "load 1/5/15"
    row "-----" "--------" "----" "----------" "---------" "------" "---------" "---------" "--------------"
}
declare -A RATES P99S

# consumer_run ROUND MODE: one order-consumer run over $TOPIC on a fresh database.
consumer_run() {
    local round="$1" mode="$2" db port out metrics rate
    db="$(bench_fresh_db "trace_${mode}_$round")"
    port="$(find_free_port 24700)"
    out="$WORK/consumer-$mode-$round.json"
    metrics="$WORK/consumer-$mode-$round.metrics"
    : >"$metrics"
    mode_env "$mode"
    # shellcheck disable=SC2086 # ENGINE_ARGS is a list of flags
    env "${MODE_ENV[@]}" "$BIN/order-consumer" --topic "$TOPIC" --group "bench-trace-$RUN_ID-$mode-$round" \
        --database-url "$db" --metrics-addr "127.0.0.1:$port" --exit-when-idle 2 --log-level warn \
        ${ENGINE_ARGS:-} >"$out" &
    local pid=$!
    scrape_until_exit "$pid" "http://127.0.0.1:$port/metrics" "$metrics" &
    local scraper=$!
    wait "$pid" || die "order-consumer ($mode, round $round) failed"
    wait "$scraper" || true
    rate="$(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
done = s["processed"] + s["duplicates"] + s["dead_lettered"] + s["dead_letter_skipped"]
if done != int(sys.argv[2]): sys.exit(f"did {done} of {sys.argv[2]} records")
secs = max(s["active_secs"], 1e-9)
print(round(done / secs))' "$out" "$RECORDS")" || die "consumer run $mode/$round incomplete"
    RATES[consumer,$mode]+="$rate "
    P99S[consumer,$mode]+="$(p99_of "$metrics" orderflow_consumer_processing_seconds) "
    row "$round" "consumer" "$mode" "$rate" "$(p99_of "$metrics" orderflow_consumer_processing_seconds)" 0 \
        "$(metric "$metrics" orderflow_trace_spans_exported_total)" \
        "$(metric "$metrics" orderflow_trace_spans_dropped_total)" "$(bench_loadavg)"
}

# api_run ROUND MODE: order-producer serve on a fresh database, wrk POST /orders at
# saturation for API_SECS, then the service's span counters.
api_run() {
    local round="$1" mode="$2" db port ops json
    db="$(fresh_db "api_${mode}_$round")"
    port="$(find_free_port 24600)"
    ops="$(find_free_port $((port + 1)))"
    mode_env "$mode"
    env "${MODE_ENV[@]}" "$BIN/order-producer" serve --listen "127.0.0.1:$port" --metrics-addr "127.0.0.1:$ops" \
        --database-url "$db" --brokers "$KAFKA_BROKERS" --topic "$API_TOPIC" --log-level warn \
        --api-tokens-file "$WORK/tokens" --rate-limit-per-second 0 >"$WORK/serve-$mode-$round.log" 2>&1 &
    SERVICE_PID=$!
    wait_for_http "order service" "http://127.0.0.1:$ops/readyz" 60 "$WORK/serve-$mode-$round.log" "$SERVICE_PID"
    json="$(BENCH_METHOD=POST BENCH_DELAY_MS=0 wrk -t2 -c"$CONNECTIONS" -d"${API_SECS}s" --latency \
        -s scripts/bench/order_api.lua "http://127.0.0.1:$port" | tail -n 1)"
    curl -sf "http://127.0.0.1:$ops/metrics" -o "$WORK/api.metrics" || : >"$WORK/api.metrics"
    kill "$SERVICE_PID"
    wait "$SERVICE_PID" 2>/dev/null || true
    SERVICE_PID=""
    # Throughput counts the answered orders only; a failed request (a 503 when the
    # service is at its limit of concurrent requests or its pool times out, a socket
    # error) is counted in its own column, so an overloaded run shows as one.
    local rps p99 failed
    read -r rps p99 failed <<<"$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); bad=j["non2xx"] + j["socket_errors"]; print(round((j["requests"] - bad) / j["secs"]), j["p99_ms"], bad)' "$json")"
    RATES[api,$mode]+="$rps "
    P99S[api,$mode]+="$p99 "
    row "$round" "api" "$mode" "$rps" "$p99" "$failed" "$(metric "$WORK/api.metrics" orderflow_trace_spans_exported_total)" \
        "$(metric "$WORK/api.metrics" orderflow_trace_spans_dropped_total)" "$(bench_loadavg)"
}

if [[ "$ONLY" != api ]]; then
    TOPIC="bench-trace-$RUN_ID"
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --create \
        --topic "$TOPIC" --partitions 12 --replication-factor 1 >/dev/null
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --create \
        --topic "$TOPIC.dlq" --partitions 12 --replication-factor 1 >/dev/null
    RECORDS=$((ORDERS * 3))
    env -u OTEL_EXPORTER_OTLP_ENDPOINT "$BIN/order-producer" generate --topic "$TOPIC" --brokers "$KAFKA_BROKERS" \
        --count "$RECORDS" --orders "$ORDERS" --rate 0 --seed 20 --metrics-addr "" --log-level warn >/dev/null
    echo "consumer topic: $TOPIC, $RECORDS events of $ORDERS orders (order-producer generate), 12 partitions"
fi
if [[ "$ONLY" != consumer ]]; then
    API_TOPIC="bench-trace-api-$RUN_ID"
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --create \
        --topic "$API_TOPIC" --partitions 6 --replication-factor 1 >/dev/null
    printf 'bench:%s\n' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >"$WORK/tokens"
    API_TOKEN="$(cut -d: -f2 "$WORK/tokens")"
    export API_TOKEN
    echo "api: POST /orders, wrk $CONNECTIONS connections, 2 threads, $API_SECS s per run, topic $API_TOPIC (6 partitions)"
fi
echo
header
for ((round = 1; round <= RUNS; round++)); do
    # Rotate: round 1 off,all,1pct; round 2 all,1pct,off; round 3 1pct,off,all; ...
    order=()
    for ((k = 0; k < 3; k++)); do order+=("${MODES[$(((round - 1 + k) % 3))]}"); done
    for mode in "${order[@]}"; do
        if [[ "$ONLY" != api ]]; then consumer_run "$round" "$mode"; fi
        if [[ "$ONLY" != consumer ]]; then api_run "$round" "$mode"; fi
    done
done

echo
echo "medians over $RUNS rounds (ratio: the mode's median throughput / off's):"
printf '| %-8s | %-4s | %10s | %6s | %9s |\n' "bench" "mode" "per sec" "ratio" "p99 ms"
printf '| %-8s | %-4s | %10s | %6s | %9s |\n' "--------" "----" "----------" "------" "---------"
for bench in consumer api; do
    [[ -n "${RATES[$bench,off]:-}" ]] || continue
    # shellcheck disable=SC2086 # space-separated lists
    off="$(bench_median ${RATES[$bench,off]})"
    for mode in "${MODES[@]}"; do
        # shellcheck disable=SC2086
        median="$(bench_median ${RATES[$bench,$mode]})"
        # shellcheck disable=SC2086
        p99="$(python3 -c 'import statistics,sys; v=[float(x) for x in sys.argv[1:] if x.replace(".","",1).isdigit()]; print(f"{statistics.median(v):.1f}" if v else "?")' ${P99S[$bench,$mode]})"
        printf '| %-8s | %-4s | %10s | %5sx | %9s |\n' "$bench" "$mode" "$median" "$(bench_ratio "$median" "$off")" "$p99"
    done
done
echo "end: $(date -u +%FT%TZ), load average $(bench_loadavg)"
