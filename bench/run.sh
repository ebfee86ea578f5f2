#!/usr/bin/env bash
# Side-by-side benchmarks: our server (SQLite + local disk) vs nginx and dufs, on loopback.
#
#   bench/run.sh           full run (1 GiB files, 20 s of small writes, 100 000-file listing, each
#                          throughput measure 3 times); writes docs/BENCHMARKS.md (about 15 minutes)
#   bench/run.sh --quick   small sizes, a few seconds of load: proves the harness runs (CI);
#                          debug build unless BENCH_PROFILE=release; writes $BENCH_OUT
#                          (default ~/.cache/workspace-bench/BENCHMARKS-quick.md)
#
# Installs what it needs: nginx (apt-get, if missing) and dufs (a pinned version, cached by
# scripts/tools.sh). Every server listens on 127.0.0.1 only; every load loop is
# bounded in time and count. Exits non-zero when any step fails.
#
# Each throughput measure runs BENCH_REPEAT times (3; 2 in quick mode), ours and the peers
# interleaved (ours, nginx, dufs, ours, …) so a change in the machine's load hits all of them;
# the report gives the median and the spread. Our server runs with its defaults except the
# sizes the runs need (max file size, quota, media size) and the number of change-feed streams
# one user may open (the feed run opens 200).
set -euo pipefail

QUICK=0
case "${1:-}" in
  --quick) QUICK=1 ;;
  "") ;;
  *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/workspace-target}
CACHE=${BENCH_CACHE:-$HOME/.cache/workspace-bench}
PORT_BASE=${BENCH_PORT_BASE:-18480}
OURS_PORT=$PORT_BASE
NGINX_PORT=$((PORT_BASE + 1))
DUFS_PORT=$((PORT_BASE + 2))
MiB=$((1024 * 1024))

MEDIA_PORT=$((PORT_BASE + 3))

if [[ $QUICK == 1 ]]; then
  BIG=$((64 * MiB)); RUNS=3; PAR=8; SLICE=$((8 * MiB)); SW_SECS=2; LIST_N=2000; LOAD_SECS=1
  MANY_WRITES=1000; MEDIA=$((16 * MiB)); REPEAT=${BENCH_REPEAT:-2}
  OUT=${BENCH_OUT:-$CACHE/BENCHMARKS-quick.md}
else
  BIG=$((1024 * MiB)); RUNS=3; PAR=8; SLICE=$((256 * MiB)); SW_SECS=20; LIST_N=100000; LOAD_SECS=10
  MANY_WRITES=100000; MEDIA=$((200 * MiB)); REPEAT=${BENCH_REPEAT:-3}
  OUT=${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}
fi

log() { printf '\n== %s\n' "$*" >&2; }
mkdir -p "$CACHE"

# --- tools -------------------------------------------------------------------------------
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
  log "installing nginx (apt-get)"
  SUDO=""; [[ $EUID -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

DUFS=$("$ROOT/scripts/tools.sh" --path dufs)

# Full runs measure release binaries. The quick run only proves the harness works, so by default
# it takes the debug build the test step already made (CI would otherwise compile the workspace a
# third time, in release, for a smoke test).
PROFILE=${BENCH_PROFILE:-$([[ $QUICK == 1 ]] && echo debug || echo release)}
log "building $PROFILE binaries"
(cd "$ROOT" && cargo build --profile "$([[ $PROFILE == debug ]] && echo dev || echo "$PROFILE")" --quiet \
  -p workspace-server -p workspace-bench)
SERVER=$CARGO_TARGET_DIR/$PROFILE/workspace-server
BENCH=$CARGO_TARGET_DIR/$PROFILE/workspace-bench

# --- processes -------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ws-bench.XXXXXX")
chmod 755 "$WORK"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
  if [[ -n ${PG_DB:-} ]]; then # the PostgreSQL run's database
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" 2>/dev/null || true
  fi
  if [[ ${STARTED_GCS:-0} == 1 ]]; then # the emulator, when this run started it
    "$ROOT/scripts/fake-gcs.sh" stop 2>/dev/null || true
  fi
}
trap cleanup EXIT

wait_port() { # name port
  local i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start on port $2" >&2
  return 1
}

RESULTS=$WORK/results.jsonl
UPTIME_START=$(uptime | sed 's/.*load average: //')
DATA=$WORK/ours
WWW=$WORK/www
mkdir -p "$DATA" "$WWW/nginx-up" "$WWW/dufs-up"

export WS_BIND=127.0.0.1:$OURS_PORT WS_DATA_DIR=$DATA WS_MAX_FILE_SIZE=2GiB WS_QUOTA_BYTES=1000GiB
export WS_MAX_MEDIA_BYTES=1GiB
export WS_JWT_SECRET=bench-secret-0123456789abcdef RUST_LOG=${RUST_LOG:-warn}
# The server's defaults otherwise: 16 clients of one user writing at once wait in line for an
# upload slot (SPEC §7) rather than being refused, so the small-writes run needs no lifted limit.
# The feed run opens 200 change-feed streams of one user (the default bound is 8 per user).
export WS_MAX_EVENT_STREAMS=256
# The image block, pointed at the stand-in images API whose image is a $MEDIA-byte URL: the
# remote-media run stores it through run_block → store_media_file. The block trusts its own
# configured origin, so nothing else on loopback is opened to the fetcher.
export OPENAI_BASE_URL=http://127.0.0.1:$MEDIA_PORT
"$BENCH" serve-media --port "$MEDIA_PORT" --size "$MEDIA" >"$WORK/media.log" 2>&1 &
PIDS+=("$!")
wait_port media-api "$MEDIA_PORT"
# Local disk whatever the caller's shell holds (`eval "$(scripts/fake-gcs.sh start)"` exports GCS).
unset WS_DATABASE_URL DATABASE_URL WS_STORAGE_DIR WORKSPACE_STORAGE_DIR WS_STORAGE_BACKEND MEDIA_GCS_BUCKET_NAME \
  WS_GCS_BUCKET WS_GCS_ENDPOINT WS_GCS_CREDENTIALS || true
log "starting our server on 127.0.0.1:$OURS_PORT"
"$SERVER" serve >"$WORK/ours.log" 2>&1 &
OURS_PID=$!
PIDS+=("$OURS_PID")
wait_port workspace-server "$OURS_PORT"
TOKEN=$("$SERVER" token --user bench-user)
AUTH="Authorization: Bearer $TOKEN"
OURS=http://127.0.0.1:$OURS_PORT/api/workspace

b() { "$BENCH" "$@" --results "$RESULTS"; }

log "upload $BIG bytes: ours (multipart, durable before 201)"
sync
b upload --key up_ours --url "$OURS/files?path=/bench/big.bin" --form multipart --size "$BIG" \
  --header "$AUTH" --pid "$OURS_PID" --id-out "$WORK/big.id"
BIG_ID=$(cat "$WORK/big.id")
log "the disk: $BIG bytes to a new file, fdatasync"
sync
b disk --key disk --path "$WORK/disk.bin" --size "$BIG"
# The peers serve the very bytes ours stored: a hard link to our blob. Blobs are keyed by content,
# not by file id; the big file is the only blob of its size.
BLOB=$(find "$DATA/files/objects" -type f -size "${BIG}c" | head -n1)
[[ -n $BLOB ]] || { echo "blob of $BIG_ID ($BIG bytes) not found under $DATA/files/objects" >&2; exit 1; }
ln "$BLOB" "$WWW/big.bin"

NGINX_DIR=$WORK/nginx
mkdir -p "$NGINX_DIR/body"
USER_LINE=""; [[ $EUID -eq 0 ]] && USER_LINE="user root;"
cat >"$NGINX_DIR/nginx.conf" <<EOF
$USER_LINE
worker_processes auto;
daemon off;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  default_type application/octet-stream;
  client_body_temp_path $NGINX_DIR/body;
  proxy_temp_path $NGINX_DIR/body;
  fastcgi_temp_path $NGINX_DIR/body;
  uwsgi_temp_path $NGINX_DIR/body;
  scgi_temp_path $NGINX_DIR/body;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WWW;
    location / { limit_except GET HEAD { deny all; } }
    location /nginx-up/ {
      dav_methods PUT;
      create_full_put_path on;
      client_max_body_size 0;
    }
  }
}
EOF
log "starting nginx on 127.0.0.1:$NGINX_PORT and dufs on 127.0.0.1:$DUFS_PORT"
"$NGINX" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/error.log" &
PIDS+=("$!")
"$DUFS" "$WWW" -b 127.0.0.1 -p "$DUFS_PORT" --allow-upload >"$WORK/dufs.log" 2>&1 &
PIDS+=("$!")
wait_port nginx "$NGINX_PORT"
wait_port dufs "$DUFS_PORT"
NGINX_URL=http://127.0.0.1:$NGINX_PORT
DUFS_URL=http://127.0.0.1:$DUFS_PORT

log "upload $BIG bytes, $REPEAT× each: ours (again, to another path), nginx (WebDAV PUT), dufs (PUT); neither peer fsyncs"
for i in $(seq 1 "$REPEAT"); do
  if [[ $i -gt 1 ]]; then
    sync
    b upload --key up_ours --url "$OURS/files?path=/bench/big-$i.bin" --form multipart --size "$BIG" \
      --header "$AUTH" --pid "$OURS_PID"
  fi
  sync
  b upload --key up_nginx --url "$NGINX_URL/nginx-up/big.bin" --form put --size "$BIG"
  sync
  b upload --key up_dufs --url "$DUFS_URL/dufs-up/big.bin" --form put --size "$BIG"
  sync
  rm -f "$WWW/nginx-up/big.bin" "$WWW/dufs-up/big.bin"
done

log "download $BIG bytes, $REPEAT× $RUNS runs each"
for _ in $(seq 1 "$REPEAT"); do
  b download --key dl_ours --url "$OURS/files/$BIG_ID/download" --header "$AUTH" --runs "$RUNS" --expect "$BIG"
  b download --key dl_nginx --url "$NGINX_URL/big.bin" --runs "$RUNS" --expect "$BIG"
  b download --key dl_dufs --url "$DUFS_URL/big.bin" --runs "$RUNS" --expect "$BIG"
done

log "$PAR parallel downloads of $SLICE bytes each, $REPEAT×"
for _ in $(seq 1 "$REPEAT"); do
  b parallel-download --key pdl_ours --url "$OURS/files/$BIG_ID/download" --header "$AUTH" \
    --parallel "$PAR" --slice "$SLICE" --file-size "$BIG" --pid "$OURS_PID"
  b parallel-download --key pdl_nginx --url "$NGINX_URL/big.bin" --parallel "$PAR" --slice "$SLICE" --file-size "$BIG"
  b parallel-download --key pdl_dufs --url "$DUFS_URL/big.bin" --parallel "$PAR" --slice "$SLICE" --file-size "$BIG"
done

log "1 MiB ranges, 16 connections, ${LOAD_SECS}s each, $REPEAT×"
RANGE_ARGS=(--mode range --concurrency 16 --seconds "$LOAD_SECS" --max 2000000 --range-size "$MiB" --file-size "$BIG")
for _ in $(seq 1 "$REPEAT"); do
  b load --key range_ours --url "$OURS/files/$BIG_ID/download" --header "$AUTH" "${RANGE_ARGS[@]}"
  b load --key range_nginx --url "$NGINX_URL/big.bin" "${RANGE_ARGS[@]}"
  b load --key range_dufs --url "$DUFS_URL/big.bin" "${RANGE_ARGS[@]}"
done

log "4 KiB reads of 64 files, 16 connections, ${LOAD_SECS}s each, $REPEAT×"
# Small enough to live in their database rows on our side (the default WS_INLINE_MAX_BYTES);
# the peers serve the same bytes from files.
b small-files --key small_files --url "$OURS/files?path=/small/{n}.bin" --header "$AUTH" --count 64 --size 4096 \
  --www "$WWW/small" --ours-out "$WORK/small-ours.txt" --peers-out "$WORK/small-peers.txt"
SMALL_ARGS=(--concurrency 16 --seconds "$LOAD_SECS" --max 5000000)
for _ in $(seq 1 "$REPEAT"); do
  b load --key small_read_ours --url "$OURS/files" --header "$AUTH" --paths "$WORK/small-ours.txt" "${SMALL_ARGS[@]}"
  b load --key small_read_nginx --url "$NGINX_URL/" --paths "$WORK/small-peers.txt" "${SMALL_ARGS[@]}"
  b load --key small_read_dufs --url "$DUFS_URL/" --paths "$WORK/small-peers.txt" "${SMALL_ARGS[@]}"
done

log "4 KiB writes, 16 clients, ${SW_SECS}s each, $REPEAT×; beside ours, the same while 200 change-feed (SSE) streams of another user are open"
# Every run of ours adds its files to the same database, and writes slow a little as it grows, so
# the runs with idle streams (row 8a, compared with row 6) alternate with the plain ones, first
# after and then before them (ABBA), rather than all coming after: both then run, on the median,
# on a database of about the same size, and 8a measures the streams, not the growth.
SW_ARGS=(--concurrency 16 --seconds "$SW_SECS" --size 4096 --max 1000000)
WATCH_TOKEN=$("$SERVER" token --user bench-watcher)
sw_ours() {
  b small-writes --key sw_ours --url "$OURS/files?path=/sw$1/{n}.bin" --form multipart --header "$AUTH" "${SW_ARGS[@]}" \
    --pid "$OURS_PID"
  sync
}
sw_ours_idle_streams() {
  b small-writes --key sw_ours_feed_idle --url "$OURS/files?path=/swi$1/{n}.bin" --form multipart --header "$AUTH" \
    "${SW_ARGS[@]}" --subscribers 200 --events-url "$OURS/events" --events-header "Authorization: Bearer $WATCH_TOKEN" \
    --pid "$OURS_PID"
  sync
}
for i in $(seq 1 "$REPEAT"); do
  if ((i % 2)); then sw_ours "$i"; sw_ours_idle_streams "$i"; else sw_ours_idle_streams "$i"; sw_ours "$i"; fi
  b small-writes --key sw_dufs --url "$DUFS_URL/dufs-up/sw$i/{n}.bin" --form put "${SW_ARGS[@]}"
  sync
  b small-writes --key sw_nginx --url "$NGINX_URL/nginx-up/sw$i/{n}.bin" --form put "${SW_ARGS[@]}"
  sync
done
log "4 KiB writes, 16 clients, ${SW_SECS}s, while 200 change-feed (SSE) streams of the same user are open"
b small-writes --key sw_ours_feed --url "$OURS/files?path=/swf/{n}.bin" --form multipart --header "$AUTH" \
  "${SW_ARGS[@]}" --subscribers 200 --events-url "$OURS/events" --pid "$OURS_PID"
sync

log "$MANY_WRITES small writes, 16 clients: peak RSS"
b small-writes --key sw_ours_many --url "$OURS/files?path=/many/{n}.bin" --form multipart --header "$AUTH" \
  --concurrency 16 --seconds 1800 --size 4096 --max "$MANY_WRITES" --pid "$OURS_PID"

log "store_media_file of a $MEDIA-byte remote URL (run_block, image block): peak RSS"
b media --key media_ours --base "http://127.0.0.1:$OURS_PORT" --header "$AUTH" --expect "$MEDIA" --pid "$OURS_PID"

log "listing: seed $LIST_N files in 1000 folders, each with one older version; then pages of 100"
b seed --key seed --database-url "sqlite://$DATA/workspace.db?mode=rwc" --user bench-list --count "$LIST_N"
LIST_TOKEN=$("$SERVER" token --user bench-list)
b load --key list_ours --url "$OURS/files?limit=100&path_prefix=/list" --header "Authorization: Bearer $LIST_TOKEN" \
  --mode list --seeded "$LIST_N" --concurrency 1 --seconds "$LOAD_SECS" --max 100000
b load --key list_folders_ours --url "$OURS/files?limit=100&path_prefix=/list&delimiter=/" \
  --header "Authorization: Bearer $LIST_TOKEN" --mode list --seeded "$LIST_N" --concurrency 1 --seconds "$LOAD_SECS" --max 100000
# The UI's listings (SPEC §18): newest first, largest first (every seeded copy shares its size and
# creation time, the worst case for ties), and a name search matching 1 file in 1000 (it examines a
# bounded window of rows per page).
for sorted in "newest:sort=created_at&order=desc" "largest:sort=size&order=desc" "search:q=f00012"; do
  b load --key "list_${sorted%%:*}_ours" --url "$OURS/files?limit=100&path_prefix=/list&${sorted#*:}" \
    --header "Authorization: Bearer $LIST_TOKEN" --mode plain --concurrency 1 --seconds "$LOAD_SECS" --max 100000
done

log "4 KiB writes on PostgreSQL + the GCS emulator: a second server of ours, 16 clients, ${SW_SECS}s, $REPEAT×"
# Small files are kept in their rows (the default WS_INLINE_MAX_BYTES), so these writes never touch
# object storage; the emulator is there because that is the deployment being measured.
"$ROOT/scripts/services.sh" postgres
# An emulator already running (a caller's) is used and left running; one started here is stopped
# at exit.
if "$ROOT/scripts/fake-gcs.sh" running; then STARTED_GCS=0; else STARTED_GCS=1; fi
GCS_ENV=$("$ROOT/scripts/fake-gcs.sh" start)
PG_DB=ws_bench_$$
PG_ADMIN=(psql -q -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1)
"${PG_ADMIN[@]}" -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB"
PG_PORT=$((PORT_BASE + 4))
(
  eval "$GCS_ENV"
  export WS_BIND=127.0.0.1:$PG_PORT WS_DATA_DIR=$WORK/pg WS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/$PG_DB
  exec "$SERVER" serve
) >"$WORK/pg.log" 2>&1 &
PG_PID=$!
PIDS+=("$PG_PID")
wait_port workspace-server-pg "$PG_PORT"
for i in $(seq 1 "$REPEAT"); do
  b small-writes --key sw_pg --url "http://127.0.0.1:$PG_PORT/api/workspace/files?path=/sw$i/{n}.bin" --form multipart \
    --header "$AUTH" "${SW_ARGS[@]}" --pid "$PG_PID"
done
kill "$PG_PID"
wait "$PG_PID" 2>/dev/null || true

UPTIME_END=$(uptime | sed 's/.*load average: //')
MODE="full"; [[ $QUICK == 1 ]] && MODE="quick (small sizes, $PROFILE build; not comparable)"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //' || echo unknown)
mkdir -p "$(dirname "$OUT")"
"$BENCH" report --results "$RESULTS" --out "$OUT" --notes "$ROOT/bench/NOTES.md" \
  --meta "date=$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --meta "mode=$MODE" \
  --meta "machine=$(nproc) cores (nproc), $CPU, $(free -g | awk '/Mem:/{print $2}') GiB RAM" \
  --meta "kernel=$(uname -r)" \
  --meta "load average (1, 5, 15 min) at start=$UPTIME_START" \
  --meta "load average at end=$UPTIME_END" \
  --meta "sizes=file $((BIG / MiB)) MiB, each throughput measure $REPEAT× (downloads: $RUNS runs each, median), $PAR parallel × $((SLICE / MiB)) MiB, small writes ${SW_SECS}s × 16 clients × 4 KiB, $MANY_WRITES writes for the RSS run, remote media $((MEDIA / MiB)) MiB, list over $LIST_N files (1000 folders, one older version each), ${LOAD_SECS}s per latency run" \
  --meta "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')" \
  --meta "versions=$("$NGINX" -v 2>&1 | sed 's/.*: //'), $("$DUFS" --version)" \
  --meta "rerun=\`bench/run.sh\` (full) or \`bench/run.sh --quick\` (smoke test)"
log "report written to $OUT"
