#!/usr/bin/env bash
# The whole test suite: every crate on SQLite + local disk and PostgreSQL, then the storage,
# manager and HTTP suites again on the GCS emulator. Starts what it needs (PostgreSQL if it is
# down, the GCS emulator) and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}"

scripts/services.sh postgres

# First pass: local disk (and each test's own SQLite file and PostgreSQL database).
cargo test --workspace --locked

# Second pass: the same suites with blobs in the GCS emulator.
eval "$(scripts/fake-gcs.sh start)"
trap 'scripts/fake-gcs.sh stop' EXIT
cargo test --locked -p workspace-storage --test gcs
WS_TEST_STORAGE=gcs cargo test --locked -p workspace-core --test manager
WS_TEST_STORAGE=gcs cargo test --locked -p workspace-http --test api
