# shellcheck shell=bash
# Shared pieces of the consumer benchmarks (scripts/bench-consumer*.sh): build the
# contenders, a private broker, seeded topics, fresh databases, one run of the engine
# or of the Java baseline (records/s and peak RSS), the row-for-row projection check.
# Source it after scripts/lib/all.sh; it defines functions only. Needs ROOT.

BENCH_JAVA_DIR="$ROOT/bench/java-consumer"

# bench_init: builds order-consumer (release) and the Java baseline, starts a private
# broker unless BENCH_KAFKA_BROKERS is set, and installs the cleanup trap. Sets BIN,
# RUN_ID, BROKER, KAFKA_BROKERS.
bench_init() {
    : "${SCHEMA_REGISTRY_URL:=http://127.0.0.1:8081/apis/ccompat/v7}"
    : "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL (admin role); run scripts/dev-up.sh}"
    export SCHEMA_REGISTRY_URL DATABASE_URL
    log_init
    cargo build --release --quiet -p order-consumer --bins
    BIN="$ROOT/target/release"
    ensure_command mvn maven
    (cd "$BENCH_JAVA_DIR" && mvn -q -B package -DskipTests) >/dev/null
    RUN_ID="$(date +%s)$$"
    KAFKA_PRIVATE_PID=""
    BENCH_DATA_DIR=""
    trap bench_cleanup EXIT
    if [[ -n "${BENCH_KAFKA_BROKERS:-}" ]]; then
        export KAFKA_BROKERS="$BENCH_KAFKA_BROKERS"
        BROKER="$KAFKA_BROKERS"
    else
        BENCH_DATA_DIR="$(mktemp -d /tmp/bench-consumer-kafka.XXXXXX)"
        kafka_start_private "$BENCH_DATA_DIR"
        export KAFKA_BROKERS="$KAFKA_PRIVATE_BOOTSTRAP"
        BROKER="Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_RUNTIME_POM") (fresh, private) on $KAFKA_BROKERS"
    fi
    echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
    echo "broker: $BROKER"
    echo "database: $(psql "$DATABASE_URL" -Atc 'SHOW server_version' 2>/dev/null || echo '?') on ${DATABASE_URL##*@}"
    echo "start: $(date -u +%FT%TZ), load average $(bench_loadavg)"
}

bench_cleanup() {
    # The run's fresh databases live on a shared server: drop them.
    "$BIN/consumer-bench" drop-dbs --prefix "bench_consumer_${RUN_ID}_" >/dev/null 2>&1 || true
    if [[ -n "$KAFKA_PRIVATE_PID" ]]; then kill "$KAFKA_PRIVATE_PID" 2>/dev/null || true; wait "$KAFKA_PRIVATE_PID" 2>/dev/null || true; fi
    if [[ -n "$BENCH_DATA_DIR" ]]; then rm -rf "$BENCH_DATA_DIR"; fi
}

# The 1, 5 and 15-minute load averages.
bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# bench_seed TOPIC PARTITIONS ORDERS [SEED FLAGS...]: prints the number of records.
bench_seed() {
    local topic="$1" partitions="$2" orders="$3"
    shift 3
    "$BIN/consumer-bench" seed --topic "$topic" --partitions "$partitions" --orders "$orders" "$@"
}

# bench_fresh_db NAME: a fresh migrated database of this run; prints its URL.
bench_fresh_db() { "$BIN/consumer-bench" fresh-db --name "bench_consumer_${RUN_ID}_$1"; }

bench_json_field() { # FIELD JSON
    python3 -c 'import json,sys; print(json.loads(sys.argv[2])[sys.argv[1]])' "$1" "$2"
}

# bench_forget_group GROUP: deletes the (empty) consumer group GROUP from the broker,
# so the next run under that name starts from the beginning of the topic.
# A group that stays would make the next run start at its committed offsets and
# measure nothing, so a failure stops the script. (The tool exits 0 when a deletion
# fails; only its output says which.)
bench_forget_group() {
    local out
    [[ -n "${KAFKA_CP:-}" ]] || kafka_classpath
    out="$(kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "$KAFKA_BROKERS" --delete --group "$1" 2>&1)" || true
    if [[ "$out" != *"was successful"* ]]; then
        echo "$out" >&2
        die "could not delete consumer group $1 before the next run"
    fi
}

# bench_engine TOPIC DB_URL [ENGINE FLAGS...]: one order-consumer run on a fresh group
# (BENCH_GROUP names it instead; then forget it before the next run: bench_forget_group).
# Prints "records_per_sec records active_secs peak_rss_mib wall_secs" (wall: the whole
# process, start-up, group join and the idle wait included).
bench_engine() {
    local topic="$1" db="$2" rss_file summary
    shift 2
    rss_file="$(mktemp)"
    # shellcheck disable=SC2086 # ENGINE_ARGS is a list of flags
    summary="$(/usr/bin/time -f "%M %e" -o "$rss_file" "$BIN/order-consumer" --topic "$topic" \
        --group "${BENCH_GROUP:-bench-$RUN_ID-$RANDOM$RANDOM}" --database-url "$db" --metrics-addr "" \
        --exit-when-idle 2 --log-level warn ${ENGINE_ARGS:-} "$@")"
    python3 - "$summary" "$(tail -1 "$rss_file")" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
done = s["processed"] + s["duplicates"] + s["dead_lettered"] + s["dead_letter_skipped"]
secs = max(s["active_secs"], 1e-9)
rss, wall = sys.argv[2].split()
print(f"{done / secs:.0f} {done} {secs:.2f} {int(rss) / 1024:.0f} {wall}")
PY
    rm -f "$rss_file"
}

# bench_java TOPIC DB_URL RECORDS [BASELINE FLAGS...]: one Java baseline run on a
# fresh group (or BENCH_GROUP), stopping after RECORDS records. Same output as bench_engine.
bench_java() {
    local topic="$1" db="$2" records="$3" rss_file summary
    shift 3
    rss_file="$(mktemp)"
    local kafka_opts=()
    local option
    for option in ${KAFKA_OPTIONS:+${KAFKA_OPTIONS//,/ }}; do kafka_opts+=(--kafka-option "$option"); done
    # shellcheck disable=SC2086 # JAVA_OPTS is a list of flags
    summary="$(/usr/bin/time -f "%M %e" -o "$rss_file" java ${JAVA_OPTS:-} \
        -cp "$BENCH_JAVA_DIR/target/classes:$BENCH_JAVA_DIR/target/lib/*" \
        io.orderflow.bench.BaselineConsumer --topic "$topic" --group "${BENCH_GROUP:-bench-java-$RUN_ID-$RANDOM$RANDOM}" \
        --database-url "$db" --registry-url "$SCHEMA_REGISTRY_URL" --brokers "$KAFKA_BROKERS" \
        --expect "$records" ${kafka_opts[@]+"${kafka_opts[@]}"} "$@" 2>/dev/null)"
    python3 - "$summary" "$(tail -1 "$rss_file")" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
rss, wall = sys.argv[2].split()
print(f"{s['records_per_sec']} {s['records']} {s['active_secs']:.2f} {int(rss) / 1024:.0f} {wall}")
PY
    rm -f "$rss_file"
}

# bench_compare DB_A DB_B: fails unless both projections (orders without updated_at,
# and the dedup rows without group and time) are identical row for row. Prints the counts.
bench_compare() {
    local a="$1" b="$2" dir query
    dir="$(mktemp -d)"
    for query in \
        "SELECT order_id, status, customer_id, currency, total_cents, item_count, events_applied, last_event_id, last_event_at FROM orders ORDER BY order_id" \
        "SELECT order_id, event_id, topic, \"partition\", \"offset\" FROM processed_events ORDER BY event_id"; do
        PGOPTIONS='-c TimeZone=UTC' psql "$a" -XAtqc "COPY ($query) TO STDOUT" >"$dir/a"
        PGOPTIONS='-c TimeZone=UTC' psql "$b" -XAtqc "COPY ($query) TO STDOUT" >"$dir/b"
        if ! cmp -s "$dir/a" "$dir/b"; then
            echo "projections differ for: $query" >&2
            diff "$dir/a" "$dir/b" | head -20 >&2
            rm -rf "$dir"
            return 1
        fi
        printf '%s ' "$(wc -l <"$dir/a")"
    done
    echo
    rm -rf "$dir"
}

# bench_median VALUES...: the median.
bench_median() {
    python3 -c 'import statistics,sys; print(f"{statistics.median(float(v) for v in sys.argv[1:]):.0f}")' "$@"
}

# bench_ratio A B: A / B with two decimals.
bench_ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1])/float(sys.argv[2]):.2f}")' "$1" "$2"; }

# bench_ensure_matplotlib: the plots' only dependency, from PyPI when missing.
bench_ensure_matplotlib() {
    python3 -c 'import matplotlib' 2>/dev/null && return 0
    python3 -m pip install --quiet --user matplotlib 2>/dev/null ||
        python3 -m pip install --quiet --user --break-system-packages matplotlib
}

# bench_curve_init USAGE [--flag VAR]... -- "$@": the curve scripts' common start. Sets
# each VAR from the value given to its --flag (a flag not listed, or one without a
# value, prints `usage: SCRIPT USAGE` and exits 2), then bench_init and
# bench_ensure_matplotlib.
bench_curve_init() {
    local usage="$1"
    shift
    local -A var_of=()
    while [[ $# -gt 0 && "$1" != "--" ]]; do
        var_of["$1"]="$2"
        shift 2
    done
    shift
    while [[ $# -gt 0 ]]; do
        if [[ -z "${var_of[$1]:-}" || $# -lt 2 ]]; then
            echo "usage: $0 $usage" >&2
            exit 2
        fi
        printf -v "${var_of[$1]}" '%s' "$2"
        shift 2
    done
    bench_init
    bench_ensure_matplotlib
}
