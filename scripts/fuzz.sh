#!/usr/bin/env bash
# Bounded fuzzing: every cargo-fuzz target for FUZZ_SECONDS (default 8) each. Installs the pinned
# cargo-fuzz into the tools cache if missing (scripts/tools.sh). Needs the nightly toolchain (installed on this machine kind).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export WS_CACHE_DIR="${WS_CACHE_DIR:-$HOME/.cache/workspace}"
export PATH="$WS_CACHE_DIR/tools/bin:$PATH"
seconds="${FUZZ_SECONDS:-8}"
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/workspace-fuzz-target}"
../scripts/tools.sh cargo-fuzz
targets=(path uri data_uri range disposition upload)
# The targets are safe Rust: libFuzzer's coverage guidance without AddressSanitizer (which would
# instrument every dependency for memory errors safe code cannot make, at a large compile cost).
cargo +nightly fuzz build --sanitizer none --target-dir "$target_dir"
found=$(mktemp -d)
trap 'rm -rf "$found"' EXIT
for target in "${targets[@]}"; do
    echo "fuzz: $target for ${seconds}s"
    mkdir -p "$found/$target"
    # New inputs go to a temp dir (first corpus argument); the committed seeds are read only.
    if ! cargo +nightly fuzz run --sanitizer none --target-dir "$target_dir" "$target" "$found/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 >"$found/$target.log" 2>&1; then
        cat "$found/$target.log"
        echo "fuzz: $target FAILED (crash input saved under fuzz/artifacts/$target)"
        exit 1
    fi
    grep -E "^Done|runs in" "$found/$target.log" | tail -n 1 || true
done
echo "fuzz: all targets ran clean"
