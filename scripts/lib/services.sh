# shellcheck shell=bash
# Background services (Kafka, the schema registry, the pipeline's binaries): start, wait until they
# answer, stop by pid. Every wait is bounded; a service that does not come up
# fails the script with its name and the tail of its log file.
# Needs log.sh. Source it; it defines functions only.

# True when something accepts TCP connections on HOST:PORT (1 s timeout).
port_is_open() {
    # shellcheck disable=SC2016 # $1 and $2 expand in the inner bash
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# Prints the first port from START upwards (at most 200 tried) that no socket on
# this host uses: neither a listener nor the local end of a connection. A port
# that only looks unlistened may still be the local end of a client connection,
# and binding a listener to it then fails (EADDRINUSE). Keep START below the
# kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range, 32768 up by
# default) so a client connection cannot take the port between check and bind.
find_free_port() {
    local port="$1" last=$(($1 + 200))
    while [ "$port" -lt "$last" ]; do
        if ! port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
        port=$((port + 1))
    done
    die "no free port in $1..$last on 127.0.0.1"
}

# True when a socket of any state (listening, connected, TIME_WAIT) has PORT as
# its local port.
port_in_use() {
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]
    else
        port_is_open 127.0.0.1 "$1"
    fi
}

# True when PID is a live process (zombies count as dead).
pid_running() {
    local pid="$1" state
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    # Field 3 of /proc/PID/stat is the state; the command name (field 2) may
    # contain spaces, so cut after its closing parenthesis.
    state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
    [ -n "$state" ] && [ "$state" != "Z" ] && [ "$state" != "X" ]
}

# True when PID is alive and its command line contains WORD (guards against a
# recycled pid in a stale pid file).
pid_matches() {
    local pid="$1" word="$2"
    pid_running "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$word"
}

# Reads a pid file; prints nothing when it is missing.
read_pid_file() {
    if [ -f "$1" ]; then
        tr -dc '0-9' <"$1"
    fi
}

# Reports a service that did not come up and exits non-zero.
fail_service() {
    local name="$1" logfile="$2" reason="$3"
    print_log_tail "$logfile" 40
    die "$name: $reason (log: $logfile)"
}

# wait_for_tcp NAME HOST PORT TIMEOUT_S LOGFILE PID: waits until the port
# accepts connections; fails early when the process exits.
wait_for_tcp() {
    local name="$1" host="$2" port="$3" limit="$4" logfile="$5" pid="$6"
    local deadline=$((SECONDS + limit))
    until port_is_open "$host" "$port"; do
        if [ -n "$pid" ] && ! pid_running "$pid"; then
            fail_service "$name" "$logfile" "process $pid exited before listening on $host:$port"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail_service "$name" "$logfile" "nothing listening on $host:$port after ${limit} s"
        fi
        sleep 0.3
    done
}

# http_status URL: prints the HTTP status code (000 when there is no answer).
http_status() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true
}

# wait_for_http NAME URL TIMEOUT_S LOGFILE PID: waits until URL answers with a
# status below 500 (the server is up and its storage answers).
wait_for_http() {
    local name="$1" url="$2" limit="$3" logfile="$4" pid="$5"
    local deadline=$((SECONDS + limit)) code="000"
    while :; do
        code="$(http_status "$url")"
        if [ "$code" != "000" ] && [ "$code" -lt 500 ]; then
            return 0
        fi
        if [ -n "$pid" ] && ! pid_running "$pid"; then
            fail_service "$name" "$logfile" "process $pid exited before answering $url"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail_service "$name" "$logfile" "$url did not answer below HTTP 500 within ${limit} s (last status: $code)"
        fi
        sleep 0.3
    done
}

# stop_pid NAME PID: SIGTERM, up to 15 s for a clean stop, then SIGKILL.
# Reaps the process when it is our child.
stop_pid() {
    local name="$1" pid="$2"
    pid_running "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while pid_running "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            warn "$name (pid $pid) did not stop within 15 s of SIGTERM: sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    wait "$pid" 2>/dev/null || true
}

# start_detached PIDFILE LOGFILE WORKDIR CMD...: starts CMD in WORKDIR in its own
# session (setsid + nohup) so it outlives the script, appends its output to
# LOGFILE, writes its pid to PIDFILE and prints the pid.
start_detached() {
    local pidfile="$1" logfile="$2" workdir="$3"
    shift 3
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    printf '\n==== %s: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')" "$*" >>"$logfile"
    # Without job control the subshell is not a process-group leader, so setsid
    # does not fork and $! is the service's own pid.
    (cd "$workdir" && exec setsid nohup "$@" >>"$logfile" 2>&1 </dev/null) &
    local pid=$!
    printf '%s\n' "$pid" >"$pidfile"
    printf '%s\n' "$pid"
}
