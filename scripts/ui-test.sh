#!/usr/bin/env bash
# Runs the web UI tests: builds the server binary, then `node --test` in ui-tests/ drives real
# headless Chromium (/usr/bin/chromium) against it on loopback. Screenshots of each view land in
# target/ui-screenshots/ at the repository root. Run scripts/ui-deps.sh first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# scripts/test.sh passes the server binary of its test build; alone, this builds one.
if [[ -z "${WORKSPACE_SERVER_BIN:-}" ]]; then
  cargo build -p workspace-server
  target_dir="${CARGO_TARGET_DIR:-$root/target}"
  case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
  export WORKSPACE_SERVER_BIN="$target_dir/debug/workspace-server"
fi
[[ -x "$WORKSPACE_SERVER_BIN" ]] || { echo "ui-test: no binary at $WORKSPACE_SERVER_BIN" >&2; exit 1; }
[[ -x /usr/bin/chromium ]] || { echo "ui-test: /usr/bin/chromium is missing; run scripts/ui-deps.sh" >&2; exit 1; }
[[ -d ui-tests/node_modules/playwright-core ]] || { echo "ui-test: run scripts/ui-deps.sh first" >&2; exit 1; }

export UI_SCREENSHOT_DIR="$root/target/ui-screenshots"
rm -rf "$UI_SCREENSHOT_DIR"
cd ui-tests
node --test --test-concurrency=1 tests/*.test.js
