#!/usr/bin/env bash
# Runs Apicurio Registry in the foreground (for tests that stop and restart a registry
# of their own): fetched from Maven Central on first use, PostgreSQL storage, listening
# on 127.0.0.1:PORT, Confluent-compatible API at http://127.0.0.1:PORT/apis/ccompat/v7.
# SIGTERM stops it cleanly.
#
# Usage: scripts/apicurio.sh run --port PORT --database-url postgres://USER:PASSWORD@HOST:PORT/DB
#            [--tls-cert CERT.pem --tls-key KEY.pem] [--basic-auth USER:PASSWORD]
#   --tls-cert/--tls-key  serve https only, on PORT, with this PEM certificate (chain) and
#                         unencrypted PEM key: https://127.0.0.1:PORT/apis/ccompat/v7
#   --basic-auth          every /apis call needs HTTP basic auth with this user (Quarkus
#                         embedded users; 401 otherwise)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/all.sh
source "$ROOT/scripts/lib/all.sh"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
[ "${1:-}" = "run" ] || { usage >&2; exit 2; }
shift
PORT="" URL="" TLS_CERT="" TLS_KEY="" BASIC_AUTH=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT="${2:-}"; shift 2 ;;
        --database-url) URL="${2:-}"; shift 2 ;;
        --tls-cert) TLS_CERT="${2:-}"; shift 2 ;;
        --tls-key) TLS_KEY="${2:-}"; shift 2 ;;
        --basic-auth) BASIC_AUTH="${2:-}"; shift 2 ;;
        *) usage >&2; exit 2 ;;
    esac
done
[ -n "$PORT" ] && [ -n "$URL" ] || { usage >&2; exit 2; }
log_init
apicurio_ensure >&2
apicurio_args "$PORT" "$URL"
EXTRA=()
if [ -n "$TLS_CERT$TLS_KEY" ]; then
    [ -r "$TLS_CERT" ] && [ -r "$TLS_KEY" ] || die "--tls-cert and --tls-key need two readable PEM files"
    EXTRA+=("-Dquarkus.http.ssl-port=$PORT" -Dquarkus.http.insecure-requests=disabled
        "-Dquarkus.http.ssl.certificate.files=$TLS_CERT"
        "-Dquarkus.http.ssl.certificate.key-files=$TLS_KEY")
fi
if [ -n "$BASIC_AUTH" ]; then
    case "$BASIC_AUTH" in *:*) ;; *) die "--basic-auth expects USER:PASSWORD" ;; esac
    user="${BASIC_AUTH%%:*}"
    # quarkus.http.auth.basic is also what puts basic into Apicurio's authentication chain.
    EXTRA+=(-Dquarkus.http.auth.basic=true -Dquarkus.security.users.embedded.plain-text=true
        "-Dquarkus.security.users.embedded.users.$user=${BASIC_AUTH#*:}"
        "-Dquarkus.security.users.embedded.roles.$user=sr-admin"
        "-Dquarkus.http.auth.permission.registry.paths=/apis/*"
        -Dquarkus.http.auth.permission.registry.policy=authenticated)
fi
# The extra settings go before `-jar FILE`, the last two words.
last=$((${#APICURIO_ARGS[@]} - 2))
exec "${APICURIO_ARGS[@]:0:last}" "${EXTRA[@]}" "${APICURIO_ARGS[@]:last}"
