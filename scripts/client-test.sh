#!/usr/bin/env bash
# Generated clients against the real server (SPEC §7: the OpenAPI document passes
# openapi-spec-validator and generates working clients with orval and openapi-python-client).
#
# Starts the server binary (embedded SQLite + local files in a temporary directory), fetches
# /api/openapi.json, then:
#   1. validates it with openapi-spec-validator and lints it with Redocly (recommended rules:
#      no error allowed; warnings are printed);
#   2. generates a TypeScript fetch client with orval, type-checks clients/typescript/flow.ts
#      with `tsc --strict` and runs it against the server;
#   3. generates a Python client with openapi-python-client, checks clients/python/flow.py with
#      `mypy --strict` and runs it against the server.
# Each flow uploads with the generated typed form (file part first, as generators send it),
# lists, reads info, downloads whole and a byte range (bytes compared), downloads through a
# signed link without a token, reads typed 401/404/409 error bodies, deletes, reads usage.
#
# Tools are pinned (clients/typescript/package-lock.json, clients/python/requirements.txt) and
# installed once into ${WS_CACHE_DIR:-$HOME/.cache/workspace} (a Python venv, and node_modules
# keyed by the lock file's hash); generated code goes to a temporary directory and is removed.
#
#   scripts/client-test.sh        # scripts/test.sh passes WORKSPACE_SERVER_BIN; alone, builds it
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${WS_CACHE_DIR:-$HOME/.cache/workspace}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}
started=$SECONDS
phase() { echo "client-test: $* (+$((SECONDS - started))s)" >&2; }

command -v npm >/dev/null || { echo "client-test: npm is required (Node.js 20.19 or later)" >&2; exit 1; }

# Python tools: one venv, rebuilt when requirements.txt changes.
requirements=$root/clients/python/requirements.txt
venv=$cache/venv-clients
want=$(sha256sum "$requirements" | cut -c1-16)
if [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    phase "installing the Python tools into $venv"
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "$requirements"
    echo "$want" >"$venv/.requirements"
fi

# Node tools: `npm ci` of the lock file into a cache folder named by the lock's hash. Install
# scripts are not run: none of these tools needs one (esbuild finds its platform package).
lock=$root/clients/typescript/package-lock.json
node_dir=$cache/clients-node/$(sha256sum "$lock" | cut -c1-16)
if [ ! -f "$node_dir/.installed" ]; then
    phase "npm ci into $node_dir"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp "$root/clients/typescript/package.json" "$lock" "$node_dir/"
    (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch "$node_dir/.installed"
fi

# scripts/test.sh passes the server binary of its test build; alone, this builds one.
if [ -n "${WORKSPACE_SERVER_BIN:-}" ]; then
    bin=$WORKSPACE_SERVER_BIN
else
    (cd "$root" && cargo build --quiet -p workspace-server)
    bin=$CARGO_TARGET_DIR/debug/workspace-server
fi
[ -x "$bin" ] || { echo "client-test: no server binary at $bin" >&2; exit 1; }

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
export WS_JWT_SECRET=client-test-secret-client-test-secret
# Local disk and the embedded database whatever the caller's shell holds (scripts/test.sh has
# eval'ed `scripts/fake-gcs.sh start`, which exports WS_STORAGE_BACKEND=gcs).
unset WS_DATABASE_URL DATABASE_URL WS_STORAGE_BACKEND WS_STORAGE_DIR WORKSPACE_STORAGE_DIR WS_JWT_AUDIENCE \
    SUPABASE_JWT_SECRET WS_JWT_JWKS_URL WS_MAX_FILE_SIZE WS_QUOTA_BYTES WS_INLINE_MAX_BYTES
export RUST_LOG=${RUST_LOG:-warn}
"$bin" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    if curl -fsS "http://$WS_BIND/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "client-test: the server did not start:" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
export WORKSPACE_URL=http://$WS_BIND
spec=$work/openapi.json
curl -fsS "$WORKSPACE_URL/api/openapi.json" -o "$spec"

phase "openapi-spec-validator"
"$venv/bin/openapi-spec-validator" "$spec"

phase "redocly lint (recommended rules)"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1
lint=0
"$node_dir/node_modules/.bin/redocly" lint --extends recommended --format stylish "$spec" >"$work/lint.txt" 2>&1 || lint=$?
grep -E "(error|warning) " "$work/lint.txt" >&2 || true
errors=$(grep -cE "^ +[0-9]+:[0-9]+ +error " "$work/lint.txt" || true)
warnings=$(grep -cE "^ +[0-9]+:[0-9]+ +warning " "$work/lint.txt" || true)
echo "client-test: redocly: $errors errors, $warnings warnings" >&2
if [ "$lint" != 0 ] || [ "$errors" != 0 ]; then
    cat "$work/lint.txt" >&2
    exit 1
fi

# One user per flow, so each sees only its own files.
phase "typescript: orval, tsc --strict, flow"
ts=$work/ts
mkdir -p "$ts"
cp "$root"/clients/typescript/{orval.config.cjs,tsconfig.json,fetcher.ts,flow.ts} "$ts/"
cp "$spec" "$ts/openapi.json"
ln -s "$node_dir/node_modules" "$ts/node_modules"
(cd "$ts" && node_modules/.bin/orval --config orval.config.cjs >"$work/orval.log" 2>&1) || { cat "$work/orval.log" >&2; exit 1; }
(cd "$ts" && node_modules/.bin/tsc -p tsconfig.json)
(cd "$ts" && WORKSPACE_TOKEN=$("$bin" token --user client-ts) node dist/flow.js)

phase "python: openapi-python-client, mypy --strict, flow"
py=$work/py
mkdir -p "$py"
cp "$root"/clients/python/{flow.py,mypy.ini} "$py/"
(cd "$py" && PATH="$venv/bin:$PATH" openapi-python-client generate --path "$spec" --meta none \
    --output-path workspace_client >"$work/generate.log" 2>&1) || { cat "$work/generate.log" >&2; exit 1; }
# A warning means some part of the document did not make it into the client: fail on it.
if grep -q "Warning(s) encountered" "$work/generate.log"; then
    cat "$work/generate.log" >&2
    echo "client-test: openapi-python-client left parts of the document out" >&2
    exit 1
fi
(cd "$py" && "$venv/bin/mypy" --config-file mypy.ini --cache-dir "$cache/mypy-clients" flow.py)
(cd "$py" && WORKSPACE_TOKEN=$("$bin" token --user client-py) "$venv/bin/python" flow.py)

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "client-test: the server died during the run:" >&2
    tail -50 "$work/server.log" >&2
    exit 1
fi
if grep -q "panicked" "$work/server.log"; then
    echo "client-test: the server panicked:" >&2
    grep -A5 "panicked" "$work/server.log" >&2
    exit 1
fi
phase "all passed"
