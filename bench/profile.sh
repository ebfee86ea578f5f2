#!/usr/bin/env bash
# Instructions per request of our server, counted by valgrind's callgrind (stable on a noisy
# machine, unlike wall time): 4 KiB multipart writes of one user, 4 KiB reads (files kept in their
# rows) and 1 MiB ranges of a 64 MiB file, one client at a time, on SQLite + local disk with the
# server's defaults.
#
#   bench/profile.sh [SERVER_BINARY]     (default: the release build under $CARGO_TARGET_DIR)
#
# The server runs under callgrind with instrumentation off; each measure warms up, switches it on
# (`callgrind_control -i on`), sends its requests, switches it off and dumps. Prints one line per
# measure (instructions per request) and the inclusive share of the functions that do each step;
# the dumps stay in $PROFILE_OUT (default ~/.cache/workspace-bench/profile) for callgrind_annotate.
# Callgrind counts user-space instructions only: the kernel's copies and fsyncs do not show.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}
SERVER=${1:-$CARGO_TARGET_DIR/release/workspace-server}
BENCH=${PROFILE_BENCH:-$CARGO_TARGET_DIR/release/workspace-bench}
OUT=${PROFILE_OUT:-$HOME/.cache/workspace-bench/profile}
PORT=${BENCH_PORT_BASE:-18480}
WRITES=${PROFILE_WRITES:-2000}
READS=${PROFILE_READS:-2000}
RANGES=${PROFILE_RANGES:-200}
command -v valgrind >/dev/null || { echo "profile: valgrind is not installed" >&2; exit 1; }
[[ -x $SERVER && -x $BENCH ]] || {
  echo "profile: build first: cargo build --release -p workspace-server -p workspace-bench" >&2
  exit 1
}
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ws-profile.XXXXXX")
PID=""
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

export WS_BIND=127.0.0.1:$PORT WS_DATA_DIR=$WORK/data WS_JWT_SECRET=profile-secret-0123456789abcdef RUST_LOG=warn
unset WS_DATABASE_URL DATABASE_URL WS_STORAGE_DIR WORKSPACE_STORAGE_DIR WS_STORAGE_BACKEND WS_GCS_BUCKET \
  WS_GCS_ENDPOINT WS_GCS_CREDENTIALS || true
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.%p" \
  "$SERVER" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
rm -f "$OUT"/callgrind."$PID"*
TOKEN=$("$SERVER" token --user profile-user)
AUTH="Authorization: Bearer $TOKEN"
API=http://127.0.0.1:$PORT/api/workspace
b() { "$BENCH" "$@" --results "$WORK/results.jsonl" >/dev/null; }

# measure NAME COUNT: counts what runs between `on` and `off` and dumps it as callgrind.PID.N
measure() {
  local name=$1 count=$2
  shift 2
  callgrind_control -i on "$PID" >/dev/null
  "$@"
  callgrind_control -i off "$PID" >/dev/null
  callgrind_control -d "$name" "$PID" >/dev/null
  local dump
  dump=$(ls -t "$OUT"/callgrind."$PID".* | sed -n 1p)
  mv "$dump" "$OUT/$name.callgrind"
  local total
  total=$(callgrind_annotate "$OUT/$name.callgrind" 2>/dev/null | awk '!done && /PROGRAM TOTALS/ { gsub(",", "", $1); print $1 + 0; done = 1 }')
  printf '%-8s %8d requests  %10d instructions per request\n' "$name" "$count" $((total / count))
  # Inclusive instructions per request of the functions that do each step (the first, i.e.
  # largest, entry whose name matches), then the allocator's own instructions.
  callgrind_annotate --inclusive=yes --threshold=100 "$OUT/$name.callgrind" 2>/dev/null >"$WORK/inclusive.txt"
  callgrind_annotate --threshold=100 "$OUT/$name.callgrind" 2>/dev/null >"$WORK/self.txt"
  local step pattern
  for step in \
    "SQLite: statements (sqlite3_step)=sqlite3.c:sqlite3_step " \
    "SQLite: of which re-preparing=sqlite3.c:sqlite3Reprepare " \
    "sea-orm: building statements=StatementBuilder>::build " \
    "sea-orm: decoding rows=FromQueryResult>::from_query_result " \
    "JWT check=workspace_http::auth::authenticate" \
    "multipart parsing=multer::" \
    "SHA-256 (soft path under valgrind)=sha2::sha256::compress256 " \
    "HTTP/1 parse and encode=hyper::proto::h1::role::" \
    "local blob reads=workspace_storage::local::"; do
    pattern=${step#*=}
    awk -v n="$count" -v total="$total" -v label="${step%%=*}" -v pat="$pattern" '
      index($0, pat) && !done { ir = $1; gsub(",", "", ir); printf "    %-40s %9d  %5.1f%%\n", label, ir / n, 100 * ir / total; done = 1 }
      END { if (!done) printf "    %-40s %9s\n", label, "–" }' "$WORK/inclusive.txt"
  done
  awk -v n="$count" -v total="$total" '
    /malloc\.c:(_int_malloc|_int_free|malloc|free|malloc_consolidate|realloc|_int_realloc) / { ir = $1; gsub(",", "", ir); sum += ir }
    END { printf "    %-40s %9d  %5.1f%%\n", "malloc and free (self)", sum / n, 100 * sum / total }' "$WORK/self.txt"
}

# Writes: 300 warm-up writes, then $WRITES more, one client, each a new path.
b small-writes --key warm --url "$API/files?path=/warm/{n}.bin" --form multipart --header "$AUTH" \
  --concurrency 1 --seconds 600 --size 4096 --max 300
measure write "$WRITES" b small-writes --key write --url "$API/files?path=/w/{n}.bin" --form multipart \
  --header "$AUTH" --concurrency 1 --seconds 1800 --size 4096 --max "$WRITES"

# 4 KiB reads of 64 files kept in their rows.
b small-files --key files --url "$API/files?path=/small/{n}.bin" --header "$AUTH" --count 64 --size 4096 \
  --www "$WORK/www" --ours-out "$WORK/small.txt" --peers-out "$WORK/peers.txt"
b load --key warm --url "$API/files" --header "$AUTH" --paths "$WORK/small.txt" --concurrency 1 --seconds 600 --max 200
measure read "$READS" b load --key read --url "$API/files" --header "$AUTH" --paths "$WORK/small.txt" \
  --concurrency 1 --seconds 1800 --max "$READS"

# 1 MiB ranges of a 64 MiB file (a blob on disk).
MiB=$((1024 * 1024))
b upload --key big --url "$API/files?path=/big.bin" --form multipart --size $((64 * MiB)) --header "$AUTH" \
  --id-out "$WORK/big.id"
RANGE=(--url "$API/files/$(cat "$WORK/big.id")/download" --header "$AUTH" --mode range --concurrency 1
  --seconds 1800 --range-size "$MiB" --file-size $((64 * MiB)))
b load --key warm "${RANGE[@]}" --max 20
measure range "$RANGES" b load --key range "${RANGE[@]}" --max "$RANGES"
