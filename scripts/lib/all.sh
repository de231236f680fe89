# shellcheck shell=bash
# Every library of scripts/lib that a script of scripts/ may need, in dependency order:
# logging, installs, process and port helpers, PostgreSQL, Apache Kafka from Maven
# Central, Apicurio Registry, the Java evolution writer, Jaeger. They only define functions
# and constants; sourcing them starts nothing. Needs ROOT (the repository root).
# shellcheck source=scripts/lib/log.sh
source "$ROOT/scripts/lib/log.sh"
# shellcheck source=scripts/lib/install.sh
source "$ROOT/scripts/lib/install.sh"
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source=scripts/lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"
# shellcheck source=scripts/lib/kafka.sh
source "$ROOT/scripts/lib/kafka.sh"
# shellcheck source=scripts/lib/apicurio.sh
source "$ROOT/scripts/lib/apicurio.sh"
# shellcheck source=scripts/lib/evolution_writer.sh
source "$ROOT/scripts/lib/evolution_writer.sh"
# shellcheck source=scripts/lib/jaeger.sh
source "$ROOT/scripts/lib/jaeger.sh"
