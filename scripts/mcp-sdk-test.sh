#!/usr/bin/env bash
# The MCP server through the official MCP Python SDK (SPEC §15), over stdio and streamable HTTP:
# tool listing with input and output schemas and annotations, every tool's structured output
# validated against its outputSchema, resource links, resources list/templates/read, and resource
# subscriptions (resources/subscribe on stdio, subscriptions/listen on both)
# (clients/mcp/sdk_test.py). The SDK and jsonschema are pinned in clients/mcp/requirements.txt
# and installed once into a venv under ${WS_CACHE_DIR:-$HOME/.cache/workspace}.
#
#   scripts/mcp-sdk-test.sh        # scripts/test.sh passes WORKSPACE_SERVER_BIN; alone, builds it
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${WS_CACHE_DIR:-$HOME/.cache/workspace}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}

requirements=$root/clients/mcp/requirements.txt
venv=$cache/venv-mcp-sdk
want=$(sha256sum "$requirements" | cut -c1-16)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    echo "mcp-sdk-test: installing the MCP SDK into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "$requirements"
    echo "$want" >"$venv/.requirements"
fi

if [ -n "${WORKSPACE_SERVER_BIN:-}" ]; then
    bin=$WORKSPACE_SERVER_BIN
else
    (cd "$root" && cargo build --quiet -p workspace-server)
    bin=$CARGO_TARGET_DIR/debug/workspace-server
fi
[ -x "$bin" ] || { echo "mcp-sdk-test: no server binary at $bin" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Embedded SQLite and local files whatever the caller's shell holds.
unset WS_DATABASE_URL DATABASE_URL WS_STORAGE_BACKEND WS_STORAGE_DIR WORKSPACE_STORAGE_DIR WS_JWT_AUDIENCE \
    SUPABASE_JWT_SECRET WS_JWT_JWKS_URL WS_MAX_FILE_SIZE WS_QUOTA_BYTES WS_INLINE_MAX_BYTES WS_GREP_MAX_FILE_BYTES
export RUST_LOG=${RUST_LOG:-warn}
export WS_JWT_SECRET=mcp-sdk-test-secret-mcp-sdk-test-secret
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
WS_DATA_DIR=$work/http WS_BIND=127.0.0.1:$port "$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "mcp-sdk-test: the server did not start:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
token=$(WS_DATA_DIR=$work/http "$bin" token --user alice)
mkdir -p "$work/stdio"
# The stdio server's warnings reach this script's stderr through the SDK; the HTTP server's are
# in its log, shown when the test fails (a subscription that ended says why there).
if ! "$venv/bin/python" "$root/clients/mcp/sdk_test.py" "$bin" "$work/stdio" "http://127.0.0.1:$port" "$token"; then
    echo "mcp-sdk-test: failed; the HTTP server's log:" >&2
    tail -n 50 "$work/server.log" >&2
    exit 1
fi
