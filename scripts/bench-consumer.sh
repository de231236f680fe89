#!/usr/bin/env bash
# Consumer benchmark. The headline: the exactly-once engine (order-consumer) against
# a plain Java consumer written the way a capable team would (bench/java-consumer:
# kafka-clients + JDBC, one transaction per poll batch of up to 5,000 records, then
# commitSync), on the same topic, broker and database server, each run with a fresh
# group and a fresh database, alternating which goes first. Prints every run, the
# medians and engine / Java; fails if the two projections differ in any row.
#
# --full adds the older comparisons: PostgreSQL alone applying the same events with
# the engine's SQL (consumer-bench pg-limit), plain consumption, the naive consumer
# (one transaction and one synchronous commit per record), and a slow effect (5 ms
# per event) with key-level concurrency vs partition-sequential processing.
#
# Needs a running stack (scripts/dev-up.sh prints the variables):
#   SCHEMA_REGISTRY_URL, DATABASE_URL (a role that may CREATE DATABASE)
# By default it starts a private Apache Kafka broker (fresh data in a temp dir, free
# port from 19100) and stops it afterwards. BENCH_KAFKA_BROKERS=host:port uses that
# broker instead. KAFKA_OPTIONS=key=value,... is given to both contenders' consumers,
# ENGINE_ARGS to order-consumer, JAVA_OPTS to the JVM.
# Figures depend on the machine's load: the load average is printed with every run;
# re-run the same command on a quiet machine to refresh them.
#
# Usage: scripts/bench-consumer.sh [--runs N] [--orders N] [--partitions N] [--full]
#   --runs N        pairs of runs (default 5)
#   --orders N      order lifecycles of 3 events (default 20000: 60,000 events)
#   --partitions N  partitions of the topic (default 12)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"
# shellcheck source=scripts/lib/bench_consumer.sh
source "$ROOT/scripts/lib/bench_consumer.sh"

RUNS=5
ORDERS=20000
PARTITIONS=12
FULL=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS="$2"; shift 2 ;;
        --orders) ORDERS="$2"; shift 2 ;;
        --partitions) PARTITIONS="$2"; shift 2 ;;
        --full) FULL=1; shift ;;
        *) echo "usage: $0 [--runs N] [--orders N] [--partitions N] [--full]" >&2; exit 2 ;;
    esac
done

bench_init
TOPIC="bench-orders-$RUN_ID"
RECORDS="$(bench_seed "$TOPIC" "$PARTITIONS" "$ORDERS")"
echo "topic: $TOPIC, $RECORDS events of $ORDERS orders, $PARTITIONS partitions"
echo

# secs: first record received to last record done (the rate's span); wall: the whole
# process (start-up, group join, and for the engine the --exit-when-idle 2 wait and
# its caught-up check; the Java baseline stops on its record count).
row() { printf '| %3s | %-8s | %10s | %8s | %7s | %7s | %8s | %-14s |\n' "$@"; }
row "run" "consumer" "records/s" "records" "secs" "wall" "RSS MiB" "load 1/5/15"
row "---" "--------" "----------" "--------" "-------" "-------" "--------" "--------------"
ENGINE_RATES=()
JAVA_RATES=()
FIRST_ENGINE_DB=""
FIRST_JAVA_DB=""
run_engine() {
    local db rate n secs rss wall
    db="$(bench_fresh_db "engine$1")"
    read -r rate n secs rss wall <<<"$(bench_engine "$TOPIC" "$db")"
    [[ "$n" == "$RECORDS" ]] || die "engine run $1 did $n of $RECORDS records"
    ENGINE_RATES+=("$rate")
    FIRST_ENGINE_DB="${FIRST_ENGINE_DB:-$db}"
    row "$1" "engine" "$rate" "$n" "$secs" "$wall" "$rss" "$(bench_loadavg)"
}
run_java() {
    local db rate n secs rss wall
    db="$(bench_fresh_db "java$1")"
    read -r rate n secs rss wall <<<"$(bench_java "$TOPIC" "$db" "$RECORDS")"
    [[ "$n" == "$RECORDS" ]] || die "Java run $1 did $n of $RECORDS records"
    JAVA_RATES+=("$rate")
    FIRST_JAVA_DB="${FIRST_JAVA_DB:-$db}"
    row "$1" "java" "$rate" "$n" "$secs" "$wall" "$rss" "$(bench_loadavg)"
}
for ((i = 1; i <= RUNS; i++)); do
    # Alternate who goes first, so neither always gets the warmer page cache.
    if ((i % 2 == 1)); then run_engine "$i"; run_java "$i"; else run_java "$i"; run_engine "$i"; fi
done
ENGINE_MEDIAN="$(bench_median "${ENGINE_RATES[@]}")"
JAVA_MEDIAN="$(bench_median "${JAVA_RATES[@]}")"
echo
echo "median records/s: engine $ENGINE_MEDIAN, Java $JAVA_MEDIAN"
WINS=0
for ((i = 0; i < RUNS; i++)); do
    if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 1.5 * float(sys.argv[2]) else 1)' \
        "${ENGINE_RATES[$i]}" "${JAVA_RATES[$i]}"; then WINS=$((WINS + 1)); fi
done
echo "engine / Java: $(bench_ratio "$ENGINE_MEDIAN" "$JAVA_MEDIAN")x (medians); run pairs at >= 1.5x: $WINS of $RUNS"
read -r ORDER_ROWS DEDUP_ROWS <<<"$(bench_compare "$FIRST_ENGINE_DB" "$FIRST_JAVA_DB")" ||
    die "the engine's and the Java baseline's projections differ"
echo "projection: identical row for row ($ORDER_ROWS orders, $DEDUP_ROWS dedup rows)"

if ((FULL)); then
    echo
    NAIVE_RECORDS="${NAIVE_RECORDS:-3000}"
    LIMIT="$("$BIN/consumer-bench" pg-limit --topic "$TOPIC" --count "$RECORDS" --database-url "$(bench_fresh_db limit)")"
    LIMIT_RATE="$(bench_json_field records_per_sec "$LIMIT")"
    echo "PostgreSQL alone, engine's SQL and batch cut: $LIMIT_RATE records/s (engine $(bench_ratio "$ENGINE_MEDIAN" "$LIMIT_RATE")x), load $(bench_loadavg)"
    PLAIN_RATE="$(bench_json_field records_per_sec "$("$BIN/consumer-bench" plain --topic "$TOPIC" --count "$RECORDS")")"
    echo "plain consumption (no processing): $PLAIN_RATE records/s, load $(bench_loadavg)"
    NAIVE_RATE="$(bench_json_field records_per_sec "$("$BIN/consumer-bench" naive --topic "$TOPIC" --count "$NAIVE_RECORDS" --database-url "$(bench_fresh_db naive)")")"
    echo "naive, 1 tx + 1 sync commit per record: $NAIVE_RATE records/s (engine $(bench_ratio "$ENGINE_MEDIAN" "$NAIVE_RATE")x), load $(bench_loadavg)"
    SLOW_TOPIC="bench-slow-$RUN_ID"
    bench_seed "$SLOW_TOPIC" 12 1000 >/dev/null
    read -r KEY_RATE _ <<<"$(bench_engine "$SLOW_TOPIC" "$(bench_fresh_db key)" --bench-effect-delay-ms 5 --ordering key --max-in-flight 1000)"
    read -r PART_RATE _ <<<"$(bench_engine "$SLOW_TOPIC" "$(bench_fresh_db part)" --bench-effect-delay-ms 5 --ordering partition --db-concurrency 12)"
    echo "slow 5 ms effect: key-level $KEY_RATE records/s vs partition-sequential $PART_RATE ($(bench_ratio "$KEY_RATE" "$PART_RATE")x), load $(bench_loadavg)"
fi
echo "end: $(date -u +%FT%TZ), load average $(bench_loadavg)"
