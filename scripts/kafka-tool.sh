#!/usr/bin/env bash
# Runs one of Apache Kafka's own Java tools on the runtime of scripts/runtime/pom.xml
# (resolved once, cached), with log output on stderr so stdout stays parseable.
#
# Usage: scripts/kafka-tool.sh CLASS [ARGS...]
#   e.g. scripts/kafka-tool.sh org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
#            --bootstrap-server 127.0.0.1:9092 --describe --group orders-projector
# Classes: ConsumerGroupCommand (org.apache.kafka.tools.consumer.group), TopicCommand,
# ConsoleProducer, GetOffsetShell, MetadataQuorumCommand (org.apache.kafka.tools),
# ConsoleConsumer (org.apache.kafka.tools.consumer), kafka.admin.ConfigCommand.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
log_init
kafka_classpath >&2
exec java -Xmx256m -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" -cp "$KAFKA_CP" "$@"
