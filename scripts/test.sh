#!/usr/bin/env bash
# The whole test suite. Installs and starts what it needs (PostgreSQL if it is down, the GCS
# emulator, Chromium and playwright-core, cargo-fuzz, schemathesis) and stops what it started:
#   1. every crate's tests: suites on SQLite and PostgreSQL with blobs on local disk (the GCS
#      backend's own tests and the redirect test use the emulator);
#   2. the manager, HTTP and two-replica suites again with blobs in the GCS emulator;
#   3. the web UI in headless Chromium against the real server;
#   4. API fuzzing from the OpenAPI spec (schemathesis) against the real server;
#   5. every cargo-fuzz target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}"

scripts/services.sh postgres
eval "$(scripts/fake-gcs.sh start)"
trap 'scripts/fake-gcs.sh stop' EXIT

echo "=== 1. cargo tests, local disk"
cargo test --workspace --locked

echo "=== 2. cargo tests, GCS emulator"
WS_TEST_STORAGE=gcs cargo test --locked -p workspace-core --test manager
WS_TEST_STORAGE=gcs cargo test --locked -p workspace-http --test api
WS_TEST_STORAGE=gcs cargo test --locked -p workspace-server --test replicas

echo "=== 3. web UI in Chromium"
scripts/ui-deps.sh
scripts/ui-test.sh

if [ -x scripts/api-fuzz.sh ]; then
    echo "=== 4. API fuzzing (schemathesis)"
    scripts/api-fuzz.sh
fi

echo "=== 5. fuzz targets (bounded)"
FUZZ_SECONDS="${FUZZ_SECONDS:-8}" scripts/fuzz.sh
