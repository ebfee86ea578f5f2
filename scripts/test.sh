#!/usr/bin/env bash
# The whole test suite. Installs and starts what it needs (PostgreSQL if it is down, the GCS
# emulator, Chromium and playwright-core, cargo-fuzz, schemathesis, the client generators) and
# stops what it started:
#   1. every crate's tests: suites on SQLite and PostgreSQL with blobs on local disk (the GCS
#      backend's own tests and the redirect test use the emulator);
#   2. the manager, HTTP and two-replica suites again with blobs in the GCS emulator;
#   3. the web UI in headless Chromium against the real server;
#   3b. the MCP server through the official MCP Python SDK, over stdio and streamable HTTP;
#   4. API fuzzing from the OpenAPI spec (schemathesis) against the real server;
#   5. the OpenAPI document validated (openapi-spec-validator, Redocly) and clients generated
#      from it (orval, openapi-python-client) run against the real server;
#   6. every cargo-fuzz target for a bounded time.
# The workspace is compiled once (cargo-nextest runs every pass from that one build; plain
# `cargo test` is the fallback where nextest is missing), and passes 3 to 5 (3b included) use its server binary.
# Each step's duration is printed, and a table of them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}"
export WS_CACHE_DIR="${WS_CACHE_DIR:-$HOME/.cache/workspace}"
export PATH="$WS_CACHE_DIR/tools/bin:$PATH"
# shellcheck source=lib/steps.sh
. scripts/lib/steps.sh

# Runs the workspace's tests; extra arguments select (nextest filter expression after -E).
if command -v cargo-nextest >/dev/null 2>&1; then
    build_tests() { cargo nextest run --workspace --locked --no-run; }
    run_tests() { cargo nextest run --workspace --locked --no-fail-fast "$@"; }
    gcs_filter=(-E 'binary_id(workspace-core::manager) | binary_id(workspace-http::api) | binary_id(workspace-http::upload) | binary_id(workspace-server::replicas)')
else
    echo "test: cargo-nextest not found; using cargo test" >&2
    build_tests() { cargo test --workspace --locked --no-run; }
    run_tests() {
        if [ $# = 0 ]; then cargo test --workspace --locked --no-fail-fast; return; fi
        cargo test --locked -p workspace-core --test manager
        cargo test --locked -p workspace-http --test api
        cargo test --locked -p workspace-http --test upload
        cargo test --locked -p workspace-server --test replicas
    }
    gcs_filter=(gcs)
fi

step "test: services (PostgreSQL, GCS emulator)"
scripts/services.sh postgres
eval "$(scripts/fake-gcs.sh start)"
trap 'scripts/fake-gcs.sh stop; steps_table' EXIT

step "test: build the workspace's tests (once)"
build_tests

step "test 1: cargo tests, local disk"
run_tests

step "test 1b: documentation examples compile (cargo test --doc)"
cargo test --doc --workspace --locked

step "test 2: manager, HTTP and replica suites on the GCS emulator"
WS_TEST_STORAGE=gcs run_tests "${gcs_filter[@]}"

# The server binary of the test build (integration tests build it): passes 3 to 5 use it as is.
export WORKSPACE_SERVER_BIN="$CARGO_TARGET_DIR/debug/workspace-server"

step "test 3: web UI in Chromium (installs chromium and playwright-core if missing)"
scripts/ui-deps.sh
scripts/ui-test.sh

step "test 3b: MCP through the official Python SDK (stdio and streamable HTTP)"
scripts/mcp-sdk-test.sh

step "test 4: API fuzzing (schemathesis)"
scripts/api-fuzz.sh

step "test 5: generated clients (openapi-spec-validator, Redocly, orval, openapi-python-client)"
scripts/client-test.sh

step "test 6: fuzz targets (bounded)"
FUZZ_SECONDS="${FUZZ_SECONDS:-8}" scripts/fuzz.sh
step_end
