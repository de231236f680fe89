# shellcheck shell=bash
# Apache Kafka (KRaft) from Maven Central, without the release tarball: resolve the
# runtime's classpath once (scripts/runtime/pom.xml, cached by Maven and in
# ~/.cache/orderflow), write a node's server.properties, format its storage, start it,
# and wait until a metadata request answers (an open port is not enough: the broker
# listens before it has joined the quorum and unfenced itself).
# Needs log.sh, install.sh and services.sh. Source it; it defines functions only.

KAFKA_RUNTIME_POM="$ROOT/scripts/runtime/pom.xml"
ORDERFLOW_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/orderflow"
KAFKA_BROKER_LOG4J="$ROOT/scripts/runtime/log4j2-broker.properties"
KAFKA_TOOLS_LOG4J="$ROOT/scripts/runtime/log4j2-tools.properties"
KAFKA_PROBE="$ROOT/scripts/lib/kafka_probe.py"
# The independent client the readiness probe and the interop tests use, pinned there.
PY_REQUIREMENTS="$ROOT/schemas/tests/python/requirements.txt"

# Sets KAFKA_CP to the runtime classpath, resolving it with Maven the first time
# (and again only when pom.xml changes or a jar went missing from ~/.m2).
kafka_classpath() {
    ensure_command java openjdk-17-jre-headless
    ensure_command mvn maven
    local key file
    key="$(sha256sum "$KAFKA_RUNTIME_POM" | cut -c1-16)"
    file="$ORDERFLOW_CACHE/kafka-runtime-$key.classpath"
    if [ -s "$file" ] && _classpath_complete "$file"; then
        KAFKA_CP="$(cat "$file")"
        return 0
    fi
    mkdir -p "$ORDERFLOW_CACHE"
    info "resolving the Kafka runtime from Maven Central (first run only)"
    local mvn_log
    mvn_log="$(mktemp)"
    if ! mvn -B -q -f "$KAFKA_RUNTIME_POM" dependency:build-classpath \
        -Dmdep.includeScope=runtime -Dmdep.outputFile="$file.tmp" </dev/null >"$mvn_log" 2>&1; then
        print_log_tail "$mvn_log" 30
        die "mvn could not resolve scripts/runtime/pom.xml (Maven Central reachable?)"
    fi
    rm -f "$mvn_log"
    mv "$file.tmp" "$file"
    KAFKA_CP="$(cat "$file")"
}

_classpath_complete() {
    local jar
    while IFS= read -r jar; do
        [ -f "$jar" ] || return 1
    done < <(tr ':' '\n' <"$1")
}

# Installs Python's confluent-kafka (the version pinned in PY_REQUIREMENTS) when it is
# missing or another version.
ensure_python_confluent_kafka() {
    ensure_command python3 python3
    local pinned
    pinned="$(sed -n 's/^confluent-kafka.*==\([0-9.]*\).*/\1/p' "$PY_REQUIREMENTS")"
    if python3 -c 'import sys, fastavro, confluent_kafka; from importlib.metadata import version; sys.exit(version("confluent-kafka") != sys.argv[1])' "$pinned" 2>/dev/null; then
        return 0
    fi
    info "pip install -r ${PY_REQUIREMENTS#"$ROOT"/} (confluent-kafka $pinned)"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r "$PY_REQUIREMENTS" </dev/null \
        || die "pip install -r $PY_REQUIREMENTS failed"
}

# kafka_tool CLASS ARGS...: runs one of Kafka's Java tools on the runtime classpath.
kafka_tool() {
    java -Xmx256m -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_CP" "$@"
}

# kafka_random_cluster_id: prints a new cluster id (22-character base64url UUID).
kafka_random_cluster_id() {
    kafka_tool kafka.tools.StorageTool random-uuid
}

# kafka_write_config FILE NODE_ID PORT CONTROLLER_PORT VOTERS DATA_DIR REPLICAS [test]
# Writes a combined broker+controller node's server.properties. VOTERS is the static
# quorum (`1@127.0.0.1:9093,...`). REPLICAS is 1 for a single node, 3 for the cluster
# (then min.insync.replicas=2 and unclean leader election off). With `test`, groups of
# the KIP-848 consumer protocol get a 6 s session and 1 s heartbeats (the broker's
# defaults and minimums are 45 s and 5 s), so crash tests do not wait 45 s for a dead
# member's partitions.
kafka_write_config() {
    local file="$1" node="$2" port="$3" cport="$4" voters="$5" data="$6" replicas="$7" profile="${8:-}"
    local min_isr=1
    [ "$replicas" -ge 3 ] && min_isr=2
    mkdir -p "$(dirname "$file")" "$data"
    cat >"$file" <<PROPS
# Written by scripts/lib/kafka.sh: one combined KRaft broker+controller on loopback.
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
num.partitions=3
default.replication.factor=$replicas
min.insync.replicas=$min_isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$replicas
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
PROPS
    if [ "$profile" = "test" ]; then
        cat >>"$file" <<PROPS
group.consumer.session.timeout.ms=6000
group.consumer.min.session.timeout.ms=6000
group.consumer.heartbeat.interval.ms=1000
group.consumer.min.heartbeat.interval.ms=1000
PROPS
    fi
}

# kafka_format FILE CLUSTER_ID: formats the node's storage unless it already is.
kafka_format() {
    local file="$1" cid="$2" out
    if ! out="$(kafka_tool kafka.tools.StorageTool format --ignore-formatted -t "$cid" -c "$file" 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "kafka StorageTool format failed for $file"
    fi
}

# kafka_jvm_args HEAP: the JVM flags of the official start script, with HEAP (e.g. 1g).
kafka_jvm_args() {
    KAFKA_JVM_ARGS=(java "-Xms256m" "-Xmx$1" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
        -Djava.awt.headless=true "-Dlog4j2.configurationFile=$KAFKA_BROKER_LOG4J"
        -cp "$KAFKA_CP" kafka.Kafka)
}

# kafka_wait_ready NAME BOOTSTRAP BROKERS TIMEOUT_S LOGFILE PID: waits until a metadata
# request to BOOTSTRAP answers and lists BROKERS brokers; fails early when PID exits.
kafka_wait_ready() {
    local name="$1" bootstrap="$2" brokers="$3" limit="$4" logfile="$5" pid="$6"
    local deadline=$((SECONDS + limit)) out=""
    until out="$(python3 "$KAFKA_PROBE" "$bootstrap" "$brokers" 2>&1)"; do
        if [ -n "$pid" ] && ! pid_running "$pid"; then
            fail_service "$name" "$logfile" "process $pid exited before answering metadata requests on $bootstrap"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail_service "$name" "$logfile" "no metadata answer with $brokers broker(s) from $bootstrap within ${limit} s (last: $out)"
        fi
        sleep 0.5
    done
}

# kafka_start_private DIR: starts a fresh single-node broker with its data in DIR on
# free ports (from 19100) as a child of the calling script, waits until it answers
# metadata requests, and sets KAFKA_PRIVATE_PID and KAFKA_PRIVATE_BOOTSTRAP. For
# benchmarks, which want a broker no earlier run has filled.
kafka_start_private() {
    local dir="$1" port cport
    kafka_classpath
    ensure_python_confluent_kafka
    port="$(find_free_port 19100)"
    cport="$(find_free_port $((port + 1)))"
    kafka_write_config "$dir/server.properties" 1 "$port" "$cport" "1@127.0.0.1:$cport" "$dir/data" 1
    kafka_format "$dir/server.properties" "$(kafka_random_cluster_id)"
    kafka_jvm_args 1g
    "${KAFKA_JVM_ARGS[@]}" "$dir/server.properties" >"$dir/broker.log" 2>&1 </dev/null &
    KAFKA_PRIVATE_PID=$!
    KAFKA_PRIVATE_BOOTSTRAP="127.0.0.1:$port"
    kafka_wait_ready "kafka (private)" "$KAFKA_PRIVATE_BOOTSTRAP" 1 120 "$dir/broker.log" "$KAFKA_PRIVATE_PID"
}
