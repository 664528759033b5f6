#!/usr/bin/env bash
# Faults (issue 7): the state directory on a full filesystem (a 64 KiB tmpfs; skipped when mount is not
# allowed). A replication of 2,000 objects with --state-dir there, twice:
#   1. 8 KiB left: the manifest fills the disk part-way through the first pass;
#   2. nothing left: not even the manifest's header fits;
# each time: a clear error (the manifest could not be written, no space), exit non-zero, the JSON result not
# "ok", no local manifest that claims a result (it is absent, has no trailer, or a readable one that is not
# "ok"), and `replicate --status` on the target does not report the run as a success. Then, with space
# freed, the next run completes and --status reports it.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
mnt=$STATE
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=64k,mode=0700 tmpfs "$mnt" 2>"$T_TMP/mount.err"; then
  skip "cannot mount a tmpfs ($(cat "$T_TMP/mount.err"))"
fi
lib_on_exit "umount $(printf '%q' "$mnt")"
# replicate, s3tool and awscli configured from the environment (no profile)
use_env_credentials a

tag=s$(date +%s)$$
src=$tag-src dst=$tag-dst
mkbucket a "$src"
mkbucket a "$dst" --versioned
s3tool_on a fill "$src" k/ 2000 0 2000 51 || die "s3tool fill"
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
  s3check_checks manifest-unfinished "$m" "$1"
}

check_status() { # LABEL RUN-JSON
  local run_id out rc
  run_id=$(jget "$2" 'd["run_id"]')
  out=$("$REPLICATE" --status --endpoint "$RGW_A_ENDPOINT" --state-dir "$T_TMP/other" --max-age 1h "s3://$dst" 2>&1)
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
  "$REPLICATE" "${args[@]}" "s3://$src" "s3://$dst" >"$T_TMP/$label.json" 2>"$T_TMP/$label.err"
  rc=$?
  grep -v ': info: ' "$T_TMP/$label.err" | tail -n 6 | sed 's/^/  | /'
  [ "$rc" != 0 ] && ok "$label: exit $rc" || bad "$label: exit 0 with a full state directory"
  grep -qi 'no space left on device' "$T_TMP/$label.err" && grep -qi 'manifest' "$T_TMP/$label.err" \
    && ok "$label: the error names the manifest and 'No space left on device'" || bad "$label: no clear error"
  local result
  result=$(jget "$T_TMP/$label.json" 'd["result"]')
  [ -n "$result" ] && [ "$result" != ok ] && ok "$label: JSON result $result" || bad "$label: JSON result '${result}'"
  check_local "$label" "$T_TMP/$label.json"
  check_status "$label" "$T_TMP/$label.json"
}

run_full "8KiB-left" 8
run_full "no-space" 0

echo "--- space freed"
rm -f "$mnt/filler"
mount -o remount,size=8m "$mnt" || bad "cannot grow the tmpfs"
"$REPLICATE" "${args[@]}" "s3://$src" "s3://$dst" >"$T_TMP/freed.json" 2>"$T_TMP/freed.err"
rc=$?
[ "$rc" = 0 ] && ok "with space freed the next run completes ($(jget "$T_TMP/freed.json" 'd["objects_copied"]') copied)" \
  || { bad "with space freed the next run exited $rc"; tail -n 10 "$T_TMP/freed.err"; }
if "$REPLICATE" --status --endpoint "$RGW_A_ENDPOINT" --state-dir "$T_TMP/other" --max-age 1h "s3://$dst" >"$T_TMP/status.out" 2>&1; then
  ok "--status now reports a successful run: $(grep -m1 -i 'success' "$T_TMP/status.out")"
else
  bad "--status after the good run exited non-zero"; cat "$T_TMP/status.out"
fi
cnt=$(aws_on a s3 ls --recursive "s3://$dst/" | grep -vc ' \.replicate/')
[ "$cnt" = 2000 ] && ok "the target holds the 2000 objects" || bad "the target holds $cnt objects"

finish
