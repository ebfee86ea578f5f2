#!/usr/bin/env bash
# Installs what the web UI tests need, and nothing when it is already there (idempotent):
#  - Chromium and its driver from Debian (`chromium`, `chromium-driver`) when /usr/bin/chromium
#    is missing; the tests drive this system browser and never download one;
#  - playwright-core from ui-tests/package-lock.json (`npm ci`, skipped when node_modules
#    already matches the lock file).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ ! -x /usr/bin/chromium ]]; then
  echo "ui-deps: installing chromium and chromium-driver"
  sudo=""
  if [[ "$(id -u)" != 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi
/usr/bin/chromium --version 2>/dev/null || true

command -v npm >/dev/null || { echo "ui-deps: npm is required (Node.js 20 or later)" >&2; exit 1; }
cd "$root/ui-tests"
stamp="node_modules/.package-lock.json"
if [[ -f "$stamp" && "$stamp" -nt package-lock.json && -d node_modules/playwright-core ]]; then
  echo "ui-deps: ui-tests/node_modules is up to date"
else
  echo "ui-deps: npm ci in ui-tests/"
  # playwright-core ships no browser; this variable only makes sure nothing tries to fetch one.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
