# shellcheck shell=bash disable=SC2034
# (SC2034: SAME, CROSS, STATE, SRC_COUNT, DETAIL_KEYS, KEY_* are set here for the test scripts)
# Shared helpers for tests/integration/test_replicate_*.sh (sourced, not executable).
#
# Environment (set by scripts/check.sh): REPLICATE, TOOLS, RGW_{A,B}_{ENDPOINT,ACCESS_KEY,SECRET_KEY,LOG},
# RGW_REGION. The independent checker is Debian's awscli v2 at /usr/bin/aws, used with profiles "a" and "b"
# from a temporary credentials file; the tool under test gets the same profiles.
#
#   lib_init NAME [b]        skip (77) without the environment ("b": instance B needed too); temp dir, profiles
#   bucket NAME              a bucket name unique to this run: t-<unix time>-<pid>-NAME
#   mkbucket SIDE NAME [--versioned]   create a bucket on a or b (with s3tool: fast)
#   aws_on SIDE ARGS...      /usr/bin/aws with that side's profile and endpoint
#   s3tool_on SIDE ARGS...   $TOOLS/s3tool with that side's keys and endpoint
#   rep NAME ARGS...         run replicate (--no-progress --state-dir $STATE prepended): NAME.out/.err in
#                            $T_TMP, exit code in $REP_RC, seconds in $REP_SECS
#   jget FILE EXPR           evaluate a Python expression over the JSON in FILE (as d)
#   snapshot SIDE BUCKET OUT [DETAIL_KEY...]   list + download a bucket with awscli: keys, sizes, ETags, MD5s
#                            of the content, and (for DETAIL_KEYs) headers and metadata from get-object
#   snapshot_bg ... / snapshot_wait OUT   the same in the background
#   compare_snapshots SRC DST   same keys (target's .replicate/ ignored), sizes, content MD5s, headers, metadata
#   log_mark SIDE / log_sync SIDE BUCKET / log_writes SIDE FROM BUCKET...   the RGW request log
#   ok / bad / check / expect_rc / finish   reporting; finish exits 0 when every check passed
set -uo pipefail

AWS=/usr/bin/aws
T_FAILS=0
T_CHECKS=0
T_EXIT_HOOKS=()

say() { printf '%s\n' "$*"; }
ok() { T_CHECKS=$((T_CHECKS + 1)); printf 'ok   - %s\n' "$*"; }
bad() { T_CHECKS=$((T_CHECKS + 1)); T_FAILS=$((T_FAILS + 1)); printf 'FAIL - %s\n' "$*"; }
check() { # DESCRIPTION COMMAND...: passes when the command succeeds
  local d=$1
  shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
indent() { sed 's/^/    | /'; }
show_run() { # NAME: the output of a rep run, as evidence
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
finish() {
  local name=${T_NAME:-test}
  if [ "$T_FAILS" -ne 0 ]; then
    say "$name: $T_FAILS of $T_CHECKS checks failed (${SECONDS}s)"
    exit 1
  fi
  say "$name: all $T_CHECKS checks passed (${SECONDS}s)"
  exit 0
}
die() { say "FAIL - $*"; exit 1; }

lib_on_exit() { T_EXIT_HOOKS+=("$1"); }
lib_cleanup() {
  local h
  for h in "${T_EXIT_HOOKS[@]}"; do eval "$h" || true; done
  [ -n "${T_TMP:-}" ] && rm -rf "$T_TMP"
}

lib_init() { # NAME [b]
  T_NAME=$1
  local need_b=${2:-}
  if [ -z "${RGW_A_ENDPOINT:-}" ] || [ -z "${REPLICATE:-}" ] || [ -z "${TOOLS:-}" ]; then
    say "skip: RGW_A_ENDPOINT, REPLICATE and TOOLS are not set (run through make check / make integration)"
    exit 77
  fi
  if [ "$need_b" = b ] && [ -z "${RGW_B_ENDPOINT:-}" ]; then
    say "skip: RGW_B_ENDPOINT is not set (this test needs the second RGW instance)"
    exit 77
  fi
  [ -x "$AWS" ] || { say "skip: $AWS (awscli v2) is not installed"; exit 77; }
  command -v python3 >/dev/null || { say "skip: python3 is not installed"; exit 77; }
  [ -x "$REPLICATE" ] || die "REPLICATE=$REPLICATE is not executable"
  [ -x "$TOOLS/s3tool" ] || die "$TOOLS/s3tool is missing (make builds it)"

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
  lib_write_py
}

side_endpoint() { case $1 in a) echo "$RGW_A_ENDPOINT" ;; b) echo "$RGW_B_ENDPOINT" ;; *) die "side $1" ;; esac; }
side_log() { case $1 in a) echo "${RGW_A_LOG:-}" ;; b) echo "${RGW_B_LOG:-}" ;; *) die "side $1" ;; esac; }

bucket() { printf 't-%s-%s\n' "$T_RUN" "$1"; }

aws_on() { # SIDE ARGS...
  local side=$1
  shift
  "$AWS" --profile "$side" --endpoint-url "$(side_endpoint "$side")" "$@"
}

s3tool_on() { # SIDE ARGS...
  local side=$1 ak sk
  shift
  case $side in
    a) ak=$RGW_A_ACCESS_KEY sk=$RGW_A_SECRET_KEY ;;
    b) ak=$RGW_B_ACCESS_KEY sk=$RGW_B_SECRET_KEY ;;
  esac
  AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_ENDPOINT_URL=$(side_endpoint "$side") \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null "$TOOLS/s3tool" "$@"
}

mkbucket() { # SIDE NAME [--versioned]
  s3tool_on "$1" mkbucket "$2" ${3:+"$3"} || die "cannot create bucket $2 on $1"
}

rep() { # NAME ARGS...
  local n=$1 t0
  shift
  printf '%q ' --no-progress --state-dir "\$STATE" "$@" >"$T_TMP/$n.cmd"
  t0=$(date +%s.%N)
  "$REPLICATE" --no-progress --state-dir "$STATE" "$@" >"$T_TMP/$n.out" 2>"$T_TMP/$n.err"
  REP_RC=$?
  REP_SECS=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
}

jget() { # FILE EXPR: prints the value (JSON for lists/dicts, Python's str otherwise); empty on error
  python3 - "$1" "$2" <<'PY' 2>/dev/null
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2], {"d": d})
except Exception as e:
    sys.exit(1)
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
PY
}

snapshot() { # SIDE BUCKET OUT [DETAIL_KEY...]
  local side=$1 b=$2 out=$3
  shift 3
  python3 "$T_TMP/s3check.py" snapshot "$side" "$(side_endpoint "$side")" "$b" "$out" "$T_TMP" "$@"
}
compare_snapshots() { python3 "$T_TMP/s3check.py" compare "$@"; }
source_ok() { # SNAPSHOT: the source holds SRC_COUNT objects, among them every NAMED_KEY exactly as written
  python3 - "$1" "$SRC_COUNT" "${NAMED_KEYS[@]}" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))["objects"]
missing = [k for k in sys.argv[3:] if k not in o]
zero = o.get("empty/zero-bytes.bin", {}).get("size")
print(f"    source: {len(o)} objects; named keys missing: {missing}; empty/zero-bytes.bin has {zero} bytes")
sys.exit(0 if len(o) == int(sys.argv[2]) and not missing and zero == 0 else 1)
PY
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
  local side=$1 b=$2 d=$T_TMP/srcfiles long pids=() p rc=0
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
  # awscli writes the awkward objects and the ones with headers (in parallel: each aws call costs ~1 s of CPU)
  aws_on "$side" s3 cp --recursive --quiet "$d/tree" "s3://$b/" & pids+=($!)
  aws_on "$side" s3api put-object --bucket "$b" --key "$KEY_DSLASH" --body "$d/dslash" >/dev/null & pids+=($!)
  aws_on "$side" s3api put-object --bucket "$b" --key "$KEY_TSLASH" --body "$d/tslash" >/dev/null & pids+=($!)
  aws_on "$side" s3api put-object --bucket "$b" --key "$KEY_LONG" --body "$d/long" >/dev/null & pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  pids=()
  aws_on "$side" s3api put-object --bucket "$b" --key "$KEY_META" --body "$d/meta.html" \
    --content-type 'text/html; charset=utf-8' --cache-control 'max-age=3600, must-revalidate' \
    --content-disposition 'attachment; filename="report 2026.html"' --content-encoding identity \
    --content-language de-CH --expires 2031-05-06T07:08:09Z \
    --metadata 'author=alice,project=replicate-test,empty-ish=-' >/dev/null & pids+=($!)
  aws_on "$side" s3api put-object --bucket "$b" --key "$KEY_META2" --body "$d/meta.json" \
    --content-type application/json --metadata 'colour=blue,n=42' >/dev/null & pids+=($!)
  # multipart (awscli: 8 MiB parts), with every header and user metadata too
  aws_on "$side" s3 cp --quiet "$d/big2" "s3://$b/$KEY_BIG2" --content-type application/x-test-data \
    --cache-control no-cache --content-disposition inline --content-encoding identity --content-language en \
    --expires 2030-01-02T03:04:05Z --metadata 'kind=multipart,size=20MiB' & pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ "$rc" -eq 0 ] || die "awscli could not write the source objects"
  s3tool_on "$side" put "$b" "$KEY_BIG1" $((12 * 1024 * 1024)) 7 || die "s3tool put $KEY_BIG1"
  s3tool_on "$side" put "$b" "$KEY_BIG3" $((11 * 1024 * 1024)) 8 || die "s3tool put $KEY_BIG3"
  s3tool_on "$side" fill "$b" bulk/ 1100 0 2048 11 || die "s3tool fill"
  SRC_COUNT=1115
  # (each get-object is one more aws process, ~1 s of CPU: only the keys aws s3 cp cannot map to a file, and those
  # whose headers and metadata matter)
  DETAIL_KEYS=("$KEY_DSLASH" "$KEY_TSLASH" "$KEY_LONG" "$KEY_META" "$KEY_META2" "$KEY_BIG1" "$KEY_BIG2"
    "$KEY_BIG3")
  NAMED_KEYS=("$KEY_SPACE" "$KEY_PLUS" "$KEY_PCT" "$KEY_HASH" "$KEY_QUESTION" "$KEY_UNICODE" "$KEY_DSLASH" "$KEY_TSLASH"
    "$KEY_LONG" "$KEY_ZERO" "$KEY_META" "$KEY_META2" "$KEY_BIG1" "$KEY_BIG2" "$KEY_BIG3")
}

lib_write_py() {
  cat >"$T_TMP/s3check.py" <<'PY'
# awscli-based checker: snapshot a bucket (keys, sizes, ETags, content MD5s, headers) and compare two.
import hashlib, json, os, re, subprocess, sys, time, concurrent.futures as cf

AWS = "/usr/bin/aws"
HEADERS = ["ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "Expires"]
SRC_ETAG = "replicate-source-etag"


def aws(side, endpoint, *args):
    return subprocess.run([AWS, "--profile", side, "--endpoint-url", endpoint, *args],
                          capture_output=True, text=True)


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_path(key):
    """True if aws s3 cp --recursive maps KEY to DIR/KEY one to one."""
    if key.endswith("/") or key.startswith("/") or "\\" in key:
        return False
    parts = key.split("/")
    return all(p and p not in (".", "..") and len(p.encode()) <= 200 for p in parts)


def snapshot(side, endpoint, bucket, out, tmp, detail):
    t0 = time.time()
    r = aws(side, endpoint, "s3api", "list-objects-v2", "--bucket", bucket, "--output", "json")
    if r.returncode != 0:
        print(f"    snapshot: list-objects-v2 {bucket} failed: {r.stderr.strip()}")
        return 1
    contents = (json.loads(r.stdout or "{}") or {}).get("Contents") or []
    objs = {c["Key"]: {"size": c["Size"], "etag": c["ETag"].strip('"')} for c in contents}
    d = os.path.join(tmp, "dl-" + bucket + "-" + str(os.getpid()))
    os.makedirs(d, exist_ok=True)
    # A plain (single-part) ETag is the MD5 the server computed over the bytes it stored: take it as the
    # content hash. Multipart ETags say nothing about content: those objects are downloaded and hashed.
    plain = re.compile(r"^[0-9a-f]{32}$")
    for k, o in objs.items():
        if plain.match(o["etag"]) and k not in detail:
            o["md5"] = o["etag"]
            o["got_size"] = o["size"]
    cp_log = ""
    errors = []
    fetch = [k for k in objs if "md5" not in objs[k] or k in detail]
    for k in detail:
        if k not in objs:
            errors.append(f"detail key {k!r} is not in s3://{bucket}")
    fetch = [k for k in fetch if k in objs]

    def get(i_k):
        i, k = i_k
        path = os.path.join(d, f".get-{i}")
        g = aws(side, endpoint, "s3api", "get-object", "--bucket", bucket, "--key", k, path, "--output", "json")
        if g.returncode != 0:
            return k, None, g.stderr.strip()
        return k, (path, json.loads(g.stdout)), None

    with cf.ThreadPoolExecutor(max_workers=4) as ex:
        for k, res, err in ex.map(get, enumerate(fetch)):
            if res is None:
                errors.append(f"get-object {k!r}: {err}")
                continue
            path, meta = res
            objs[k]["md5"] = md5_file(path)
            objs[k]["got_size"] = os.path.getsize(path)
            objs[k]["head"] = {h: meta.get(h) for h in HEADERS}
            objs[k]["metadata"] = meta.get("Metadata") or {}
            objs[k]["head_etag"] = (meta.get("ETag") or "").strip('"')
            os.unlink(path)
    missing_files = []
    for k, o in objs.items():
        if "md5" in o:
            continue
        p = os.path.join(d, k)
        if os.path.isfile(p):
            o["md5"] = md5_file(p)
            o["got_size"] = os.path.getsize(p)
        else:
            missing_files.append(k)
    if missing_files:
        errors.append(f"{len(missing_files)} objects not downloaded by aws s3 cp --recursive, e.g. "
                      f"{missing_files[:3]!r}; its output: {cp_log[:2000]}")
    subprocess.run(["rm", "-rf", d])
    json.dump({"bucket": bucket, "side": side, "objects": objs, "errors": errors}, open(out, "w"))
    nbytes = sum(o["size"] for o in objs.values())
    print(f"    snapshot {side}:s3://{bucket}: {len(objs)} objects, {nbytes} bytes; {len(fetch)} read with "
          f"get-object (multipart ETags, headers, metadata), the rest hashed by the server's MD5 ETag "
          f"({time.time() - t0:.0f}s)")
    for e in errors:
        print(f"    snapshot error: {e}")
    return 1 if errors else 0


def compare(src_file, dst_file, restored=False):
    """restored: DST is a restore, not a backup: it must carry none of the tool's bookkeeping metadata, and an
    ETag may differ from the source's (another part layout) as long as the content MD5 is the same."""
    s, t = json.load(open(src_file)), json.load(open(dst_file))
    so = s["objects"]
    to = {k: v for k, v in t["objects"].items() if not k.startswith(".replicate/")}
    problems = []
    missing = sorted(set(so) - set(to))
    extra = sorted(set(to) - set(so))
    if missing:
        problems.append(f"{len(missing)} source keys missing in the target: {missing[:10]!r}")
    if extra:
        problems.append(f"{len(extra)} target keys not in the source: {extra[:10]!r}")
    both = sorted(set(so) & set(to))
    n_size = n_md5 = n_meta = 0
    for k in both:
        a, b = so[k], to[k]
        if a["size"] != b["size"] or a.get("got_size") != b.get("got_size") or a.get("got_size") != a["size"]:
            problems.append(f"size of {k!r}: source listed {a['size']} read {a.get('got_size')}, "
                            f"target listed {b['size']} read {b.get('got_size')}")
            continue
        n_size += 1
        if a.get("md5") is None or a.get("md5") != b.get("md5"):
            problems.append(f"content MD5 of {k!r}: source {a.get('md5')} target {b.get('md5')}")
            continue
        n_md5 += 1
        if "head" in a and "head" in b:
            bad = False
            for h in a["head"]:
                if a["head"][h] != b["head"][h]:
                    problems.append(f"{h} of {k!r}: source {a['head'][h]!r} target {b['head'][h]!r}")
                    bad = True
            am = {x: y for x, y in a["metadata"].items() if x != SRC_ETAG}
            bm = {x: y for x, y in b["metadata"].items() if x != SRC_ETAG}
            if am != bm:
                problems.append(f"user metadata of {k!r}: source {am!r} target {bm!r}")
                bad = True
            rec = b["metadata"].get(SRC_ETAG)
            if restored:
                if any(x.startswith("replicate-") for x in b["metadata"]):
                    problems.append(f"{k!r}: the restore wrote the tool's bookkeeping metadata {b['metadata']!r}")
                    bad = True
            elif rec is not None and rec.strip('"') != a["etag"]:
                problems.append(f"{k!r}: target x-amz-meta-{SRC_ETAG} is {rec!r}, the source ETag is {a['etag']!r}")
                bad = True
            if not restored and rec is None and b["etag"] != a["etag"]:
                problems.append(f"{k!r}: the target ETag {b['etag']} differs from the source's {a['etag']} and "
                                f"x-amz-meta-{SRC_ETAG} is missing")
                bad = True
            if not bad:
                n_meta += 1
    for e in s.get("errors", []) + t.get("errors", []):
        problems.append("snapshot: " + e)
    print(f"    compared s3://{s['bucket']} with s3://{t['bucket']}: {len(so)} source keys, {len(to)} target keys "
          f"(.replicate/ ignored); {n_size} same size, {n_md5} same content MD5, {n_meta} with all headers and "
          f"metadata compared equal")
    recorded = sorted(k for k in both if SRC_ETAG in to[k].get("metadata", {}))
    if recorded:
        print(f"    x-amz-meta-{SRC_ETAG} on: " + ", ".join(f"{k} (= source ETag {so[k]['etag']}; target ETag "
                                                              f"{to[k]['etag']})" for k in recorded))
    for p in problems[:40]:
        print("    " + p)
    if len(problems) > 40:
        print(f"    ... and {len(problems) - 40} more")
    return 1 if problems else 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "snapshot":
        sys.exit(snapshot(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], set(sys.argv[7:])))
    if cmd == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3], len(sys.argv) > 4 and sys.argv[4] == "restored"))
    sys.exit(2)
PY
}
