#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) with a SASL_SSL client listener, for the tests of
# orderflow's Kafka security settings. Generates a CA, a broker certificate for
# 127.0.0.1/localhost signed by it, and a second CA the broker does not use (for the
# untrusted-certificate case); creates the user `orderflow` for SCRAM-SHA-512,
# SCRAM-SHA-256 (at format time) and PLAIN (in the listener's JAAS line), one password.
# The controller and the inter-broker listener stay PLAINTEXT on loopback.
#
# Usage: scripts/kafka-sasl-ssl.sh --dir DIR start|stop
#   start   writes DIR/{ca.pem,other-ca.pem,password}, starts the broker, waits until it
#           serves metadata, and writes DIR/bootstrap (the SASL_SSL host:port)
#   stop    stops the broker (SIGTERM, then SIGKILL after 15 s); deletes nothing
# KAFKA_SASL_BASE_PORT (default 25100 + pid % 300, below the ephemeral range) is where the search for free ports starts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

DIR=""
if [ "${1:-}" = "--dir" ] && [ $# -ge 2 ]; then
    DIR="$2"
    shift 2
fi
COMMAND="${1:-}"
[ -n "$DIR" ] && [ -n "$COMMAND" ] || { usage >&2; exit 2; }
log_init

# make_ca NAME: a self-signed CA in DIR/NAME.pem with its key in DIR/NAME.key.
make_ca() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=orderflow test $1" \
        -keyout "$DIR/$1.key" -out "$DIR/$1.pem" 2>/dev/null
}

# The broker's PEM keystore: an unencrypted PKCS#8 key and its certificate, signed by ca.
make_broker_certificate() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$DIR/broker.key" 2>/dev/null
    openssl req -new -key "$DIR/broker.key" -subj "/CN=localhost" -out "$DIR/broker.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$DIR/broker.ext"
    openssl x509 -req -in "$DIR/broker.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
        -days 2 -extfile "$DIR/broker.ext" -out "$DIR/broker.pem" 2>/dev/null
    cat "$DIR/broker.key" "$DIR/broker.pem" >"$DIR/broker-keystore.pem"
}

cmd_start() {
    [ ! -f "$DIR/bootstrap" ] || die "$DIR already holds a broker (stop it and delete $DIR first)"
    ensure_command openssl openssl
    kafka_classpath
    ensure_python_confluent_kafka
    mkdir -p "$DIR"
    make_ca ca
    make_ca other-ca
    make_broker_certificate
    local password base port cport sport
    password="$(openssl rand -hex 12)"
    printf '%s\n' "$password" >"$DIR/password"
    base="${KAFKA_SASL_BASE_PORT:-$((25100 + $$ % 300))}"
    port="$(find_free_port "$base")"
    cport="$(find_free_port $((port + 1)))"
    sport="$(find_free_port $((cport + 1)))"
    kafka_write_config "$DIR/server.properties" 1 "$port" "$cport" "1@127.0.0.1:$cport" "$DIR/data" 1
    # Later keys win when Java reads a properties file.
    cat >>"$DIR/server.properties" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,SASL_SSL://127.0.0.1:$sport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$sport
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_orderflow="$password";
ssl.keystore.type=PEM
ssl.keystore.location=$DIR/broker-keystore.pem
PROPS
    local out
    if ! out="$(kafka_tool kafka.tools.StorageTool format -t "$(kafka_random_cluster_id)" \
        -c "$DIR/server.properties" \
        --add-scram "SCRAM-SHA-512=[name=orderflow,password=$password]" \
        --add-scram "SCRAM-SHA-256=[name=orderflow,password=$password]" 2>&1)"; then
        printf '%s\n' "$out" >&2
        die "kafka StorageTool format failed for $DIR/server.properties"
    fi
    kafka_jvm_args 512m
    local pid
    pid="$(start_detached "$DIR/pid" "$DIR/broker.log" "$DIR" "${KAFKA_JVM_ARGS[@]}" "$DIR/server.properties")"
    kafka_wait_ready "kafka (SASL_SSL)" "127.0.0.1:$port" 1 120 "$DIR/broker.log" "$pid"
    printf '127.0.0.1:%s\n' "$sport" >"$DIR/bootstrap"
    info "SASL_SSL broker up: 127.0.0.1:$sport (user orderflow, CA $DIR/ca.pem)"
}

cmd_stop() {
    local pid
    pid="$(read_pid_file "$DIR/pid")"
    if pid_matches "$pid" kafka.Kafka; then
        stop_pid "kafka (SASL_SSL)" "$pid"
    fi
}

case "$COMMAND" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    *) usage >&2; exit 2 ;;
esac
