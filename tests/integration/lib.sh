# shellcheck shell=bash disable=SC2034
# (SC2034: SAME, CROSS, STATE, MiB, SRC_COUNT, DETAIL_KEYS, KEY_*, PROXY_* are set here for the test scripts)
# The helper library of every tests/integration/test_*.sh (sourced, not executable): reporting, set-up, the
# two RGW sides, replicate runs, awscli snapshots and comparisons (tests/tools/s3check.py), the RGW request
# log, the standard source bucket, and tests/tools/faultproxy instances.
#
# Environment (set by scripts/check.sh): REPLICATE, TOOLS, RGW_{A,B}_{ENDPOINT,ACCESS_KEY,SECRET_KEY,LOG},
# RGW_REGION. The independent checker is Debian's awscli v2 at /usr/bin/aws, used with profiles "a" and "b"
# from a temporary credentials file; the tool under test gets the same profiles.
#
# Reporting: one line per check, "ok   - WHAT" or "FAIL - WHAT", evidence indented below it; finish prints
# "NAME: all N checks passed (Ts)" or "NAME: F of N checks failed (Ts)" (NAME: the script's) and exits 0 or 1.
#   ok / bad MESSAGE         a check passed / failed
#   check DESCRIPTION CMD... passes when the command succeeds; require: the same, and a failure ends the test
#   expect_rc NAME WANT DESCRIPTION   the exit code of the rep/run_rep run NAME
#   s3check_checks SUBCMD ARGS...     an s3check subcommand that prints its own ok/FAIL lines: shown, counted
#   finish                   the summary line and the exit code
#   die MESSAGE              a failure the test cannot go on from: "FAIL - MESSAGE", exit 1
#   say MESSAGE / indent     information / evidence ("    | " before each line of stdin)
#
# Skip rule: lib_init exits 77 ("skip: WHY") when the test cannot run here: the RGW environment is not set (not
# run through make check / make integration), or something from outside the project is missing (awscli,
# python3, and what the NEEDs name); skip WHY does the same for a test's own condition (mounting a tmpfs).
# Something the project builds or ships (REPLICATE, TOOLS/s3tool, TOOLS/faultproxy, tests/tools/s3check.py)
# missing, or an environment that is set but broken (RGW_A_LOG not a file), is a failure (exit 1).
#
#   lib_init [NEED...]       NEEDs: b (instance B), log (RGW_A_LOG), faultproxy, or a command that must be
#                            installed (curl, jq, COMMAND=DEBIAN-PACKAGE: promtool=prometheus). A temp dir
#                            $T_TMP, $STATE (= $T_TMP/state), the profiles; unsets AWS_* credentials and endpoints
#   lib_on_exit CODE         run CODE when the test exits (before $T_TMP is removed)
#   lib_kill_at_exit PID...  kill these background processes if they still run when the test exits
#   use_env_credentials SIDE that side's keys and endpoint in AWS_ACCESS_KEY_ID, ..., AWS_ENDPOINT_URL
#   bucket NAME              a bucket name unique to this run: t-<unix time>-<pid>-NAME
#   mkbucket SIDE NAME [--versioned]   create a bucket on a or b (with s3tool: fast); a failure ends the test
#   aws_on SIDE ARGS...      /usr/bin/aws with that side's profile and endpoint
#   aws_at SIDE URL ARGS...  /usr/bin/aws with that side's profile at another endpoint (a proxy)
#   s3tool_on SIDE ARGS...   $TOOLS/s3tool with that side's keys and endpoint
#   rep NAME ARGS...         run replicate (--no-progress --state-dir $STATE prepended): NAME.out/.err in
#                            $T_TMP, exit code in $REP_RC, seconds in $REP_SECS; run_rep NAME ARGS...: the same
#                            with nothing prepended
#   s3check SUBCMD ARGS...   tests/tools/s3check.py (its docstring lists the subcommands)
#   s3write SIDE BUCKET      puts and deletes as a user makes them, read from stdin (s3check write; one process)
#   tsv ARGS...              one line of the arguments, tab-separated (for s3write)
#   free_port                a TCP port on 127.0.0.1 that nothing listens on
#   jget FILE EXPR           evaluate a Python expression over the JSON in FILE (as d)
#   snapshot SIDE BUCKET OUT [DETAIL_KEY...]   list + download a bucket with awscli: keys, sizes, ETags, MD5s
#                            of the content, and (for DETAIL_KEYs) headers and metadata from get-object
#   snapshot_bg ... / snapshot_wait OUT   the same in the background
#   compare_snapshots SRC DST [restored]  same keys (target's .replicate/ ignored), sizes, content MD5s,
#                            headers, metadata
#   log_mark SIDE / log_sync SIDE BUCKET / log_writes SIDE FROM BUCKET... / log_requests SIDE FROM REGEX
#                            the RGW request log
#   build_source SIDE BUCKET the standard source bucket of the same- and cross-endpoint tests
#   start_proxy NAME UPSTREAM-URL PORT ARGS...   faultproxy in the background: PROXY_URL, PROXY_PID
#   stop_proxy PID           SIGTERM; it writes $T_TMP/NAME.counts.json and exits
#   show_counts NAME         one line: requests by method, faults by kind
#   same_content SIDE SRC SIDE DST LABEL   snapshot both (BUCKET or BUCKET/PREFIX) and compare: keys, sizes, content
#   recorded_exist MANIFEST SIDE BUCKET LABEL   what the manifest records as copied is in the target
set -uo pipefail

AWS=/usr/bin/aws
S3CHECK=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools" && pwd)/s3check.py
MiB=$((1024 * 1024))
T_NAME=$(basename "$0" .sh)
T_FAILS=0
T_CHECKS=0
T_EXIT_HOOKS=()
T_KILL=()

# ---- reporting
say() { printf '%s\n' "$*"; }
ok() { T_CHECKS=$((T_CHECKS + 1)); printf 'ok   - %s\n' "$*"; }
bad() { T_CHECKS=$((T_CHECKS + 1)); T_FAILS=$((T_FAILS + 1)); printf 'FAIL - %s\n' "$*"; }
check() { # DESCRIPTION COMMAND...: passes when the command succeeds
  local d=$1
  shift
  if "$@"; then ok "$d"; else bad "$d"; return 1; fi
}
require() { # DESCRIPTION COMMAND...: a check the rest of the test depends on; a failure ends the test
  check "$@" || finish
}
indent() { sed 's/^/    | /'; }
show_run() { # NAME [LINES]: the output of a rep run, as evidence
  local n=$1
  say "    replicate $(cat "$T_TMP/$n.cmd")"
  tail -n "${2:-40}" "$T_TMP/$n.out" | indent
  tail -n "${2:-40}" "$T_TMP/$n.err" | indent
}
expect_rc() { # NAME WANT DESCRIPTION
  if [ "$REP_RC" -eq "$2" ]; then
    ok "$3 (exit $REP_RC, ${REP_SECS}s)"
  else
    bad "$3: exit $REP_RC, expected $2"
    show_run "$1"
  fi
}
s3check_checks() { # SUBCMD ARGS...: fails when one of its checks failed or it did not finish
  local out rc n f
  out=$(s3check "$@")
  rc=$?
  [ -z "$out" ] || printf '%s\n' "$out"
  n=$(grep -c '^ok   - \|^FAIL - ' <<<"$out")
  f=$(grep -c '^FAIL - ' <<<"$out")
  T_CHECKS=$((T_CHECKS + n))
  T_FAILS=$((T_FAILS + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then bad "s3check $1 exited $rc"; fi
  [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]
}
finish() {
  if [ "$T_FAILS" -ne 0 ]; then
    say "$T_NAME: $T_FAILS of $T_CHECKS checks failed (${SECONDS}s)"
    exit 1
  fi
  say "$T_NAME: all $T_CHECKS checks passed (${SECONDS}s)"
  exit 0
}
die() { say "FAIL - $*"; exit 1; }
skip() { say "skip: $*"; exit 77; }

# ---- set-up and clean-up
lib_on_exit() { T_EXIT_HOOKS+=("$1"); }
lib_kill_at_exit() { T_KILL+=("$@"); }
lib_cleanup() {
  local h p live=()
  # only those that are still running jobs of this shell: the PID of one already waited for may be reused
  for p in "${T_KILL[@]}"; do
    jobs -pr | grep -qx "$p" && live+=("$p")
  done
  if [ ${#live[@]} -gt 0 ]; then
    kill "${live[@]}" 2>/dev/null
    wait "${live[@]}" 2>/dev/null
  fi
  for h in "${T_EXIT_HOOKS[@]}"; do eval "$h" || true; done
  [ -n "${T_TMP:-}" ] && rm -rf "$T_TMP"
}

lib_init() { # [NEED...]
  local need
  if [ -z "${RGW_A_ENDPOINT:-}" ] || [ -z "${REPLICATE:-}" ] || [ -z "${TOOLS:-}" ]; then
    skip "RGW_A_ENDPOINT, REPLICATE and TOOLS are not set (run through make check / make integration)"
  fi
  [ -x "$AWS" ] || skip "$AWS (awscli v2) is not installed"
  command -v python3 >/dev/null || skip "python3 is not installed"
  for need in "$@"; do
    case $need in
      b) [ -n "${RGW_B_ENDPOINT:-}" ] || skip "RGW_B_ENDPOINT is not set (this test needs the second RGW instance)" ;;
      log) [ -n "${RGW_A_LOG:-}" ] || skip "RGW_A_LOG is not set (this test reads RGW's request log)" ;;
      faultproxy) ;;
      *=*) command -v "${need%%=*}" >/dev/null || skip "${need%%=*} is not installed (Debian package ${need#*=})" ;;
      *) command -v "$need" >/dev/null || skip "$need is not installed" ;;
    esac
  done
  [ -x "$REPLICATE" ] || die "REPLICATE=$REPLICATE is not executable"
  [ -x "$TOOLS/s3tool" ] || die "$TOOLS/s3tool is missing (make builds it)"
  for need in "$@"; do
    case $need in
      faultproxy) [ -x "$TOOLS/faultproxy" ] || die "$TOOLS/faultproxy is missing (make builds it)" ;;
      log) [ -f "$RGW_A_LOG" ] || die "RGW_A_LOG=$RGW_A_LOG is not a file" ;;
    esac
  done
  [ -f "$S3CHECK" ] || die "$S3CHECK is missing"

  T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$T_NAME.XXXXXX") || die "mktemp"
  trap lib_cleanup EXIT
  trap 'say "interrupted"; exit 130' INT TERM HUP
  STATE=$T_TMP/state
  T_RUN=$(date +%s)-$$

  unset AWS_CA_BUNDLE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
  unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
  export AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
  export AWS_REGION=${RGW_REGION:-us-east-1} AWS_DEFAULT_REGION=${RGW_REGION:-us-east-1}
  export AWS_CONFIG_FILE=$T_TMP/aws-config AWS_SHARED_CREDENTIALS_FILE=$T_TMP/aws-credentials
  : >"$AWS_CONFIG_FILE"
  cat >"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[a]
aws_access_key_id = $RGW_A_ACCESS_KEY
aws_secret_access_key = $RGW_A_SECRET_KEY
[b]
aws_access_key_id = ${RGW_B_ACCESS_KEY:-none}
aws_secret_access_key = ${RGW_B_SECRET_KEY:-none}
EOF
  # replicate: both buckets on A with one profile (server-side copies), or A -> B with separate profiles
  SAME=(--endpoint "$RGW_A_ENDPOINT" --profile a)
  CROSS=(--source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "${RGW_B_ENDPOINT:-}"
    --source-profile a --target-profile b)
}

# ---- the two sides: a (RGW_A_*) and b (RGW_B_*)
side_endpoint() { case $1 in a) echo "$RGW_A_ENDPOINT" ;; b) echo "$RGW_B_ENDPOINT" ;; *) die "side $1" ;; esac; }
side_log() { case $1 in a) echo "${RGW_A_LOG:-}" ;; b) echo "${RGW_B_LOG:-}" ;; *) die "side $1" ;; esac; }
side_keys() { # SIDE: sets ak and sk (declared local by the caller)
  case $1 in
    a) ak=$RGW_A_ACCESS_KEY sk=$RGW_A_SECRET_KEY ;;
    b) ak=$RGW_B_ACCESS_KEY sk=$RGW_B_SECRET_KEY ;;
    *) die "side $1" ;;
  esac
}
use_env_credentials() { # SIDE
  local ak sk ep
  side_keys "$1"
  ep=$(side_endpoint "$1")
  export AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_ENDPOINT_URL=$ep
}

bucket() { printf 't-%s-%s\n' "$T_RUN" "$1"; }

aws_on() { # SIDE ARGS...
  local side=$1
  shift
  "$AWS" --profile "$side" --endpoint-url "$(side_endpoint "$side")" "$@"
}
aws_at() { # SIDE URL ARGS...
  local side=$1 url=$2
  shift 2
  "$AWS" --profile "$side" --endpoint-url "$url" "$@"
}

s3tool_on() { # SIDE ARGS...
  local side=$1 ak sk
  shift
  side_keys "$side"
  AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_ENDPOINT_URL=$(side_endpoint "$side") \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null "$TOOLS/s3tool" "$@"
}

mkbucket() { # SIDE NAME [--versioned]
  s3tool_on "$1" mkbucket "$2" ${3:+"$3"} || die "cannot create bucket $2 on $1"
}

# ---- replicate runs
run_rep() { # NAME ARGS...
  local n=$1 t0
  shift
  printf '%q ' "$@" >"$T_TMP/$n.cmd"
  t0=$(date +%s.%N)
  "$REPLICATE" "$@" >"$T_TMP/$n.out" 2>"$T_TMP/$n.err"
  REP_RC=$?
  REP_SECS=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
}
rep() { # NAME ARGS...
  local n=$1
  shift
  run_rep "$n" --no-progress --state-dir "$STATE" "$@"
}

# ---- tests/tools/s3check.py: JSON values, and buckets read back with awscli
s3check() { /usr/bin/python3 "$S3CHECK" "$@"; } # Debian's: snapshots import awscli's library
free_port() { s3check free-port; }
tsv() { local IFS=$'\t'; printf '%s\n' "$*"; } # ARGS...: one line, the arguments tab-separated
# s3write SIDE BUCKET < lines "put KEY FILE [NAME=VALUE...]" / "delete KEY [VERSION]" (s3check write)
s3write() { s3check write "$1" "$(side_endpoint "$1")" "$2"; }
jget() { s3check jget "$1" "$2" 2>/dev/null; } # FILE EXPR: the value (JSON for lists/dicts/booleans/null), or nothing
snapshot() { # SIDE BUCKET OUT [DETAIL_KEY...]
  local side=$1 b=$2 out=$3
  shift 3
  s3check snapshot "$side" "$(side_endpoint "$side")" "$b" "$out" "$@"
}
compare_snapshots() { s3check compare "$@"; }
source_ok() { # SNAPSHOT: the source holds SRC_COUNT objects, among them every NAMED_KEY exactly as written
  s3check source-ok "$1" "$SRC_COUNT" "${NAMED_KEYS[@]}"
}
# snapshot_bg SIDE BUCKET OUT [DETAIL_KEY...] starts a snapshot in the background (awscli is CPU-bound: two at
# once use both cores); snapshot_wait OUT waits for it, prints its report and returns its status.
declare -A T_SNAP_PIDS=()
snapshot_bg() {
  snapshot "$@" >"$3.log" 2>&1 &
  T_SNAP_PIDS[$3]=$!
}
snapshot_wait() {
  local rc
  wait "${T_SNAP_PIDS[$1]}"
  rc=$?
  cat "$1.log"
  return "$rc"
}

# ---- the RGW request log (one "beast:" line per HTTP request; see scripts/rgw.sh)
log_mark() { # SIDE: the log's current line count
  local f
  f=$(side_log "$1")
  if [ -n "$f" ] && [ -f "$f" ]; then wc -l <"$f"; else echo 0; fi
}
log_sync() { # SIDE BUCKET: send a harmless anonymous GET and wait until RGW has logged it (its log is written
  # from a background thread), so every request sent before is in the file too
  local side=$1 b=$2 tag f i
  f=$(side_log "$side")
  tag=log-sync-$RANDOM$RANDOM
  curl -s -o /dev/null -m 5 "$(side_endpoint "$side")/$b/$tag" || true
  for ((i = 0; i < 50; i++)); do
    grep -aq "GET /$b/$tag " "$f" 2>/dev/null && return 0
    sleep 0.1
  done
  say "note: the sync request $tag did not appear in $f within 5 s"
  return 1
}
log_writes() { # SIDE FROM BUCKET...: request lines after line FROM that write (PUT/POST/DELETE) to a bucket
  local side=$1 from=$2 f re
  shift 2
  f=$(side_log "$side")
  re=$(printf '%s|' "$@")
  re=${re%|}
  tail -n "+$((from + 1))" "$f" | grep -a ' beast: ' | grep -aE "\"(PUT|POST|DELETE) /($re)([/? ])" || true
}
log_requests() { # SIDE FROM REGEX: request lines after line FROM matching an extended regex
  local f
  f=$(side_log "$1")
  tail -n "+$(($2 + 1))" "$f" | grep -a ' beast: ' | grep -aE "$3" || true
}

# ---- the standard source bucket of the same- and cross-endpoint tests
# build_source SIDE BUCKET: awkward keys (space, +, %, #, ?, unicode, //, trailing /, a 1,000-byte key), a 0-byte
# object, a 12 MiB single-PUT object, a 20 MiB multipart one and an 11 MiB one with an awkward key (all above an
# 8 MiB multipart threshold and a 10 MiB copy threshold), objects
# with every preserved header and user metadata, and 1,100 small objects. Sets SRC_COUNT and DETAIL_KEYS (the
# keys whose headers and metadata the comparison reads with get-object) and NAMED_KEYS (all but the bulk ones).
build_source() {
  local side=$1 b=$2 d=$T_TMP/srcfiles long
  long=special/long-$(printf 'L%.0s' $(seq 1 987))
  [ "${#long}" -eq 1000 ] || die "the long key is ${#long} bytes, not 1000"
  KEY_SPACE="special/sp ace/file one.txt"
  KEY_PLUS="special/plus+sign+key.txt"
  KEY_PCT="special/percent%41%25%.txt"
  KEY_HASH="special/hash#tag.txt"
  KEY_QUESTION="special/question?mark=1&x=2.txt"
  KEY_UNICODE="special/unicode-café-日本語-ñ-🙂.txt"
  KEY_DSLASH="special/double//slash.txt"
  KEY_TSLASH="special/trailing-slash/"
  KEY_LONG=$long
  KEY_ZERO="empty/zero-bytes.bin"
  KEY_META="meta/all-headers.html"
  KEY_META2="meta/user-meta.json"
  KEY_BIG1="big/single-12m.bin"
  KEY_BIG2="big/multipart-20m.bin"
  KEY_BIG3="big/odd key %41+#?.bin" # large and awkward: RGW decodes an UploadPartCopy source twice
  mkdir -p "$d/tree" || die "mkdir"
  local k
  for k in "$KEY_SPACE" "$KEY_PLUS" "$KEY_PCT" "$KEY_HASH" "$KEY_QUESTION" "$KEY_UNICODE"; do
    mkdir -p "$d/tree/$(dirname "$k")"
    printf 'content of the key "%s"\n' "$k" >"$d/tree/$k"
  done
  mkdir -p "$d/tree/empty" && : >"$d/tree/$KEY_ZERO"
  printf '<html>every preserved header</html>\n' >"$d/meta.html"
  printf '{"user": "metadata"}\n' >"$d/meta.json"
  printf 'double slash\n' >"$d/dslash"
  printf 'a key ending in a slash, with content\n' >"$d/tslash"
  printf 'a key of 1000 bytes\n' >"$d/long"
  head -c $((20 * 1024 * 1024)) /dev/urandom >"$d/big2" || die "head /dev/urandom"

  say "building the source s3://$b on $side"
  aws_on "$side" s3api create-bucket --bucket "$b" >/dev/null || die "create-bucket $b"
  # awscli's library writes the awkward objects and the ones with headers (s3write: one process for all of them)
  {
    for k in "$KEY_SPACE" "$KEY_PLUS" "$KEY_PCT" "$KEY_HASH" "$KEY_QUESTION" "$KEY_UNICODE" "$KEY_ZERO"; do
      tsv put "$k" "$d/tree/$k" ContentType=guess
    done
    tsv put "$KEY_DSLASH" "$d/dslash"
    tsv put "$KEY_TSLASH" "$d/tslash"
    tsv put "$KEY_LONG" "$d/long"
    tsv put "$KEY_META" "$d/meta.html" "ContentType=text/html; charset=utf-8" \
      "CacheControl=max-age=3600, must-revalidate" 'ContentDisposition=attachment; filename="report 2026.html"' \
      ContentEncoding=identity ContentLanguage=de-CH Expires=2031-05-06T07:08:09Z meta-author=alice \
      meta-project=replicate-test meta-empty-ish=-
    tsv put "$KEY_META2" "$d/meta.json" ContentType=application/json meta-colour=blue meta-n=42
    # multipart in 8 MiB parts (as aws s3 cp makes it), with every header and user metadata too
    tsv put "$KEY_BIG2" "$d/big2" PartSize=$((8 * 1024 * 1024)) ContentType=application/x-test-data \
      CacheControl=no-cache ContentDisposition=inline ContentEncoding=identity ContentLanguage=en \
      Expires=2030-01-02T03:04:05Z meta-kind=multipart meta-size=20MiB
  } | s3write "$side" "$b" || die "awscli's library could not write the source objects"
  s3tool_on "$side" put "$b" "$KEY_BIG1" $((12 * 1024 * 1024)) 7 || die "s3tool put $KEY_BIG1"
  s3tool_on "$side" put "$b" "$KEY_BIG3" $((11 * 1024 * 1024)) 8 || die "s3tool put $KEY_BIG3"
  s3tool_on "$side" fill "$b" bulk/ 1100 0 2048 11 || die "s3tool fill"
  SRC_COUNT=1115
  # (the keys whose headers and metadata the comparisons read: awkward ones, those with headers, the big ones)
  DETAIL_KEYS=("$KEY_DSLASH" "$KEY_TSLASH" "$KEY_LONG" "$KEY_META" "$KEY_META2" "$KEY_BIG1" "$KEY_BIG2"
    "$KEY_BIG3")
  NAMED_KEYS=("$KEY_SPACE" "$KEY_PLUS" "$KEY_PCT" "$KEY_HASH" "$KEY_QUESTION" "$KEY_UNICODE" "$KEY_DSLASH" "$KEY_TSLASH"
    "$KEY_LONG" "$KEY_ZERO" "$KEY_META" "$KEY_META2" "$KEY_BIG1" "$KEY_BIG2" "$KEY_BIG3")
}


# ---- tests/tools/faultproxy in front of a side (the test_faults*.sh tests)
hostport() { local u=${1#*://}; echo "${u%%/*}"; }
start_proxy() { # NAME UPSTREAM-URL PORT ARGS...: output in $T_TMP/NAME.out/.err, counts in $T_TMP/NAME.counts.json
  local name=$1 up=$2 port=$3 i
  shift 3
  : >"$T_TMP/$name.out"
  "$TOOLS/faultproxy" --listen "127.0.0.1:$port" --upstream "$(hostport "$up")" \
    --count-file "$T_TMP/$name.counts.json" "$@" >"$T_TMP/$name.out" 2>>"$T_TMP/$name.err" &
  PROXY_PID=$!
  lib_kill_at_exit "$PROXY_PID"
  for ((i = 0; i < 100; i++)); do
    grep -q '^listening on ' "$T_TMP/$name.out" 2>/dev/null && break
    kill -0 "$PROXY_PID" 2>/dev/null || { cat "$T_TMP/$name.err"; die "faultproxy $name did not start"; }
    sleep 0.05
  done
  PROXY_URL="http://$(sed -n 's/^listening on //p' "$T_TMP/$name.out")"
}
stop_proxy() { # PID
  kill -TERM "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}
show_counts() { s3check counts "$T_TMP/$1.counts.json" "$1"; } # NAME

same_content() { # SIDE SRC SIDE DST LABEL: SRC and DST are BUCKET or BUCKET/PREFIX; the same keys (the target's
  # .replicate/ ignored), sizes and content MD5s: awscli's listings (a single-part ETag is the MD5 the server
  # computed over what it stored) and get-object downloads of the multipart objects, hashed here
  local s="$T_TMP/same-src-$$-$SECONDS.json" d="$T_TMP/same-dst-$$-$SECONDS.json" t0=$SECONDS out rc n
  snapshot_bg "$1" "$2" "$s"
  snapshot "$3" "$4" "$d" >"$d.log" 2>&1
  rc=$?
  snapshot_wait "$s" >/dev/null || rc=1
  if [ "$rc" -ne 0 ]; then
    bad "$5: a snapshot failed"
    indent <"$s.log"
    indent <"$d.log"
    return
  fi
  out=$(compare_snapshots "$s" "$d" content)
  rc=$?
  n=$(sed -n 's/^    compared .*: \([0-9]*\) source keys.*/\1/p' <<<"$out")
  if [ "$rc" -eq 0 ] && [ "${n:-0}" -gt 0 ]; then
    ok "$5: target equals source ($n objects, same keys, sizes and content; awscli against RGW, $((SECONDS - t0))s)"
  else
    bad "$5: target differs from source ($n source objects)"
    printf '%s\n' "$out" | indent
  fi
}

# recorded_exist MANIFEST SIDE BUCKET LABEL: every object the manifest records as copied exists in the target as
# the recorded version with the recorded size (a copy that did not happen must never be recorded)
recorded_exist() {
  aws_on "$2" s3api list-object-versions --bucket "$3" --output json >"$T_TMP/versions.json" || { bad "$4: listing versions failed"; return; }
  local out
  if out=$(s3check recorded "$1" "$T_TMP/versions.json"); then
    ok "$4: every object its manifest records is in the target as recorded (${out##*$'\n'})"
  else
    bad "$4: $out"
  fi
}
