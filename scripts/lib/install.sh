# shellcheck shell=bash
# Installs what the scripts need when it is missing: Debian packages (with one
# `apt-get update` before the first install) and the Tansu broker from crates.io.
# Needs log.sh. Source it; it defines functions only.

# The Tansu version the project is tested against (see ARCHITECTURE.md).
TANSU_VERSION="0.6.0"

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

# True when `tansu --version` prints the expected version.
tansu_is_installed() {
    command -v tansu >/dev/null 2>&1 || return 1
    local version
    version="$(tansu --version 2>/dev/null || true)"
    [ "$version" = "tansu $TANSU_VERSION" ]
}

# Installs Tansu with the SQLite (libsql) engine unless the right version is
# already there. About 13 minutes on 2 cores, so it is skipped whenever possible.
ensure_tansu() {
    if tansu_is_installed; then
        info "tansu $TANSU_VERSION already installed ($(command -v tansu))"
        return 0
    fi
    info "tansu $TANSU_VERSION not found: cargo install (takes ~13 minutes on 2 cores)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features libsql </dev/null \
        || die "cargo install tansu $TANSU_VERSION failed"
    # cargo installs into ~/.cargo/bin, which may not be on PATH in a bare shell.
    if ! command -v tansu >/dev/null 2>&1 && [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/tansu" ]; then
        PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
        export PATH
    fi
    tansu_is_installed || die "tansu installed but 'tansu --version' does not print 'tansu $TANSU_VERSION'"
}
