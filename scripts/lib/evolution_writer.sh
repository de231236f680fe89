# shellcheck shell=bash
# The Java writer of the schema evolution matrix (schemas/tests/java, kafka-clients and
# Apache Avro from Maven Central): built once before the suite, so the test that drives it
# (schemas/tests/schema_evolution.rs) finds it current and spends no Maven time itself.
# Maven caches the downloads in ~/.m2. Needs ROOT.

EVOLUTION_WRITER_DIR="$ROOT/schemas/tests/java"

# evolution_writer_build: packages the writer unless its jar is newer than its sources.
evolution_writer_build() {
    local jar="$EVOLUTION_WRITER_DIR/target/evolution-writer-0.1.0.jar"
    if [[ -f "$jar" && -d "$EVOLUTION_WRITER_DIR/target/lib" ]] \
        && [[ -z "$(find "$EVOLUTION_WRITER_DIR/pom.xml" "$EVOLUTION_WRITER_DIR/src" -newer "$jar" -type f -print -quit)" ]]; then
        return 0
    fi
    ensure_command mvn maven
    local mvn_log
    mvn_log="$(mktemp)"
    if ! (cd "$EVOLUTION_WRITER_DIR" && mvn -q -B package -DskipTests) </dev/null >"$mvn_log" 2>&1; then
        print_log_tail "$mvn_log" 30
        die "mvn could not build schemas/tests/java (Maven Central reachable?)"
    fi
    rm -f "$mvn_log"
}
