#!/usr/bin/env bash
# Faults (issue 7): the state directory on a full filesystem (a 64 KiB tmpfs; skipped when mount is not
# allowed). A replication of 2,000 objects with --state-dir there, twice:
#   1. 8 KiB left: the manifest fills the disk part-way through the first pass;
#   2. nothing left: not even the manifest's header fits;
# each time: a clear error (the manifest could not be written, no space), exit non-zero, the JSON result not
# "ok", no local manifest that claims a result (it is absent, has no trailer, or a readable one that is not
# "ok"), and `replicate --status` on the target does not report the run as a success. Then, with space
# freed, the next run completes and --status reports it.
set -uo pipefail
[ -n "${RGW_A_ENDPOINT:-}" ] && [ -n "${REPLICATE:-}" ] && [ -n "${TOOLS:-}" ] || { echo "skip: no RGW env"; exit 77; }
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL
work=$(mktemp -d)
mnt=$work/state
mkdir -p "$mnt"
mounted=0
cleanup() {
  [ "$mounted" = 1 ] && umount "$mnt"
  rm -rf "$work"
}
trap cleanup EXIT
if ! mount -t tmpfs -o size=64k,mode=0700 tmpfs "$mnt" 2>"$work/mount.err"; then
  echo "skip: cannot mount a tmpfs ($(cat "$work/mount.err"))"
  exit 77
fi
mounted=1
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@" 2>/dev/null; }
export AWS_ACCESS_KEY_ID=$RGW_A_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_A_SECRET_KEY AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=$RGW_A_ENDPOINT AWS_EC2_METADATA_DISABLED=true

tag=s$(date +%s)$$
src=$tag-src dst=$tag-dst
"$TOOLS/s3tool" mkbucket "$src" && "$TOOLS/s3tool" mkbucket "$dst" --versioned || exit 1
"$TOOLS/s3tool" fill "$src" k/ 2000 0 2000 51 || exit 1
args=(--no-progress --endpoint "$RGW_A_ENDPOINT" --state-dir "$mnt" --json)

# fill LEAVE-KIB: the filesystem full but for LEAVE-KIB
fill() {
  rm -f "$mnt/filler"
  dd if=/dev/zero of="$mnt/filler" bs=4k count=64 2>/dev/null # stops at ENOSPC
  truncate -s "-$1K" "$mnt/filler"
  echo "  state filesystem: $(df -k --output=avail "$mnt" | tail -n 1 | tr -d ' ') KiB available"
}

# check_local LABEL RUN-JSON: the run's local manifest is absent, or has no trailer, or a readable one not ok
check_local() {
  local m run_id
  run_id=$(jget "$2" 'd["run_id"]')
  [ -n "$run_id" ] || { bad "$1: no run id in the JSON summary"; return; }
  m=$(ls "$mnt"/*/manifests/"$run_id".jsonl 2>/dev/null | head -n 1)
  if [ -z "$m" ]; then
    ok "$1: no local manifest of run $run_id was left behind"
    return
  fi
  python3 - "$m" "$1" <<'EOF'
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
records = trailer = 0
for i, raw in enumerate(lines):
    if not raw:
        continue
    try:
        r = json.loads(raw)
    except ValueError:
        # only the last line may be cut short (the write that hit ENOSPC); the reader skips it
        if any(lines[i + 1:]):
            print(f"FAIL: {sys.argv[2]}: line {i + 1} of the local manifest is corrupt in the middle of the file")
            sys.exit(1)
        print(f"  {sys.argv[2]}: the local manifest's last line is cut short ({len(raw)} bytes)")
        continue
    if r.get("t") == "object":
        records += 1
    if r.get("t") == "trailer":
        trailer = r
if trailer and trailer.get("result") == "ok":
    print(f"FAIL: {sys.argv[2]}: the local manifest's trailer says ok")
    sys.exit(1)
print(f"ok: {sys.argv[2]}: the local manifest ({records} object records) has "
      + (f"a readable trailer saying {trailer.get('result')}" if trailer else "no trailer (an unfinished run)"))
EOF
  [ $? = 0 ] || fails=$((fails + 1))
}

check_status() { # LABEL RUN-JSON
  local run_id out rc
  run_id=$(jget "$2" 'd["run_id"]')
  out=$("$REPLICATE" --status --endpoint "$RGW_A_ENDPOINT" --state-dir "$work/other" --max-age 1h "s3://$dst" 2>&1)
  rc=$?
  echo "$out" | sed 's/^/  | /'
  if [ "$rc" = 0 ]; then
    bad "$1: --status reports a successful run (exit 0)"
  elif [ -n "$run_id" ] && grep "$run_id" <<<"$out" | grep -qiw 'ok'; then
    bad "$1: --status reports run $run_id as ok"
  else
    ok "$1: --status does not report the run as a success (exit $rc)"
  fi
}

run_full() { # LABEL LEAVE-KIB
  local label=$1 rc
  echo "--- $label"
  fill "$2"
  "$REPLICATE" "${args[@]}" "s3://$src" "s3://$dst" >"$work/$label.json" 2>"$work/$label.err"
  rc=$?
  grep -v ': info: ' "$work/$label.err" | tail -n 6 | sed 's/^/  | /'
  [ "$rc" != 0 ] && ok "$label: exit $rc" || bad "$label: exit 0 with a full state directory"
  grep -qi 'no space left on device' "$work/$label.err" && grep -qi 'manifest' "$work/$label.err" \
    && ok "$label: the error names the manifest and 'No space left on device'" || bad "$label: no clear error"
  local result
  result=$(jget "$work/$label.json" 'd["result"]')
  [ -n "$result" ] && [ "$result" != ok ] && ok "$label: JSON result $result" || bad "$label: JSON result '${result}'"
  check_local "$label" "$work/$label.json"
  check_status "$label" "$work/$label.json"
}

run_full "8KiB-left" 8
run_full "no-space" 0

echo "--- space freed"
rm -f "$mnt/filler"
mount -o remount,size=8m "$mnt" || bad "cannot grow the tmpfs"
"$REPLICATE" "${args[@]}" "s3://$src" "s3://$dst" >"$work/freed.json" 2>"$work/freed.err"
rc=$?
[ "$rc" = 0 ] && ok "with space freed the next run completes ($(jget "$work/freed.json" 'd["objects_copied"]') copied)" \
  || { bad "with space freed the next run exited $rc"; tail -n 10 "$work/freed.err"; }
if "$REPLICATE" --status --endpoint "$RGW_A_ENDPOINT" --state-dir "$work/other" --max-age 1h "s3://$dst" >"$work/status.out" 2>&1; then
  ok "--status now reports a successful run: $(grep -m1 -i 'success' "$work/status.out")"
else
  bad "--status after the good run exited non-zero"; cat "$work/status.out"
fi
cnt=$(/usr/bin/aws --endpoint-url "$RGW_A_ENDPOINT" s3 ls --recursive "s3://$dst/" | grep -vc ' \.replicate/')
[ "$cnt" = 2000 ] && ok "the target holds the 2000 objects" || bad "the target holds $cnt objects"

echo "fullstate: $fails failure(s) (${SECONDS}s)"
[ "$fails" = 0 ]
