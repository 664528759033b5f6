#!/usr/bin/env bash
# The listing-scale bench (issue 17): replicate's no-change and delta passes over millions of keys, against
# build/tools/synth_s3, a synthetic S3 endpoint that serves N generated keys as a source and as a replica target
# (no RGW: 10M objects would not fit in memstore). `make bench` runs it as a section of scripts/bench.sh; alone:
#   BENCH_SCALE_KEYS=1000000 scripts/bench_scale.sh         (the table on stdout and in build/bench-scale.md)
#
# Per key count (BENCH_SCALE_KEYS, comma- or space-separated; default "1000000 10000000"; 0 skips) and added
# latency per request (BENCH_SCALE_LATENCY, ms, default "0 20"; key counts over BENCH_SCALE_BIG, 5000000, only at
# BENCH_SCALE_BIG_LATENCY, "0": a first run over 10M keys at 20 ms lists one range for ~7 minutes; and only with
# BENCH_SCALE_BIG_MIN_GB, 12, free in $TMPDIR for its manifests and restore points), one synth_s3 serves s3://src and s3://dst on 127.0.0.1 and
# replicate runs with --endpoint (same endpoint: copies are server-side):
#   first      the first run on the target (no local state: one listing range, a sample taken for the next run)
#   no-change  the second run (the key ranges of the first run's sample)
#   delta      after synth_s3's next source generation (SIGUSR2): BENCH_SCALE_DELTA (0.001) of the source's
#              keys have new content; the run must copy exactly those
# then rclone copy (BENCH_SCALE_RCLONE_FLAGS, default as in issue 17) over the same endpoint: a no-change pass,
# and a delta pass after the next generation, only up to BENCH_SCALE_RCLONE_MAX keys (1000000: its listing is
# held in memory: 10-11 GB RSS at 1M) and only with BENCH_SCALE_RCLONE_MIN_MB (13000) of memory available.
# Figures per run: wall, client CPU (user+sys) and peak RSS (scripts/bench_report.py measure), LIST requests
# and the endpoint's own CPU (its counts before and after, SIGUSR1), and the check: synth_s3 compares every
# source key with the target's latest object (target_differs must be 0), and replicate's copied count must be the
# number of keys the generation changed.
# BENCH_SCALE_ETAG_DIFFERS=1: every target object reports an ETag that is not its source's (synth_s3
# --target-etag-differs, as multipart or SSE-KMS copies), with the source's ETag in the metadata replicate's copies
# carry: the first run HEADs every key and records the mappings, the no-change run must make no HEAD at all (the
# source-ETag index answers; its peak RSS is the index's memory), the delta run only the changed keys' copies.
# BENCH_RESULTS=FILE appends the result lines there (scripts/bench.sh does; its report shows the table).
set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
BUILD=${BUILD:-build}
REPORT=$root/scripts/bench_report.py
BENCH_SCALE_KEYS=${BENCH_SCALE_KEYS:-1000000 10000000}
BENCH_SCALE_LATENCY=${BENCH_SCALE_LATENCY:-0 20}
BENCH_SCALE_BIG=${BENCH_SCALE_BIG:-5000000}
BENCH_SCALE_BIG_LATENCY=${BENCH_SCALE_BIG_LATENCY:-0}
BENCH_SCALE_BIG_MIN_GB=${BENCH_SCALE_BIG_MIN_GB:-12}
BENCH_SCALE_DELTA=${BENCH_SCALE_DELTA:-0.001}
BENCH_SCALE_RCLONE_MAX=${BENCH_SCALE_RCLONE_MAX:-1000000}
BENCH_SCALE_RCLONE_MIN_MB=${BENCH_SCALE_RCLONE_MIN_MB:-13000}
BENCH_SCALE_RCLONE_FLAGS=${BENCH_SCALE_RCLONE_FLAGS:---fast-list --checksum --transfers 64 --checkers 64}
BENCH_SCALE_TIMEOUT=${BENCH_SCALE_TIMEOUT:-1800}
BENCH_SCALE_ETAG_DIFFERS=${BENCH_SCALE_ETAG_DIFFERS:-0}
etag_flag=() no_change_heads=-1
[ "$BENCH_SCALE_ETAG_DIFFERS" = 1 ] && etag_flag=(--target-etag-differs) no_change_heads=0

say() { printf 'bench-scale: %s\n' "$*"; }
die() { printf 'bench-scale: error: %s\n' "$*" >&2; exit 1; }

keys_list=$(echo "$BENCH_SCALE_KEYS" | tr ',' ' ')
for k in $keys_list; do [[ $k =~ ^[0-9]+$ ]] || die "BENCH_SCALE_KEYS: '$k' is not a number of keys"; done
for l in $BENCH_SCALE_LATENCY; do [[ $l =~ ^[0-9]+$ ]] || die "BENCH_SCALE_LATENCY: '$l' is not milliseconds"; done
[ "$keys_list" = 0 ] && { say "BENCH_SCALE_KEYS=0: skipped"; exit 0; }
for c in python3 /usr/bin/time timeout; do command -v "$c" >/dev/null || die "'$c' not found"; done
{ [ -x "$BUILD/replicate" ] && [ -x "$BUILD/tools/synth_s3" ]; } || die "$BUILD/replicate or $BUILD/tools/synth_s3 missing: run make all"

work=$(mktemp -d "${TMPDIR:-/tmp}/replicate-bench-scale.XXXXXX") || die "mktemp"
SPID=""
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "${MEASURE_PID:-}" ] && kill -TERM "$MEASURE_PID" 2>/dev/null && wait "$MEASURE_PID" 2>/dev/null
  [ -n "$SPID" ] && kill -TERM "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

mkdir -p "$work/bin" "$BUILD"
cp "$BUILD/replicate" "$BUILD/tools/synth_s3" "$work/bin/" || die "copy binaries" # others may rebuild meanwhile
REP=$work/bin/replicate
SYNTH=$work/bin/synth_s3
RESULTS=${BENCH_RESULTS:-$BUILD/bench-scale.jsonl}
[ -n "${BENCH_RESULTS:-}" ] || : >"$RESULTS"

# The client sees only these keys and this endpoint.
unset AWS_CA_BUNDLE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
  AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 RCLONE_CONFIG
AK=AKIDSYNTHBENCH
SK=synth-bench-secret-0123456789
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$work/aws-config AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials
: >"$AWS_CONFIG_FILE"
printf '[synth]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$AK" "$SK" >"$AWS_SHARED_CREDENTIALS_FILE"

# ---- the endpoint
synth_start() { # KEYS LATENCY_MS
  rm -f "$work/counts.json"
  "$SYNTH" --listen 127.0.0.1:0 --keys "$AK:$SK" --objects "$1" --latency-ms "$2" --change "$BENCH_SCALE_DELTA" \
    --count-file "$work/counts.json" "${etag_flag[@]}" >"$work/synth.out" 2>>"$work/synth.err" &
  SPID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q '^listening on' "$work/synth.out" 2>/dev/null && break
    sleep 0.05
  done
  PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/synth.out")
  [ -n "$PORT" ] || die "synth_s3 did not start: $(tail -n 3 "$work/synth.err")"
  EP=http://127.0.0.1:$PORT
  echo "$SPID synth" >"$work/synth.pids"
  printf '[synth]\ntype = s3\nprovider = Other\nendpoint = %s\naccess_key_id = %s\nsecret_access_key = %s\n' \
    "$EP" "$AK" "$SK" >"$work/rclone.conf"
}
synth_stop() {
  kill -TERM "$SPID" 2>/dev/null
  wait "$SPID" 2>/dev/null
  SPID=""
}
dump_no() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dump"])' "$work/counts.json" 2>/dev/null || echo 0; }
# counts OUT [SIGNAL]: the endpoint writes its counts (USR1; USR2 first makes the next source generation)
counts() {
  local before i
  before=$(dump_no)
  kill "-${2:-USR1}" "$SPID" || die "synth_s3 is gone: $(tail -n 3 "$work/synth.err")"
  for ((i = 0; i < 1200; i++)); do
    [ "$(dump_no)" -gt "$before" ] && break
    sleep 0.1
  done
  [ "$(dump_no)" -gt "$before" ] || die "synth_s3 did not write its counts"
  cp "$work/counts.json" "$1"
}

MEASURE_PID=""
measure() { # BASE CMD...
  local base=$1
  shift
  python3 "$REPORT" measure --out "$base.m.json" --server-pids "$work/synth.pids" --stdout "$base.out" \
    --stderr "$base.err" -- "$@" >/dev/null &
  MEASURE_PID=$!
  wait "$MEASURE_PID"
  MEASURE_PID=""
}

run_seq=0
run() { # KEYS LATENCY TOOL PHASE EXPECT_COPIED EXPECT_HEADS CMD...
  local keys=$1 lat=$2 tool=$3 phase=$4 expect=$5 heads=$6 base tj=()
  shift 6
  run_seq=$((run_seq + 1))
  base=$work/s$run_seq
  counts "$base.before.json"
  measure "$base" "$@"
  counts "$base.after.json"
  [ "$tool" = replicate ] && tj=(--tool-json "$base.out")
  python3 "$REPORT" synth-record --results "$RESULTS" --measure "$base.m.json" --before "$base.before.json" \
    --after "$base.after.json" --expect-copied "$expect" --expect-heads "$heads" "${tj[@]}" kind=synth keys="$keys" latency_ms="$lat" \
    tool="$tool" phase="$phase" || { tail -n 5 "$base.err" | sed 's/^/    | /'; }
}

changed() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["changed"])' "$1"; }

for keys in $keys_list; do
  lats=$BENCH_SCALE_LATENCY
  if [ "$keys" -gt "$BENCH_SCALE_BIG" ]; then
    lats=$BENCH_SCALE_BIG_LATENCY
    free_gb=$(df -Pk "$work" | awk 'NR == 2 { print int($4 / 1048576) }')
    if [ "${free_gb:-0}" -lt "$BENCH_SCALE_BIG_MIN_GB" ]; then
      say "$keys keys skipped: ${free_gb:-?} GB free in $work < BENCH_SCALE_BIG_MIN_GB=$BENCH_SCALE_BIG_MIN_GB"
      continue
    fi
  fi
  for lat in $lats; do
    say "$keys keys, $lat ms per request: replicate"
    synth_start "$keys" "$lat"
    state=$work/state-$keys-$lat
    CMD=(timeout -k 10 "$BENCH_SCALE_TIMEOUT" "$REP" --endpoint "$EP" --profile synth --no-progress --settle 0
      --max-passes 1 --json --state-dir "$state" s3://src s3://dst)
    run "$keys" "$lat" replicate first 0 -1 "${CMD[@]}"
    run "$keys" "$lat" replicate no-change 0 "$no_change_heads" "${CMD[@]}"
    counts "$work/gen.json" USR2
    run "$keys" "$lat" replicate delta "$(changed "$work/gen.json")" -1 "${CMD[@]}"
    rm -rf "$state"
    if [ "$keys" -le "$BENCH_SCALE_RCLONE_MAX" ] && [ "$BENCH_SCALE_ETAG_DIFFERS" != 1 ] && command -v rclone >/dev/null; then
      avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
      if [ "$avail" -lt "$BENCH_SCALE_RCLONE_MIN_MB" ]; then
        say "rclone skipped: $avail MiB available < BENCH_SCALE_RCLONE_MIN_MB=$BENCH_SCALE_RCLONE_MIN_MB"
      else
        say "$keys keys, $lat ms per request: rclone copy $BENCH_SCALE_RCLONE_FLAGS"
        # shellcheck disable=SC2206 # the flags are words
        RC=(timeout -k 10 "$BENCH_SCALE_TIMEOUT" env -u AWS_CA_BUNDLE rclone --config "$work/rclone.conf" copy
          synth:src synth:dst $BENCH_SCALE_RCLONE_FLAGS)
        run "$keys" "$lat" rclone no-change -1 -1 "${RC[@]}"
        counts "$work/gen.json" USR2
        run "$keys" "$lat" rclone delta -1 -1 "${RC[@]}"
      fi
    fi
    synth_stop
  done
done
if [ -z "${BENCH_RESULTS:-}" ]; then
  python3 "$REPORT" synth-report --results "$RESULTS" --out "$BUILD/bench-scale.md" || die "report"
  say "table: $BUILD/bench-scale.md; raw figures: $RESULTS"
fi
