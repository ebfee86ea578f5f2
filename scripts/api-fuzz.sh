#!/usr/bin/env bash
# API fuzzing: schemathesis generates requests from the running server's OpenAPI document
# (/api/openapi.json) and checks every response against it: no 5xx, status codes documented,
# bodies match their schemas, content types and headers as declared, invalid input rejected.
#
# Starts the real server binary (embedded SQLite + local files in a temporary directory) with a
# known secret, authenticates with a minted bearer token, and exits non-zero on any failure.
#
#   scripts/api-fuzz.sh                    # bounded run (CI), ~1-3 minutes
#   API_FUZZ_EXAMPLES=500 scripts/api-fuzz.sh   # longer run
#
# Every check runs (schemathesis enables all by default); scripts/api-fuzz.toml turns off the
# two that cannot apply to the streamed multipart upload, and says why.
# Excluded: /mcp is not in the OpenAPI document (JSON-RPC over streamable HTTP; its own tests are
# crates/workspace-http/tests/mcp.rs), nor are the UI pages.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
HYPOTHESIS_VERSION=6.170.17
EXAMPLES=${API_FUZZ_EXAMPLES:-40}
MAX_TIME=${API_FUZZ_MAX_TIME:-150}

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${WS_CACHE_DIR:-$HOME/.cache/workspace}
venv=$cache/venv-schemathesis
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}

# Hypothesis is pinned too: it decides what schemathesis generates.
requirements=("schemathesis==$SCHEMATHESIS_VERSION" "hypothesis==$HYPOTHESIS_VERSION")
if [ ! -x "$venv/bin/schemathesis" ] || [ "$(cat "$venv/.installed" 2>/dev/null)" != "${requirements[*]}" ]; then
    echo "api-fuzz: installing ${requirements[*]} into $venv" >&2
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}"
    echo "${requirements[*]}" >"$venv/.installed"
fi
# Works around a thread-safety bug of CPython 3.11's ast.parse (see the file).
export PYTHONPATH="$root/scripts/lib/schemathesis-site${PYTHONPATH:+:$PYTHONPATH}"

# scripts/test.sh passes the server binary of its test build; alone, this builds one.
if [ -n "${WORKSPACE_SERVER_BIN:-}" ]; then
    bin=$WORKSPACE_SERVER_BIN
else
    (cd "$root" && cargo build --quiet -p workspace-server)
    bin=$CARGO_TARGET_DIR/debug/workspace-server
fi

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

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
export WS_DATA_DIR=$work/data
export WS_BIND=127.0.0.1:$port
export WS_JWT_SECRET=api-fuzz-secret-api-fuzz-secret
# Small limits so the fuzzer reaches the 413 paths quickly.
export WS_MAX_FILE_SIZE=${WS_MAX_FILE_SIZE:-1MiB}
export WS_QUOTA_BYTES=${WS_QUOTA_BYTES:-8MiB}
# Local disk and the embedded database whatever the caller's shell holds (scripts/test.sh has
# eval'ed `scripts/fake-gcs.sh start`, which exports WS_STORAGE_BACKEND=gcs).
unset WS_DATABASE_URL DATABASE_URL WS_STORAGE_BACKEND WS_STORAGE_DIR WORKSPACE_STORAGE_DIR WS_JWT_AUDIENCE SUPABASE_JWT_SECRET
export RUST_LOG=${RUST_LOG:-warn}

"$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if curl -fsS "http://$WS_BIND/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "api-fuzz: the server did not start:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
token=$("$bin" token --user fuzz)

status=0
# From the temporary directory: schemathesis keeps a `.schemathesis/` cache in its working directory.
cd "$work"
"$venv/bin/schemathesis" --config-file "$root/scripts/api-fuzz.toml" run "http://$WS_BIND/api/openapi.json" \
    --max-examples "$EXAMPLES" \
    --max-time "$MAX_TIME" \
    --seed "${API_FUZZ_SEED:-1}" \
    --workers 4 \
    --request-timeout 10 \
    --generation-database none \
    --suppress-health-check all \
    --header "Authorization: Bearer $token" \
    --report junit --report-dir "${API_FUZZ_REPORT_DIR:-$work/report}" \
    --no-color || status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "api-fuzz: the server died during the run:" >&2
    tail -50 "$work/server.log" >&2
    exit 1
fi
if grep -q "panicked" "$work/server.log"; then
    echo "api-fuzz: the server panicked:" >&2
    grep -A5 "panicked" "$work/server.log" >&2
    status=1
fi
exit "$status"
