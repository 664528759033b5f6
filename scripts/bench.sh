#!/usr/bin/env bash
# `make bench`: replicate against rclone and `aws s3 sync`, side by side, on the same two local Ceph RGW
# servers (issue 6). Starts its own pair (state /tmp/replicate-bench-rgw, S3 on 127.0.0.1:7520 and :7521,
# i.e. scripts/rgw.sh with RGW_PORT_OFFSET=40, so it does not disturb the test servers) and stops it on exit.
#
# Corpora, seeded in A with build/tools/s3tool:
#   small  BENCH_SMALL (10000) objects of 1-8 KiB over 100 prefixes p00/..p99/
#   large  BENCH_LARGE_COUNT (6) objects of BENCH_LARGE_MB (128) MiB (multipart uploads, so multipart ETags)
#   mixed  BENCH_SMALL/5 objects of 1-8 KiB over 20 prefixes + 2 objects of BENCH_LARGE_MB/2 MiB
#   scale  BENCH_SCALE (100000; 0 = skip) objects of 1-8 KiB, made once, for the memory-scaling figure:
#          peak RSS of a replicate no-change pass over it against the one over the small corpus
# Tools (BENCH_TOOLS, default "replicate rclone aws"; rclone = rclone-64 + rclone-default, aws = aws-64 +
# aws-default): replicate; rclone copy with --transfers 64 --checkers 64 --checksum, and with its defaults;
# /usr/bin/aws s3 sync with its defaults and with s3.max_concurrent_requests 64. Modes (BENCH_MODES):
# same (both buckets on A, one set of keys: server-side copy) and cross (target on B, its own keys: the data
# passes through the client). aws s3 sync cannot copy between two endpoints, so in cross mode it does what a
# user would: sync A to a local temp dir, then that dir to B (BENCH_AWS_CROSS=skip leaves it out).
# Phases per tool and mode, each into a fresh versioned target: full copy, no-change pass, delta pass after
# 100 objects were added to the source (they are removed again afterwards, so every run sees the same
# source). Every phase is checked with `aws s3api list-objects-v2` on both sides (scripts/bench_report.py
# check); a run that fails the check is reported as FAILED, not as a result.
# Figures per phase: wall, client CPU (user+sys), client peak RSS (GNU time %M, cross-checked against
# /proc VmHWM), CPU of the radosgw and ceph-osd processes of both instances. Small-corpus runs are
# repeated BENCH_REPEAT (3) times and reported as medians (the tools in BENCH_REPEAT_TOOLS, default replicate,
# rclone-64 and aws-64; the default-settings peers run once); large-corpus runs BENCH_LARGE_REPEAT (1) times.
#
# Output: the markdown table on stdout and in build/bench-results.md, the raw figures in
# build/bench-results.jsonl and build/bench-meta.json (scripts/bench_report.py report can redo the table); BENCH_UPDATE_README=1 also rewrites the README's "## Performance" section.
# Restores (BENCH_RESTORE=1, BENCH_RESTORE_TOOLS "replicate rclone-64"): the small and large corpora backed up
# A -> B, then restored B -> a fresh bucket on A: replicate --restore against rclone copy of the backup as of
# that time (the source remote's version_at, which is what --s3-version-at sets).
# Listing scale (issue 17; BENCH_SCALE_KEYS, default "1000000 10000000"; 0 skips): replicate's no-change and 0.1%
# delta passes, and rclone copy (up to 1M), over millions of keys served by build/tools/synth_s3 with 0 and 20 ms
# per request (BENCH_SCALE_LATENCY; 10M at 0 ms only): scripts/bench_scale.sh, which also runs alone without RGW.
# Quick run: BENCH_SMALL=500 BENCH_LARGE_MB=16 BENCH_REPEAT=1 BENCH_SCALE=0 scripts/bench.sh
set -uo pipefail
# Debian's tools first (/usr/bin/aws, python3, ...): a pip or pyenv copy earlier on PATH is not what we install.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
BUILD=${BUILD:-build}
REPORT=$root/scripts/bench_report.py

BENCH_SMALL=${BENCH_SMALL:-10000}
BENCH_LARGE_MB=${BENCH_LARGE_MB:-128}
BENCH_LARGE_COUNT=${BENCH_LARGE_COUNT:-6}
BENCH_MIXED_SMALL=${BENCH_MIXED_SMALL:-$((BENCH_SMALL / 5))}
BENCH_MIXED_MB=${BENCH_MIXED_MB:-$((BENCH_LARGE_MB / 2))}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_LARGE_REPEAT=${BENCH_LARGE_REPEAT:-1} # large-corpus runs are a few seconds each: single runs are noisy
# Which tools the small corpus repeats (medians); the others (the peers with their default settings, never the
# fastest and the slowest to run) run once.
BENCH_REPEAT_TOOLS=${BENCH_REPEAT_TOOLS:-replicate rclone-64 aws-64}
BENCH_CORPORA=${BENCH_CORPORA:-small large mixed}
BENCH_TOOLS=${BENCH_TOOLS:-replicate rclone aws}
BENCH_MODES=${BENCH_MODES:-same cross}
BENCH_SCALE=${BENCH_SCALE:-100000}
BENCH_DELTA=${BENCH_DELTA:-100}
BENCH_AWS_CROSS=${BENCH_AWS_CROSS:-local}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
BENCH_UPDATE_README=${BENCH_UPDATE_README:-0}
export RGW_STATE_DIR=${BENCH_RGW_STATE_DIR:-/tmp/replicate-bench-rgw}
export RGW_PORT_OFFSET=${BENCH_RGW_PORT_OFFSET:-40}

say() { printf 'bench: %s\n' "$*"; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

tools=()
for t in $BENCH_TOOLS; do
  case $t in
    replicate | rclone-64 | rclone-default | aws-64 | aws-default) tools+=("$t") ;;
    rclone) tools+=(rclone-64 rclone-default) ;;
    aws) tools+=(aws-64 aws-default) ;;
    *) die "unknown tool '$t' in BENCH_TOOLS (replicate rclone aws rclone-64 rclone-default aws-64 aws-default)" ;;
  esac
done
for m in $BENCH_MODES; do case $m in same | cross) ;; *) die "unknown mode '$m' in BENCH_MODES" ;; esac; done
for c in $BENCH_CORPORA; do case $c in small | large | mixed) ;; *) die "unknown corpus '$c' in BENCH_CORPORA" ;; esac; done
for c in python3 rclone /usr/bin/aws /usr/bin/time radosgw-admin flock; do
  command -v "$c" >/dev/null || die "'$c' not found (make bench installs the packages; rclone is the Debian package)"
done
if ! [ -x "$BUILD/replicate" ] || ! [ -x "$BUILD/tools/s3tool" ]; then
  die "$BUILD/replicate or $BUILD/tools/s3tool missing: run make all"
fi

# One bench at a time on this machine (they would share the RGW pair).
exec 8>>"$RGW_STATE_DIR.bench.lock"
flock -n 8 || die "another bench holds $RGW_STATE_DIR.bench.lock"

work=$(mktemp -d "${TMPDIR:-/tmp}/replicate-bench.XXXXXX") || die "mktemp"
RESULTS=$work/results.jsonl
: >"$RESULTS"
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
complete=0

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "${MEASURE_PID:-}" ]; then
    kill -TERM "$MEASURE_PID" 2>/dev/null
    wait "$MEASURE_PID" 2>/dev/null
  fi
  if [ -n "${RGW_UP:-}" ]; then
    say "stopping the bench RGW pair"
    scripts/rgw.sh stop >/dev/null 2>&1 || say "warning: scripts/rgw.sh stop failed"
  fi
  if [ -s "$RESULTS" ] && [ "$complete" = 0 ]; then
    mkdir -p "$BUILD" && cp "$RESULTS" "$BUILD/bench-results.partial.jsonl"
    say "interrupted or failed: the figures so far are in $BUILD/bench-results.partial.jsonl"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

# The binaries are copied: other people may rebuild the tree while the bench runs.
mkdir -p "$work/bin"
cp "$BUILD/replicate" "$BUILD/tools/s3tool" "$work/bin/" || die "copy binaries"
REP=$work/bin/replicate
S3TOOL=$work/bin/s3tool

# ---- servers
# The OSDs keep everything in RAM (memstore), about 50-60 KB per small object and 1.6x the size of large ones,
# and RSS does not shrink when buckets are deleted. On a shared machine the pair is therefore restarted (and
# the current corpus seeded again, with the same seeds) when switching corpus and whenever the pair's RSS
# exceeds BENCH_SERVER_MEM_MB; shorter pg logs (CEPH_ARGS, for these daemons only) save ~40% on the targets.
BENCH_SERVER_MEM_MB=${BENCH_SERVER_MEM_MB:-2500}
BENCH_CEPH_ARGS=${BENCH_CEPH_ARGS:---osd_max_pg_log_entries=500 --osd_min_pg_log_entries=100 --osd_pg_log_dups_tracked=100 --osd_pg_log_trim_min=50}
declare -A SEEDED
rgw_start() {
  CEPH_ARGS=$BENCH_CEPH_ARGS scripts/rgw.sh start 2 || die "could not start the bench RGW pair"
  set -a
  # shellcheck disable=SC1091
  . "$RGW_STATE_DIR/env"
  set +a
  A=$RGW_A_ENDPOINT
  B=$RGW_B_ENDPOINT
  PIDS=(--server-pids "$RGW_STATE_DIR/a/pids" --server-pids "$RGW_STATE_DIR/b/pids")
  SEEDED=()
  rgw_restarts=$((${rgw_restarts:--1} + 1))
}
rgw_restart() {
  say "restarting the bench RGW pair ($1)"
  scripts/rgw.sh stop >/dev/null 2>&1 || say "warning: scripts/rgw.sh stop failed"
  rgw_start
}
server_rss_mb() { # resident memory of the pair's daemons, MiB
  local f pid _ kb=0 k
  for f in "$RGW_STATE_DIR"/a/pids "$RGW_STATE_DIR"/b/pids; do
    [ -f "$f" ] || continue
    while read -r pid _; do
      k=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) && kb=$((kb + ${k:-0}))
    done <"$f"
  done
  echo $((kb / 1024))
}
mem_available_mb() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }
if scripts/rgw.sh status >/dev/null 2>&1 || [ -d "$RGW_STATE_DIR" ]; then
  say "a bench RGW pair from an earlier run is still there: restarting it from scratch"
  scripts/rgw.sh stop >/dev/null 2>&1 || true
fi
RGW_UP=1
rgw_start

# ---- client environment: nothing from the caller's AWS setup leaks in
unset AWS_CA_BUNDLE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
  AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 RCLONE_CONFIG
export AWS_REGION=${RGW_REGION:-us-east-1} AWS_DEFAULT_REGION=${RGW_REGION:-us-east-1}
export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
export AWS_CONFIG_FILE=$work/aws-config AWS_SHARED_CREDENTIALS_FILE=$work/aws-credentials
: >"$AWS_CONFIG_FILE"
cat >"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[a]
aws_access_key_id = $RGW_A_ACCESS_KEY
aws_secret_access_key = $RGW_A_SECRET_KEY
[b]
aws_access_key_id = $RGW_B_ACCESS_KEY
aws_secret_access_key = $RGW_B_SECRET_KEY
EOF
RCONF=$work/rclone.conf
cat >"$RCONF" <<EOF
[a]
type = s3
provider = Ceph
endpoint = $A
access_key_id = $RGW_A_ACCESS_KEY
secret_access_key = $RGW_A_SECRET_KEY
[b]
type = s3
provider = Ceph
endpoint = $B
access_key_id = $RGW_B_ACCESS_KEY
secret_access_key = $RGW_B_SECRET_KEY
EOF
# aws s3 sync runs with the default profile (keys in its environment) and one of two config files.
: >"$work/aws-config-default"
AWS_CONFIG_FILE=$work/aws-config-64 /usr/bin/aws configure set default.s3.max_concurrent_requests 64 ||
  die "aws configure set"

keys_a=(AWS_ACCESS_KEY_ID="$RGW_A_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$RGW_A_SECRET_KEY")
keys_b=(AWS_ACCESS_KEY_ID="$RGW_B_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$RGW_B_SECRET_KEY")
s3tool_on() { # SIDE ARGS...
  local side=$1
  shift
  if [ "$side" = a ]; then
    env "${keys_a[@]}" AWS_ENDPOINT_URL="$A" "$S3TOOL" "$@"
  else
    env "${keys_b[@]}" AWS_ENDPOINT_URL="$B" "$S3TOOL" "$@"
  fi
}
endpoint_of() { if [ "$1" = a ]; then echo "$A"; else echo "$B"; fi; }

# aws s3 sync between two endpoints, the way a user does it: through a local directory.
cat >"$work/aws-cross.sh" <<'EOF'
#!/usr/bin/env bash
# aws-cross.sh CONFIG SRC-BUCKET STAGE-DIR DST-BUCKET (keys and endpoints in SRC_* / DST_* variables)
set -e
AWS_CONFIG_FILE=$1 AWS_ACCESS_KEY_ID=$SRC_AK AWS_SECRET_ACCESS_KEY=$SRC_SK \
  /usr/bin/aws --endpoint-url "$SRC_EP" s3 sync "s3://$2" "$3" --only-show-errors --no-progress
AWS_CONFIG_FILE=$1 AWS_ACCESS_KEY_ID=$DST_AK AWS_SECRET_ACCESS_KEY=$DST_SK \
  /usr/bin/aws --endpoint-url "$DST_EP" s3 sync "$3" "s3://$4" --only-show-errors --no-progress
EOF
chmod +x "$work/aws-cross.sh"

# ---- corpora
par_wait() { while [ "$(jobs -rp | wc -l)" -ge "$1" ]; do wait -n || return 1; done; }
wait_all() {
  local p rc=0
  for p in $(jobs -rp); do wait "$p" || rc=1; done
  return $rc
}

# seed_small BUCKET COUNT PREFIXES SEEDBASE: COUNT objects of 1-8 KiB over PREFIXES prefixes p00/, p01/, ...
seed_small() {
  local bucket=$1 n=$2 np=$3 seed=$4 i cnt rc=0
  [ "$n" -lt "$np" ] && np=$n
  [ "$np" -gt 0 ] || return 0
  for ((i = 0; i < np; i++)); do
    cnt=$((n / np + (i < n % np ? 1 : 0)))
    par_wait 4 || rc=1
    s3tool_on a fill "$bucket" "$(printf 'p%02d/' "$i")" "$cnt" 1024 8192 $((seed + i)) >/dev/null &
  done
  wait_all || rc=1
  return $rc
}
seed_big() { # BUCKET PREFIX COUNT MIB SEEDBASE
  local i rc=0
  for ((i = 0; i < $3; i++)); do
    par_wait 2 || rc=1
    s3tool_on a put "$1" "$2$i.bin" $(($4 * 1024 * 1024)) $(($5 + i)) >/dev/null &
  done
  wait_all || rc=1
  return $rc
}

declare -A SRC_BUCKET DESC DELTA_PREFIX
seed_corpus() {
  local c=$1 b=src-$1 t0=$SECONDS
  SRC_BUCKET[$c]=$b
  s3tool_on a mkbucket "$b" >/dev/null || die "mkbucket $b"
  case $c in
    small)
      seed_small "$b" "$BENCH_SMALL" 100 1000 || die "seeding $b"
      DESC[$c]="$BENCH_SMALL objects of 1-8 KiB over 100 prefixes"
      DELTA_PREFIX[$c]=p50/ ;;
    large)
      seed_big "$b" big/obj- "$BENCH_LARGE_COUNT" "$BENCH_LARGE_MB" 2000 || die "seeding $b"
      DESC[$c]="$BENCH_LARGE_COUNT objects of $BENCH_LARGE_MB MiB (multipart uploads)"
      DELTA_PREFIX[$c]=big/ ;;
    mixed)
      seed_small "$b" "$BENCH_MIXED_SMALL" 20 3000 || die "seeding $b"
      seed_big "$b" media/video- 2 "$BENCH_MIXED_MB" 4000 || die "seeding $b"
      DESC[$c]="$BENCH_MIXED_SMALL objects of 1-8 KiB over 20 prefixes + 2 of $BENCH_MIXED_MB MiB"
      DELTA_PREFIX[$c]=p10/ ;;
  esac
  python3 "$REPORT" list --endpoint "$A" --profile a --bucket "$b" --out "$work/list-$b.json" >/dev/null ||
    die "listing $b"
  SEEDED[$c]=1
  say "seeded $c: ${DESC[$c]} in $((SECONDS - t0)) s"
}
ensure_corpus() { [ -n "${SEEDED[$1]:-}" ] || seed_corpus "$1"; }
# Before a run: a fresh pair when the current one holds too much RAM, then the corpus.
ready_for() {
  local rss
  rss=$(server_rss_mb)
  if [ "$rss" -gt "$BENCH_SERVER_MEM_MB" ]; then
    rgw_restart "its daemons use $rss MiB > BENCH_SERVER_MEM_MB=$BENCH_SERVER_MEM_MB; $(mem_available_mb) MiB available"
  fi
  ensure_corpus "$1"
}

# ---- one tool, one mode, one repeat: full copy, no-change pass, delta pass; each measured and checked
tool_cmd() { # TOOL MODE SRC DST STATE STAGE -> CMD array
  local tool=$1 mode=$2 src=$3 dst=$4 state=$5 stage=$6 side=a cfg
  [ "$mode" = cross ] && side=b
  CMD=(timeout -k 10 "$BENCH_TIMEOUT")
  case $tool in
    replicate)
      if [ "$mode" = same ]; then
        CMD+=("$REP" --endpoint "$A" --profile a)
      else
        CMD+=("$REP" --source-endpoint "$A" --target-endpoint "$B" --source-profile a --target-profile b)
      fi
      CMD+=(--no-progress --settle 0 --max-passes 1 --json --state-dir "$state" "s3://$src" "s3://$dst") ;;
    rclone-64) CMD+=(rclone --config "$RCONF" copy "a:$src" "$side:$dst" --transfers 64 --checkers 64 --checksum) ;;
    rclone-default) CMD+=(rclone --config "$RCONF" copy "a:$src" "$side:$dst") ;;
    aws-64 | aws-default)
      cfg=$work/aws-config-${tool#aws-}
      if [ "$mode" = same ]; then
        CMD+=(env AWS_CONFIG_FILE="$cfg" "${keys_a[@]}" /usr/bin/aws --endpoint-url "$A" s3 sync
          "s3://$src" "s3://$dst" --only-show-errors --no-progress)
      else
        CMD+=(env SRC_EP="$A" SRC_AK="$RGW_A_ACCESS_KEY" SRC_SK="$RGW_A_SECRET_KEY" DST_EP="$B"
          DST_AK="$RGW_B_ACCESS_KEY" DST_SK="$RGW_B_SECRET_KEY" "$work/aws-cross.sh" "$cfg" "$src" "$stage" "$dst")
      fi ;;
  esac
}

# measure BASE CMD...: run CMD measured (BASE.m.json, BASE.out, BASE.err). In the background with a wait, so
# that an interrupt reaches our trap at once (the trap stops the measured command).
MEASURE_PID=""
measure() {
  local base=$1
  shift
  python3 "$REPORT" measure --out "$base.m.json" "${PIDS[@]}" --stdout "$base.out" --stderr "$base.err" \
    -- "$@" >/dev/null &
  MEASURE_PID=$!
  wait "$MEASURE_PID"
  MEASURE_PID=""
}

free_bucket() { # SIDE BUCKET: remove a target with all its versions and let RGW free the space now
  radosgw-admin -c "$RGW_STATE_DIR/$1/ceph.conf" bucket rm --bucket="$2" --purge-objects >/dev/null 2>&1 || true
  radosgw-admin -c "$RGW_STATE_DIR/$1/ceph.conf" gc process --include-all >/dev/null 2>&1 || true
}

run_seq=0
bench_run() { # CORPUS MODE TOOL REP
  local corpus=$1 mode=$2 tool=$3 rep=$4 side=a src dst state stage phase i=0 okrc=0 note="" tj
  src=${SRC_BUCKET[$corpus]}
  run_seq=$((run_seq + 1))
  [ "$mode" = cross ] && side=b
  dst=t$run_seq-$corpus-$mode-$tool
  state=$work/state-$run_seq
  stage=$work/stage-$run_seq
  if [[ $tool == aws-* && $mode == cross ]]; then
    if [ "$BENCH_AWS_CROSS" = skip ]; then return 0; fi
    note="via a local temp dir"
    mkdir -p "$stage"
  fi
  [ "$tool" = replicate ] && okrc=0,4 # --settle 0 --max-passes 1: a single pass reports "not converged" (4)
  say "$corpus / $mode / $tool (run $rep of ${REPS:-1}) -> s3://$dst on $side"
  s3tool_on "$side" mkbucket "$dst" --versioned >/dev/null || die "mkbucket $dst"
  tool_cmd "$tool" "$mode" "$src" "$dst" "$state" "$stage"
  for phase in full no-change delta; do
    local live=()
    if [ "$phase" = delta ]; then
      s3tool_on a fill "$src" "${DELTA_PREFIX[$corpus]}delta-$run_seq/" "$BENCH_DELTA" 1024 8192 $((9000 + run_seq)) \
        >/dev/null || die "adding the delta objects"
      live=(--src-live "${DELTA_PREFIX[$corpus]}delta-$run_seq/")
      sleep 1 # let the servers settle after the fill
    fi
    local base=$work/r$run_seq-$phase
    measure "$base" "${CMD[@]}"
    python3 "$REPORT" check --src-list "$work/list-$src.json" "${live[@]}" --src-endpoint "$A" --src-profile a \
      --src-bucket "$src" --dst-endpoint "$(endpoint_of "$side")" --dst-profile "$side" --dst-bucket "$dst" \
      --md5-cache "$work/md5-cache.json" --sample 1 --sample-offset $((run_seq + i)) --out "$base.c.json" \
      >/dev/null 2>"$base.check.err"
    tj=()
    [ "$tool" = replicate ] && tj=(--tool-json "$base.out")
    python3 "$REPORT" record --results "$RESULTS" --measure "$base.m.json" --check "$base.c.json" --ok-rc "$okrc" \
      "${tj[@]}" kind=phase corpus="$corpus" mode="$mode" tool="$tool" rep="$rep" phase="$phase" note="$note" \
      target="$dst"
    if ! grep -q '"ok": true' "$base.c.json" 2>/dev/null || ! grep -q . "$base.m.json"; then
      { tail -n 5 "$base.err" "$base.check.err" 2>/dev/null; } | sed 's/^/    | /'
    fi
    i=$((i + 1))
  done
  # Back to the seeded source; big targets are freed (the RGW OSDs keep their data in RAM).
  env "${keys_a[@]}" /usr/bin/aws --endpoint-url "$A" s3 rm "s3://$src/${DELTA_PREFIX[$corpus]}delta-$run_seq/" \
    --recursive --only-show-errors >/dev/null || die "removing the delta objects"
  [ "$corpus" = small ] || free_bucket "$side" "$dst"
  rm -rf "$stage" "$state"
}

# ---- the runs
first=1
for c in $BENCH_CORPORA; do
  [ "$first" = 1 ] || rgw_restart "next corpus: $c"
  first=0
  REPS=1
  [ "$c" = small ] && REPS=$BENCH_REPEAT
  [ "$c" = large ] && REPS=$BENCH_LARGE_REPEAT
  # Repeats interleave the tools, so slow drifts in the machine's load spread over all of them.
  for ((r = 1; r <= REPS; r++)); do
    for m in $BENCH_MODES; do
      for t in "${tools[@]}"; do
        [ "$r" -gt 1 ] && [[ " $BENCH_REPEAT_TOOLS " != *" $t "* ]] && continue
        ready_for "$c"
        bench_run "$c" "$m" "$t" "$r"
      done
    done
  done
done

# ---- restore (issue 13): the small and large corpora backed up across endpoints (A -> B, not measured), then
# given back from B into a fresh bucket on A as of that run: replicate --restore against rclone copy
# --s3-version-at of the same time (its best settings), each measured and checked against the source.
restore_bench() { # CORPUS
  local corpus=$1 src bk at tool dst base rc
  src=${SRC_BUCKET[$corpus]}
  bk=bk$run_seq-$corpus
  run_seq=$((run_seq + 1))
  say "$corpus / restore: backing up s3://$src to s3://$bk on b (not measured)"
  s3tool_on b mkbucket "$bk" --versioned >/dev/null || die "mkbucket $bk"
  "$REP" --source-endpoint "$A" --target-endpoint "$B" --source-profile a --target-profile b --no-progress \
    --settle 0 --max-passes 1 --state-dir "$work/state-bk$run_seq" "s3://$src" "s3://$bk" >/dev/null 2>&1
  rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 4 ] || die "the backup for the restore bench failed (exit $rc)"
  sleep 1.1
  at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  sleep 1.1
  for tool in $BENCH_RESTORE_TOOLS; do
    run_seq=$((run_seq + 1))
    dst=rs$run_seq-$corpus-$tool
    base=$work/r$run_seq-restore
    s3tool_on a mkbucket "$dst" >/dev/null || die "mkbucket $dst"
    say "$corpus / cross / $tool: restore s3://$bk (b) as of $at -> s3://$dst (a)"
    case $tool in
      replicate) CMD=(timeout -k 10 "$BENCH_TIMEOUT" "$REP" --restore --source-endpoint "$B" --target-endpoint "$A"
        --source-profile b --target-profile a --no-progress --json --state-dir "$work/state-$run_seq"
        "s3://$bk" "s3://$dst") ;;
      # (rclone 1.60's --s3-version-at client refuses to start when AWS_CA_BUNDLE is set, even for http)
      # (version_at on the source remote only: --s3-version-at would make the destination read-only too)
      rclone-64) CMD=(timeout -k 10 "$BENCH_TIMEOUT" env -u AWS_CA_BUNDLE rclone --config "$RCONF" copy
        "b,version_at=\"$at\":$bk" "a:$dst" --exclude ".replicate/**" --transfers 64 --checkers 64 --checksum) ;;
      *) die "unknown restore tool $tool (BENCH_RESTORE_TOOLS: replicate rclone-64)" ;;
    esac
    measure "$base" "${CMD[@]}"
    python3 "$REPORT" check --src-list "$work/list-$src.json" --src-endpoint "$A" --src-profile a --src-bucket "$src" \
      --dst-endpoint "$A" --dst-profile a --dst-bucket "$dst" --md5-cache "$work/md5-cache.json" --sample 1 \
      --sample-offset "$run_seq" --out "$base.c.json" >/dev/null 2>"$base.check.err"
    local tj=()
    [ "$tool" = replicate ] && tj=(--tool-json "$base.out")
    python3 "$REPORT" record --results "$RESULTS" --measure "$base.m.json" --check "$base.c.json" --ok-rc 0 \
      "${tj[@]}" kind=phase corpus="$corpus" mode=cross tool="$tool" rep=1 phase=restore note="" target="$dst"
    if ! grep -q '"ok": true' "$base.c.json" 2>/dev/null; then
      { tail -n 5 "$base.err" "$base.check.err" 2>/dev/null; } | sed 's/^/    | /'
    fi
    free_bucket a "$dst"
  done
  free_bucket b "$bk"
}
BENCH_RESTORE=${BENCH_RESTORE:-1}
BENCH_RESTORE_TOOLS=${BENCH_RESTORE_TOOLS:-replicate rclone-64}
if [ "$BENCH_RESTORE" = 1 ] && [[ " ${tools[*]} " == *" replicate "* ]]; then
  for c in $BENCH_CORPORA; do
    [ "$c" = mixed ] && continue
    rgw_restart "restore bench: $c"
    ready_for "$c"
    restore_bench "$c"
  done
fi

# ---- memory scaling: replicate no-change pass over BENCH_SCALE objects (same endpoint), on a fresh pair.
# Source and versioned target cost the OSDs about 75-100 KB of RAM per object together: when that does not fit
# in what the machine has available (keeping BENCH_MEM_RESERVE_MB free for everybody else), the corpus is cut
# to what fits, in steps of 10,000, and the table says so.
BENCH_MEM_RESERVE_MB=${BENCH_MEM_RESERVE_MB:-2048}
scale_note=""
if [ "$BENCH_SCALE" -gt 0 ] && [[ " ${tools[*]} " == *" replicate "* ]]; then
  rgw_restart "memory-scaling test"
  n=$BENCH_SCALE
  fit=$(((($(mem_available_mb) - BENCH_MEM_RESERVE_MB) * 1024 / 100) / 10000 * 10000))
  if [ "$fit" -lt "$n" ]; then
    scale_note="The memory-scaling corpus was cut from $BENCH_SCALE to $fit objects: the RGW OSDs keep objects in RAM (~100 KB per object for source and target) and only $(mem_available_mb) MiB were available on the shared machine."
    n=$fit
    say "$scale_note"
  fi
  if [ "$n" -lt 20000 ]; then
    scale_note="The memory-scaling test was skipped: not enough free RAM for the RGW OSDs to hold a scale corpus (${BENCH_SCALE} objects requested)."
    say "$scale_note"
  else
    t0=$SECONDS
    s3tool_on a mkbucket src-scale >/dev/null || die "mkbucket src-scale"
    seed_small src-scale "$n" 100 5000 || die "seeding src-scale"
    python3 "$REPORT" list --endpoint "$A" --profile a --bucket src-scale --out "$work/list-src-scale.json" \
      >/dev/null || die "listing src-scale"
    say "seeded scale: $n objects in $((SECONDS - t0)) s (pair RSS $(server_rss_mb) MiB)"
    s3tool_on a mkbucket t-scale --versioned >/dev/null || die "mkbucket t-scale"
    CMD=("$REP" --endpoint "$A" --profile a --no-progress --settle 0 --max-passes 1 --json
      --state-dir "$work/state-scale" s3://src-scale s3://t-scale)
    for phase in full no-change; do
      base=$work/scale-$phase
      say "scale / same / replicate: $phase over $n objects"
      measure "$base" "${CMD[@]}"
      python3 "$REPORT" check --src-list "$work/list-src-scale.json" --src-endpoint "$A" --src-profile a \
        --src-bucket src-scale --dst-endpoint "$A" --dst-profile a --dst-bucket t-scale --sample 0 \
        --out "$base.c.json" >/dev/null 2>"$base.check.err"
      python3 "$REPORT" record --results "$RESULTS" --measure "$base.m.json" --check "$base.c.json" --ok-rc 0,4 \
        --tool-json "$base.out" kind=scale corpus=scale mode=same tool=replicate rep=1 phase="$phase"
    done
    say "pair RSS after the scale test: $(server_rss_mb) MiB"
  fi
fi

# ---- listing scale (issue 17): no RGW, a synthetic endpoint of generated keys (scripts/bench_scale.sh)
BENCH_SCALE_KEYS=${BENCH_SCALE_KEYS:-1000000 10000000}
if [ "$BENCH_SCALE_KEYS" != 0 ] && [[ " ${tools[*]} " == *" replicate "* ]]; then
  say "listing scale: $BENCH_SCALE_KEYS keys against build/tools/synth_s3"
  BENCH_RESULTS=$RESULTS BUILD=$BUILD BENCH_SCALE_KEYS=$BENCH_SCALE_KEYS scripts/bench_scale.sh ||
    say "warning: the listing-scale bench failed (its figures so far are in the table)"
fi

# ---- report
elapsed=$(($(date +%s) - t_start))
mkdir -p "$BUILD"
python3 - "$work/meta.json" <<EOF
import json, os, subprocess, sys
def sh(c):
    try:
        return subprocess.run(c, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except OSError:
        return "?"
mem_kb = int(open("/proc/meminfo").read().split()[1])
commit = sh("git rev-parse --short HEAD")
if sh("git status --porcelain --untracked-files=no -- s3 manifest replicator"):
    commit += " + uncommitted changes"
meta = {
    "date": sh("date -u '+%Y-%m-%d %H:%M UTC'"), "nproc": sh("nproc"), "mem": f"{mem_kb / 1048576:.0f} GiB",
    "rgw": "Ceph RGW " + sh("radosgw --version").split()[2] if sh("radosgw --version") else "?",
    "rclone": sh("rclone version").splitlines()[0] if sh("rclone version") else "?",
    "aws": sh("/usr/bin/aws --version").split()[0] if sh("/usr/bin/aws --version") else "?",
    "replicate": sh("'$REP' --version").split()[-1], "commit": commit,
    "load_start": "$load_start", "load_end": open("/proc/loadavg").read().split()[:3],
    "elapsed": f"{$elapsed // 60} min {$elapsed % 60} s", "repeat": $BENCH_REPEAT, "repeat_tools": "$BENCH_REPEAT_TOOLS", "small_count": $BENCH_SMALL,
    "corpora": {"small": "${DESC[small]:-}", "large": "${DESC[large]:-}", "mixed": "${DESC[mixed]:-}"},
    "notes": [],
}
meta["load_end"] = " ".join(meta["load_end"])
if "aws" in "$BENCH_TOOLS" and "cross" in "$BENCH_MODES":
    meta["notes"].append("aws s3 sync cannot copy from one endpoint to another: in cross mode it is run as a "
                         "user would, sync A to a local temp dir and then the dir to B (both timed together; "
                         "the dir is kept between the phases of a run)." if "$BENCH_AWS_CROSS" != "skip" else
                         "aws s3 sync cannot copy from one endpoint to another: n/a in cross mode.")
if "$scale_note":
    meta["notes"].append("$scale_note")
meta["notes"].append("The bench pair runs with shorter OSD pg logs (BENCH_CEPH_ARGS) to save RAM and was "
                     "restarted $rgw_restarts times (new corpus, or its RSS above $BENCH_SERVER_MEM_MB MiB).")
meta["notes"].append("replicate runs with --settle 0 --max-passes 1, one pass per phase; it exits 4 "
                     "(\"did not converge\") after such a pass, which the bench accepts when no object failed.")
json.dump(meta, open(sys.argv[1], "w"))
EOF
cp "$work/meta.json" "$BUILD/bench-meta.json"
readme=()
[ "$BENCH_UPDATE_README" = 1 ] && readme=(--readme "$root/README.md")
cp "$RESULTS" "$BUILD/bench-results.jsonl"
python3 "$REPORT" report --results "$RESULTS" --meta "$work/meta.json" --out "$BUILD/bench-results.md" "${readme[@]}" ||
  die "report"
complete=1
rm -f "$BUILD/bench-results.partial.jsonl"
say "table: $BUILD/bench-results.md; raw figures: $BUILD/bench-results.jsonl; took $((elapsed / 60)) min $((elapsed % 60)) s"
[ "$BENCH_UPDATE_README" = 1 ] && say "README.md: Performance section rewritten"
if grep -q '"ok": false' "$RESULTS"; then
  say "some runs FAILED their check (see the table)"
fi
exit 0
