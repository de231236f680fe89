#!/usr/bin/env bash
# Runs Apicurio Registry in the foreground (for tests that stop and restart a registry
# of their own): fetched from Maven Central on first use, PostgreSQL storage, listening
# on 127.0.0.1:PORT, Confluent-compatible API at http://127.0.0.1:PORT/apis/ccompat/v7.
# SIGTERM stops it cleanly.
#
# Usage: scripts/apicurio.sh run --port PORT --database-url postgres://USER:PASSWORD@HOST:PORT/DB
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/log.sh
source "$ROOT/scripts/lib/log.sh"
# shellcheck source=scripts/lib/install.sh
source "$ROOT/scripts/lib/install.sh"
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
# shellcheck source=scripts/lib/kafka.sh
source "$ROOT/scripts/lib/kafka.sh"
# shellcheck source=scripts/lib/apicurio.sh
source "$ROOT/scripts/lib/apicurio.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
[ "${1:-}" = "run" ] || { usage >&2; exit 2; }
shift
PORT="" URL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT="${2:-}"; shift 2 ;;
        --database-url) URL="${2:-}"; shift 2 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[ -n "$PORT" ] && [ -n "$URL" ] || { usage >&2; exit 2; }
log_init
apicurio_ensure >&2
apicurio_args "$PORT" "$URL"
exec "${APICURIO_ARGS[@]}"
