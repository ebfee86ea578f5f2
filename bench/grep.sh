#!/usr/bin/env bash
# grep_workspace_files' engine against ripgrep (SPEC §15, issue #16): the same 1 000 files of
# 10 KiB (10 MiB) in a workspace (SQLite file on disk; files this small live in their rows, as
# with the default WS_INLINE_MAX_BYTES) and in a folder on disk, the same pattern, best of 7 warm
# runs each (crates/workspace-core/examples/grep_bench.rs, release build). Installs ripgrep with
# apt-get when it is missing. Not part of CI's timed path: run it by hand and copy the figures
# into bench/NOTES.md (which bench/run.sh includes in docs/BENCHMARKS.md).
#
#   bench/grep.sh [files] [bytes per file]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}
command -v rg >/dev/null || apt-get install -y ripgrep >/dev/null
echo "ripgrep: $(rg --version | head -1); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cd "$ROOT"
cargo run --quiet --release -p workspace-core --example grep_bench -- "${1:-1000}" "${2:-10240}"
