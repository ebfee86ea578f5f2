#!/usr/bin/env bash
# Installs the cargo-built tools CI and the scripts use, each at a pinned version, under
# ${WS_CACHE_DIR:-$HOME/.cache/workspace}/tools (on PATH in .ci/run and the scripts). A tool
# already there at its version is kept; another version is replaced. Usage:
#   scripts/tools.sh cargo-deny cargo-fuzz dufs     # any subset
#   scripts/tools.sh --path dufs                    # prints the binary's path (installs if needed)
set -euo pipefail

CACHE_DIR="${WS_CACHE_DIR:-$HOME/.cache/workspace}"
ROOT="$CACHE_DIR/tools"

version_of() {
    case "$1" in
        cargo-deny) echo 0.20.2 ;;
        cargo-fuzz) echo 0.13.2 ;;
        dufs) echo 0.47.0 ;;
        *) echo "tools: unknown tool $1" >&2; return 1 ;;
    esac
}

# The version the installed binary reports, or nothing.
installed_version() {
    local bin="$ROOT/bin/$1"
    [ -x "$bin" ] || return 0
    case "$1" in
        cargo-deny) "$bin" --version 2>/dev/null | awk '{print $2}' ;;
        cargo-fuzz) "$bin" --version 2>/dev/null | awk '{print $2}' ;;
        dufs) "$bin" --version 2>/dev/null | awk '{print $2}' ;;
    esac
}

ensure() {
    local tool="$1" want
    want="$(version_of "$tool")"
    if [ "$(installed_version "$tool")" = "$want" ]; then
        echo "tools: $tool $want (cached)" >&2
        return 0
    fi
    echo "tools: installing $tool $want (cargo install --locked)" >&2
    # Its own target dir, removed afterwards: tool builds share nothing with the workspace's.
    local build
    build="$(mktemp -d "${TMPDIR:-/tmp}/tool-build.XXXXXX")"
    CARGO_TARGET_DIR="$build" cargo install --locked --quiet --force "$tool" --version "$want" --root "$ROOT" >&2
    rm -rf "$build"
    [ "$(installed_version "$tool")" = "$want" ] || { echo "tools: $tool reports $(installed_version "$tool"), wanted $want" >&2; return 1; }
}

if [ "${1:-}" = "--path" ]; then
    shift
    ensure "$1"
    echo "$ROOT/bin/$1"
    exit 0
fi
for tool in "$@"; do ensure "$tool"; done
