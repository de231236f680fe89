#!/usr/bin/env bash
# Coverage-guided fuzzing of the bad-input paths (not part of scripts/test.sh: minutes
# per target). See RELIABILITY.md "Bad input, measured" for results.
#
# Fuzz targets (fuzz/, its own cargo workspace; cargo-fuzz + libFuzzer on STABLE Rust
# with --sanitizer none, so no -Z flag is used):
#   decode_record   the consumer's EventDecoder: wire format, Avro body, schema
#                   resolution (writer schemas v1 and v2 in memory), validation, key
#   order_request   the order API's request bodies (create/pay/ship/cancel): JSON
#                   parsing, limits, the event's business rules, Avro round trip
# Each target runs for N minutes (one at a time) from fuzz/corpus/<target>/ (committed
# seeds) into fuzz/work/<target>/ (not committed); crashes land in
# fuzz/artifacts/<target>/. Prints inputs tried, corpus size, coverage and crashes.
#
# --api: Schemathesis (from PyPI) against the running order API's OpenAPI document.
# `order-producer serve` runs on a free port from 24600 with a fresh database, a topic
# of its own on KAFKA_BROKERS (default 127.0.0.1:9092) and the registry at
# SCHEMA_REGISTRY_URL; DATABASE_URL must be a role that may CREATE DATABASE.
#
# Usage: scripts/fuzz.sh [--minutes N] [--api] [--api-examples N] [TARGET...]
#   no TARGET and no --api: every fuzz target; --api alone: only Schemathesis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"

ALL_TARGETS=(decode_record order_request)
MINUTES=10
API=0
API_EXAMPLES=""
TARGETS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="${2:?--minutes needs a number}"; shift 2 ;;
        --api) API=1; shift ;;
        --api-examples) API_EXAMPLES="${2:?--api-examples needs a number}"; shift 2 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
[[ "$MINUTES" =~ ^[0-9]+$ ]] || { echo "--minutes takes whole minutes" >&2; exit 2; }
if [ ${#TARGETS[@]} -eq 0 ] && [ "$API" -eq 0 ]; then TARGETS=("${ALL_TARGETS[@]}"); fi
for target in "${TARGETS[@]}"; do
    [[ " ${ALL_TARGETS[*]} " == *" $target "* ]] || { echo "unknown target $target (${ALL_TARGETS[*]})" >&2; exit 2; }
done
log_init
echo "machine: $(nproc) CPUs, $(awk '/model name/ {sub(/^.*: /, ""); print; exit}' /proc/cpuinfo), $(rustc --version)"

# One line of figures from a libFuzzer log: the last status line and the final stats.
fuzz_summary() {
    local target="$1" log="$2" artifacts="$3" corpus="$4"
    local status execs rate crashes inputs bytes
    status="$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    crashes="$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)"
    inputs="$(find "$corpus" -type f | wc -l)"
    bytes="$(du -sk --apparent-size "$corpus" | cut -f1)"
    # libFuzzer's corp: is the corpus it keeps after reductions; the directory also holds
    # inputs it has since replaced.
    printf '%s: %s execs (%s/s) in %s min; corpus dir %s files (%s KiB); libFuzzer %s; crashes %s (%s)\n' \
        "$target" "${execs:-?}" "${rate:-?}" "$MINUTES" "$inputs" "$bytes" \
        "$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$status" || echo 'cov: ?')" "$crashes" "$artifacts"
}

run_fuzz_targets() {
    if ! command -v cargo-fuzz >/dev/null 2>&1; then
        run_step "install cargo-fuzz (crates.io)" cargo install cargo-fuzz --locked
    fi
    local missing=0 target
    for target in "${ALL_TARGETS[@]}"; do
        [ -d "fuzz/corpus/$target" ] || missing=1
    done
    if [ "$missing" -eq 1 ]; then
        (cd fuzz && run_step "write the seed corpora" cargo run --quiet --example make_seeds -- corpus)
    fi
    # --sanitizer none: AddressSanitizer needs -Zsanitizer on stable 1.95; the code under
    # test forbids unsafe, so the finds are panics, overflows (debug assertions are on),
    # hangs and memory blow-ups, which libFuzzer sees without a sanitizer.
    local fuzz_flags=(--sanitizer none)
    # The instrumented build shares nothing with normal builds, so it uses fuzz/target,
    # not a shared CARGO_TARGET_DIR whose lock it would hold for minutes.
    run_step "build the fuzz targets (instrumented, release with debug assertions)" \
        bash -c "cd fuzz && env -u CARGO_TARGET_DIR cargo fuzz build ${fuzz_flags[*]}"
    local summaries=()
    for target in "${TARGETS[@]}"; do
        local work="fuzz/work/$target" artifacts="fuzz/artifacts/$target"
        local log="fuzz/work/$target.log"
        mkdir -p "$work" "$artifacts"
        step "fuzz $target for $MINUTES min (log: $log)"
        local rc=0
        # The first corpus directory receives new inputs; the committed seeds stay as they are.
        (cd fuzz && env -u CARGO_TARGET_DIR cargo fuzz run "${fuzz_flags[@]}" "$target" "work/$target" "corpus/$target" -- \
            -max_total_time=$((MINUTES * 60)) -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="artifacts/$target/") >"$log" 2>&1 </dev/null || rc=$?
        summaries+=("$(fuzz_summary "$target" "$log" "$artifacts" "$work")")
        if [ "$rc" -ne 0 ]; then
            fail_line "$target stopped with code $rc: a finding, see $artifacts and $log"
            print_log_tail "$log" 30
        fi
        step_ok "${summaries[-1]}"
    done
    printf '%s\n' "${summaries[@]}"
}

run_api_fuzz() {
    : "${SCHEMA_REGISTRY_URL:=http://127.0.0.1:8081/apis/ccompat/v7}"
    : "${DATABASE_URL:?DATABASE_URL must point at PostgreSQL (admin role); run scripts/dev-up.sh --infra-only}"
    : "${KAFKA_BROKERS:=127.0.0.1:9092}"
    export SCHEMA_REGISTRY_URL
    if ! command -v schemathesis >/dev/null 2>&1; then
        run_step "install schemathesis (PyPI)" python3 -m pip install --quiet schemathesis
    fi
    run_step "build order-producer" cargo build --quiet -p order-producer --bin order-producer
    local bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/order-producer"
    local run_id db_name db_url work topic port ops_port token
    run_id="$(date +%s)$$"
    db_name="fuzz_api_$run_id"
    db_url="${DATABASE_URL%/*}/$db_name"
    topic="fuzz-api-$run_id"
    work="$(mktemp -d /tmp/fuzz-api.XXXXXX)"
    API_CLEANUP=(psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db_name")
    API_WORK="$work"
    API_TOPIC="$topic"
    kafka_classpath
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --create \
        --topic "$topic" --partitions 3 --replication-factor 1 >/dev/null
    psql -q "$DATABASE_URL" -c "CREATE DATABASE $db_name" >/dev/null
    port="$(find_free_port 24600)"
    ops_port="$(find_free_port $((port + 1)))"
    token="fuzz-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    printf 'fuzz:%s\n' "$token" >"$work/tokens"
    "$bin" serve --listen "127.0.0.1:$port" --metrics-addr "127.0.0.1:$ops_port" \
        --database-url "$db_url" --brokers "$KAFKA_BROKERS" --topic "$topic" \
        --api-tokens-file "$work/tokens" --rate-limit-per-second 0 --log-level warn \
        >"$work/service.log" 2>&1 &
    SERVICE_PID=$!
    wait_for_http "order service" "http://127.0.0.1:$ops_port/readyz" 60 "$work/service.log" "$SERVICE_PID"
    step "schemathesis against http://127.0.0.1:$port/openapi.json (all checks)"
    local args=(--config-file "$ROOT/scripts/lib/schemathesis.toml"
        run "http://127.0.0.1:$port/openapi.json" --url "http://127.0.0.1:$port"
        --checks all --workers 1 --report junit --report-dir "$work/report")
    if [ -n "$API_EXAMPLES" ]; then args+=(--max-examples "$API_EXAMPLES"); fi
    local rc=0
    FUZZ_API_TOKEN="$token" PYTHONPATH="$ROOT/scripts/lib${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
        schemathesis "${args[@]}" </dev/null | tee "$work/schemathesis.log" || rc=$?
    # The service's own count of the requests it answered, by status.
    info "$(curl -s "http://127.0.0.1:$ops_port/metrics" | awk -F'status="' '
        /^orderflow_order_api_requests_total[{]/ { split($2, a, "\""); v = $0; sub(/.* /, "", v); n[a[1]] += v; t += v }
        END { printf "service answered %d requests, by status:", t; for (s in n) printf " %s=%d", s, n[s] }')"
    if [ "$rc" -ne 0 ]; then
        fail_line "schemathesis found failures (exit code $rc); see above"
        print_log_tail "$work/service.log" 20
        return "$rc"
    fi
    step_ok "no failures"
}

SERVICE_PID="" API_WORK="" API_TOPIC="" API_CLEANUP=()
cleanup() {
    if [ -n "$SERVICE_PID" ]; then kill "$SERVICE_PID" 2>/dev/null || true; wait "$SERVICE_PID" 2>/dev/null || true; fi
    if [ ${#API_CLEANUP[@]} -gt 0 ]; then "${API_CLEANUP[@]}" >/dev/null 2>&1 || true; fi
    if [ -n "$API_TOPIC" ]; then
        kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
            --delete --topic "$API_TOPIC" >/dev/null 2>&1 || true
    fi
    if [ -n "$API_WORK" ]; then rm -rf "$API_WORK"; fi
}
trap cleanup EXIT

if [ ${#TARGETS[@]} -gt 0 ]; then run_fuzz_targets; fi
if [ "$API" -eq 1 ]; then run_api_fuzz; fi
