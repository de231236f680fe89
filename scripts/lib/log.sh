# shellcheck shell=bash
# Step-by-step output for the orderflow scripts: one line per step with the
# elapsed time since the script started, and a single way to fail loudly.
# Source it; it defines functions only.

# Seconds since the script started (bash's SECONDS counter, reset here).
log_init() {
    SECONDS=0
    _LOG_STEP_NAME=""
    _LOG_STEP_START=0
}

_log_clock() {
    printf '[%02d:%02d]' $((SECONDS / 60)) $((SECONDS % 60))
}

# Starts a named step: `[mm:ss] ==> name`.
step() {
    _LOG_STEP_NAME="$1"
    _LOG_STEP_START=$SECONDS
    printf '%s ==> %s\n' "$(_log_clock)" "$1"
}

# Ends the current step: `[mm:ss]     ok (Ns) detail`.
# shellcheck disable=SC2120 # the detail is optional
step_ok() {
    local detail="${1:-}"
    printf '%s     ok (%ds)%s\n' "$(_log_clock)" $((SECONDS - _LOG_STEP_START)) "${detail:+ $detail}"
}

# An informational line inside a step.
info() {
    printf '%s     %s\n' "$(_log_clock)" "$*"
}

# A warning on stderr.
warn() {
    printf '%s WARNING: %s\n' "$(_log_clock)" "$*" >&2
}

# A failure line on stderr that does not end the script.
fail_line() {
    printf '%s FAILED: %s\n' "$(_log_clock)" "$*" >&2
}

# Fails the script with a one-line reason naming the step.
die() {
    printf '%s ERROR%s: %s\n' "$(_log_clock)" "${_LOG_STEP_NAME:+ in step \"$_LOG_STEP_NAME\"}" "$*" >&2
    exit 1
}

# Pid of the command run_step is waiting for (empty between steps), so an
# EXIT trap can stop it.
RUN_STEP_PID=""

# Runs a command as a whole step; fails with its exit code named. The command
# runs in the background and the script waits for it, so a signal to the script
# is handled at once instead of after the command.
run_step() {
    local name="$1"
    shift
    step "$name"
    local rc=0
    "$@" </dev/null &
    RUN_STEP_PID=$!
    wait "$RUN_STEP_PID" || rc=$?
    RUN_STEP_PID=""
    if [ "$rc" -ne 0 ]; then
        die "'$*' exited with code $rc"
    fi
    step_ok ""
}

# Prints the last lines of a log file, indented, to stderr (for failure reports).
print_log_tail() {
    local file="$1" lines="${2:-40}"
    if [ -s "$file" ]; then
        printf '     --- last %d lines of %s ---\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" | sed 's/^/     | /' >&2
        printf '     --- end of %s ---\n' "$file" >&2
    else
        printf '     (log file %s is empty or missing)\n' "$file" >&2
    fi
}
