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
    _apt_install "$package" "for '$cmd'"
    command -v "$cmd" >/dev/null 2>&1 || die "package '$package' installed but '$cmd' is still not on PATH"
}

# ensure_package PACKAGE: installs the Debian PACKAGE when dpkg does not list it as
# installed; for what has no command of its own, such as the headers a -sys crate
# builds against (libssl-dev).
ensure_package() {
    local package="$1"
    if dpkg -s "$package" 2>/dev/null | grep -q '^Status: install ok installed'; then
        return 0
    fi
    _apt_install "$package" "(headers and libraries for the build)"
}

# The build of rdkafka's TLS support (openssl-sys) links the system OpenSSL, found
# through pkg-config.
ensure_build_dependencies() {
    ensure_command pkg-config pkg-config
    ensure_package libssl-dev
}

# _apt_install PACKAGE WHY: apt-get install, with one apt-get update before the first.
_apt_install() {
    local package="$1" why="$2"
    command -v apt-get >/dev/null 2>&1 || die "package '$package' is missing and apt-get is not available: install it by hand ($why)"
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
    info "installing Debian package '$package' ($why)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
        apt-get install -y -qq --no-install-recommends "$package" </dev/null >"$apt_log" 2>&1; then
        print_log_tail "$apt_log" 20
        die "apt-get install $package failed"
    fi
    rm -f "$apt_log"
}
