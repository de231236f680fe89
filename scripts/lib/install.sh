# shellcheck shell=bash
# Installs what the scripts need when it is missing: Debian packages (with one
# `apt-get update` before the first install).
# Needs log.sh. Source it; it defines functions only.

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' (not root and no sudo)"
    fi
}

_APT_UPDATED=0

# ensure_command CMD PACKAGE: installs the Debian PACKAGE when CMD is not on PATH.
ensure_command() {
    local cmd="$1" package="$2"
    if command -v "$cmd" >/dev/null 2>&1; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "'$cmd' is missing and apt-get is not available: install package '$package' by hand"
    # apt's chatter goes to a file, shown only when it fails.
    local apt_log
    apt_log="$(mktemp)"
    if [ "$_APT_UPDATED" -eq 0 ]; then
        info "apt-get update (once, before the first install)"
        if ! as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
            apt-get update -qq </dev/null >"$apt_log" 2>&1; then
            print_log_tail "$apt_log" 20
            die "apt-get update failed"
        fi
        _APT_UPDATED=1
    fi
    info "installing Debian package '$package' (for '$cmd')"
    if ! as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
        apt-get install -y -qq --no-install-recommends "$package" </dev/null >"$apt_log" 2>&1; then
        print_log_tail "$apt_log" 20
        die "apt-get install $package failed"
    fi
    rm -f "$apt_log"
    command -v "$cmd" >/dev/null 2>&1 || die "package '$package' installed but '$cmd' is still not on PATH"
}
