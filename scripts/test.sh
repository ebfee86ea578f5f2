#!/usr/bin/env bash
# The whole test suite. Starts what it needs (PostgreSQL if it is down, the GCS emulator) and
# stops what it started:
#   1. every crate's tests, suites on SQLite and PostgreSQL with blobs on local disk (the GCS
#      backend's own tests and the redirect test use the emulator);
#   2. the manager, HTTP and two-replica suites again with blobs in the GCS emulator.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}"

scripts/services.sh postgres
eval "$(scripts/fake-gcs.sh start)"
trap 'scripts/fake-gcs.sh stop' EXIT

echo "=== pass 1: local disk"
cargo test --workspace --locked

echo "=== pass 2: GCS emulator"
export WS_TEST_STORAGE=gcs
cargo test --locked -p workspace-core --test manager
cargo test --locked -p workspace-http --test api
cargo test --locked -p workspace-server --test replicas
