# shellcheck shell=bash
# Apicurio Registry, the schema registry of the dev stack and the tests: its runnable
# archive (io.apicurio:apicurio-registry-app:<version>:tar.gz:all) comes from Maven
# Central once and is unpacked under ~/.cache/orderflow; it runs with PostgreSQL
# storage, so schemas and their ids survive a restart, and clients use its
# Confluent-compatible API at <base>/apis/ccompat/v7.
# Needs log.sh, install.sh, services.sh and kafka.sh (for the cache and the pom). Source it.

APICURIO_VERSION="$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$KAFKA_RUNTIME_POM")"
APICURIO_HOME="$ORDERFLOW_CACHE/apicurio-$APICURIO_VERSION"
# The API path clients put after host:port.
APICURIO_CCOMPAT_PATH="/apis/ccompat/v7"

# Unpacks the registry under APICURIO_HOME unless it is already there.
apicurio_ensure() {
    [ -n "$APICURIO_VERSION" ] || die "no <apicurio.version> in $KAFKA_RUNTIME_POM"
    if [ -f "$APICURIO_HOME/quarkus-run.jar" ]; then
        return 0
    fi
    ensure_command mvn maven
    info "fetching Apicurio Registry $APICURIO_VERSION from Maven Central (first run only, ~160 MB)"
    local tmp mvn_log
    tmp="$(mktemp -d)"
    mvn_log="$tmp/mvn.log"
    if ! mvn -B -q -f "$KAFKA_RUNTIME_POM" dependency:copy \
        -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
        -DoutputDirectory="$tmp" </dev/null >"$mvn_log" 2>&1; then
        print_log_tail "$mvn_log" 30
        die "mvn could not fetch io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all"
    fi
    mkdir -p "$tmp/unpacked"
    tar -xzf "$tmp/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$tmp/unpacked" \
        || die "cannot unpack the Apicurio archive"
    # 3.1.x packs the app under quarkus-app/, 3.3.x at the top.
    local jar
    jar="$(find "$tmp/unpacked" -maxdepth 2 -name quarkus-run.jar | head -n 1)"
    [ -n "$jar" ] || die "the Apicurio archive has no quarkus-run.jar"
    rm -rf "$APICURIO_HOME"
    mkdir -p "$(dirname "$APICURIO_HOME")"
    mv "$(dirname "$jar")" "$APICURIO_HOME"
    rm -rf "$tmp"
}

# Prints a java binary of version 21 or newer (Apicurio 3.3 is built for Java 21;
# Java 17 fails with UnsupportedClassVersionError): APICURIO_JAVA, then `java` on
# PATH, then the JDKs under /usr/lib/jvm, newest first.
apicurio_java() {
    local candidate major
    for candidate in ${APICURIO_JAVA:-} "$(command -v java || true)" \
        $(ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | sort -rV); do
        [ -x "$candidate" ] || continue
        major="$("$candidate" -XshowSettings:properties -version 2>&1 \
            | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
        if [ -n "$major" ] && [ "$major" -ge 21 ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    die "Apicurio Registry $APICURIO_VERSION needs Java 21 or newer and none was found (looked at \$APICURIO_JAVA, java on PATH, /usr/lib/jvm/*): install a JDK 21+ or set APICURIO_JAVA"
}

# apicurio_args PORT DATABASE_URL: sets APICURIO_ARGS to the command that runs the
# registry on 127.0.0.1:PORT with its storage in the PostgreSQL database of
# DATABASE_URL (postgres://user:password@host:port/db). Its management interface
# (health, metrics; built in, cannot be turned off) takes the next free port.
# PORT should be below the ephemeral range (see find_free_port).
apicurio_args() {
    local port="$1" url="$2" java rest userinfo hostdb mport
    java="$(apicurio_java)"
    mport="$(find_free_port $((port + 1)))"
    rest="${url#postgres://}"
    rest="${rest#postgresql://}"
    userinfo="${rest%%@*}"
    hostdb="${rest#*@}"
    # shellcheck disable=SC2034 # read by the caller
    APICURIO_ARGS=("$java" -Xms128m -Xmx384m
        -Dquarkus.http.host=127.0.0.1 "-Dquarkus.http.port=$port"
        -Dquarkus.management.host=127.0.0.1 "-Dquarkus.management.port=$mport"
        -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=postgresql
        "-Dapicurio.datasource.url=jdbc:postgresql://$hostdb"
        "-Dapicurio.datasource.username=${userinfo%%:*}"
        "-Dapicurio.datasource.password=${userinfo#*:}"
        -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2
        -Dapicurio.datasource.jdbc.max-size=10
        -jar "$APICURIO_HOME/quarkus-run.jar")
}

# apicurio_wait_ready NAME BASE_URL TIMEOUT_S LOGFILE PID: waits until the
# Confluent-compatible API answers from storage.
apicurio_wait_ready() {
    wait_for_http "$1" "$2$APICURIO_CCOMPAT_PATH/subjects" "$3" "$4" "$5"
}

# apicurio_set_backward BASE_URL: the global compatibility rule is BACKWARD
# (Confluent's default; idempotent, kept in storage).
apicurio_set_backward() {
    curl -sf -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
        -d '{"compatibility":"BACKWARD"}' "$1$APICURIO_CCOMPAT_PATH/config" >/dev/null \
        || die "cannot set the global BACKWARD rule at $1$APICURIO_CCOMPAT_PATH/config"
}
