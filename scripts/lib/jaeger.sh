# shellcheck shell=bash
# Jaeger v2 (the OpenTelemetry-collector based all-in-one) for the dev stack and the
# tracing tests. There is no release binary to download here and `go install
# ...@VERSION` is refused (Jaeger's go.mod has replace directives), so a small Go module
# of our own pulls it in as a tool and `go build` makes the binary, once: it is cached
# under ~/.cache/orderflow with its GOPATH and GOCACHE, so a second run (or a machine that
# kept the cache) starts at once. A cold build takes minutes (about 7 min of 2 cores),
# which is why it runs at the lowest CPU priority.
# The config it is started with binds every listener to 127.0.0.1 on ports the caller
# chooses (the default all-in-one listens on all interfaces).
# Needs log.sh, install.sh and services.sh. Source it; it defines functions only.

JAEGER_VERSION="v1.75.0"
JAEGER_MODULE="github.com/jaegertracing/jaeger"
ORDERFLOW_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow"
JAEGER_CACHE="$ORDERFLOW_CACHE/jaeger-$JAEGER_VERSION"
# Where the binary is looked for first; tests read the same variable.
JAEGER_BIN="${JAEGER_BIN:-$JAEGER_CACHE/jaeger}"

# _jaeger_go_env: the Go environment of the build, all inside the cache so a second run
# finds the downloaded modules and the compiled packages.
_jaeger_go_env() {
    printf '%s\n' "GOPATH=$ORDERFLOW_CACHE/go" "GOMODCACHE=$ORDERFLOW_CACHE/go/pkg/mod" \
        "GOCACHE=$ORDERFLOW_CACHE/go-build" "GOFLAGS=-mod=mod" "GOTOOLCHAIN=local"
}

# jaeger_ensure_binary: sets JAEGER_BIN to a runnable Jaeger, building it the first time.
jaeger_ensure_binary() {
    if [ -x "$JAEGER_BIN" ]; then
        return 0
    fi
    ensure_command go golang-go
    local module="$JAEGER_CACHE/build" build_log started=$SECONDS
    local -a env_vars
    mapfile -t env_vars < <(_jaeger_go_env)
    mkdir -p "$module"
    build_log="$JAEGER_CACHE/build.log"
    info "building Jaeger $JAEGER_VERSION with Go (first run only, several minutes; log: $build_log)"
    (
        cd "$module" || exit 1
        if [ ! -f go.mod ]; then
            env "${env_vars[@]}" go mod init orderflow-jaeger-build || exit 1
        fi
        if ! grep -q "$JAEGER_MODULE $JAEGER_VERSION" go.mod; then
            env "${env_vars[@]}" go get -tool "$JAEGER_MODULE/cmd/jaeger@$JAEGER_VERSION" || exit 1
        fi
        env "${env_vars[@]}" nice -n 19 go build -trimpath -o "$JAEGER_BIN.tmp" "$JAEGER_MODULE/cmd/jaeger" || exit 1
        mv "$JAEGER_BIN.tmp" "$JAEGER_BIN"
    ) </dev/null >"$build_log" 2>&1 || {
        print_log_tail "$build_log" 30
        die "building Jaeger $JAEGER_VERSION failed (Go module proxy reachable?)"
    }
    info "Jaeger built in $((SECONDS - started)) s: $JAEGER_BIN"
}

# jaeger_write_config FILE OTLP_GRPC OTLP_HTTP QUERY_HTTP QUERY_GRPC HEALTH METRICS
# Writes an all-in-one config (in-memory storage) whose listeners are all on 127.0.0.1 at
# the given ports. Only what the pipeline uses is enabled: the OTLP receiver, the query
# API and UI, the health check and Jaeger's own metrics.
jaeger_write_config() {
    local file="$1" grpc="$2" http="$3" qhttp="$4" qgrpc="$5" health="$6" metrics="$7"
    local ui=""
    # JAEGER_UI_ASSETS: a built jaeger-ui (its build/ folder) for the web UI; the Go
    # build only has a placeholder page in its place.
    if [ -n "${JAEGER_UI_ASSETS:-}" ]; then
        ui="    ui:
      assets_path: $JAEGER_UI_ASSETS"
    fi
    mkdir -p "$(dirname "$file")"
    cat >"$file" <<YAML
# Written by scripts/lib/jaeger.sh: Jaeger all-in-one, in-memory, loopback only.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: $metrics
    logs:
      level: info
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$health
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:$qhttp
    grpc:
      endpoint: 127.0.0.1:$qgrpc
$ui
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$grpc
      http:
        endpoint: 127.0.0.1:$http
processors:
  batch:
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
}

# jaeger_start_private DIR: starts Jaeger from DIR/config.yaml-to-be on free ports (from
# 16600) as a child of the calling script and waits until its query API answers. Sets
# JAEGER_PID, JAEGER_OTLP_HTTP (the OTLP/HTTP base URL for OTEL_EXPORTER_OTLP_ENDPOINT)
# and JAEGER_UI (the UI and query API base URL).
jaeger_start_private() {
    local dir="$1" grpc http qhttp qgrpc health metrics
    jaeger_ensure_binary
    grpc="$(find_free_port 16600)"
    http="$(find_free_port $((grpc + 1)))"
    qhttp="$(find_free_port $((http + 1)))"
    qgrpc="$(find_free_port $((qhttp + 1)))"
    health="$(find_free_port $((qgrpc + 1)))"
    metrics="$(find_free_port $((health + 1)))"
    jaeger_write_config "$dir/jaeger.yaml" "$grpc" "$http" "$qhttp" "$qgrpc" "$health" "$metrics"
    "$JAEGER_BIN" --config "$dir/jaeger.yaml" >"$dir/jaeger.log" 2>&1 </dev/null &
    # shellcheck disable=SC2034 # read by the scripts that call this function
    JAEGER_PID=$!
    # shellcheck disable=SC2034 # read by the scripts that call this function
    JAEGER_OTLP_HTTP="http://127.0.0.1:$http"
    JAEGER_UI="http://127.0.0.1:$qhttp"
    wait_for_http "jaeger" "$JAEGER_UI/api/services" 60 "$dir/jaeger.log" "$JAEGER_PID"
}
