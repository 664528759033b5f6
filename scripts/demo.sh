#!/usr/bin/env bash
# `make demo`: a real replication with a live writer and the maintenance flag, verified, in plain words.
# Starts a local Ceph RGW (unless one is running), fills a source bucket with a few thousand objects (some
# large), starts a writer that keeps adding objects until the app's maintenance file appears, runs
# replicate with --maintenance-file, checks that every object the writer wrote is in the target with the
# same content, runs replicate --verify, restores the backup into a fresh bucket (from the backup alone, an
# empty state directory) and checks it equals the app's bucket, prints what happened, and stops the server
# it started.
set -euo pipefail
# Debian's tools first (/usr/bin/aws, python3, ...): a pip or pyenv copy earlier on PATH is not what we install.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
REPLICATE=$root/$BUILD/replicate
S3TOOL=$root/$BUILD/tools/s3tool
export RGW_STATE_DIR=${RGW_STATE_DIR:-/tmp/replicate-rgw}
work=$(mktemp -d)
started=0
writer_pid=""

cleanup() {
  [ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null && wait "$writer_pid" 2>/dev/null
  if [ "$started" = 1 ]; then
    echo "demo: stopping the S3 server"
    scripts/rgw.sh stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "starting a local S3 server (Ceph RGW on 127.0.0.1)"
if scripts/rgw.sh status >/dev/null 2>&1; then
  echo "an RGW started earlier is running; using it"
else
  scripts/rgw.sh start 1
  started=1
fi
set -a
. "$RGW_STATE_DIR/env"
set +a
export AWS_ACCESS_KEY_ID=$RGW_A_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_A_SECRET_KEY
export AWS_ENDPOINT_URL=$RGW_A_ENDPOINT AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true

src=demo-app-$(date +%s)
dst=demo-backup-$(date +%s)
step "creating s3://$src (the app's bucket) and s3://$dst (versioned backup bucket)"
"$S3TOOL" mkbucket "$src"
"$S3TOOL" mkbucket "$dst" --versioned

step "filling s3://$src: 3,000 small files and 3 large videos (24-40 MiB)"
t0=$(date +%s%N)
"$S3TOOL" fill "$src" uploads/photos/ 3000 1024 32768 1
"$S3TOOL" put "$src" uploads/videos/intro.mp4 $((24 * 1024 * 1024)) 2
"$S3TOOL" put "$src" uploads/videos/tour.mp4 $((32 * 1024 * 1024)) 3
"$S3TOOL" put "$src" uploads/videos/keynote.mp4 $((40 * 1024 * 1024)) 4
echo "filled in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

flag=$work/maintenance.txt
step "starting the app's writer: it uploads a file every 5 ms until the maintenance file appears"
"$S3TOOL" writer "$src" uploads/live/ "$work/written.log" --flag "$flag" --interval 5 --stop-on-flag \
  2>"$work/writer.err" &
writer_pid=$!
sleep 1

step "replicate --maintenance-file $flag s3://$src s3://$dst"
set +e
"$REPLICATE" --settle 2 --grace 1 --maintenance-file "$flag" --state-dir "$work/state" --json --no-progress \
  "s3://$src" "s3://$dst" >"$work/summary.json"
rc=$?
set -e
wait "$writer_pid" 2>/dev/null || true
writer_pid=""
echo "replicate exited with $rc"
[ "$rc" = 0 ] || { echo "demo: replicate failed"; cat "$work/summary.json"; exit 1; }
[ -e "$flag" ] && { echo "demo: the maintenance file is still there!"; exit 1; }

step "checking that every object the writer wrote is in the backup, with the same content"
/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3api list-objects-v2 --bucket "$dst" --prefix uploads/live/ --output json \
  --query 'Contents[].[Key,ETag]' >"$work/target.json"
python3 - "$work/written.log" "$work/target.json" <<'PY'
import json, sys
written = dict(line.split() for line in open(sys.argv[1]) if line.strip())
target = {k: e.strip('"') for k, e in (json.load(open(sys.argv[2])) or [])}
missing = [k for k in written if k not in target]
different = [k for k in written if k in target and target[k] != written[k]]
print(f"the writer wrote {len(written)} objects during the run; in the backup: {len(written) - len(missing)}, "
      f"missing: {len(missing)}, different: {len(different)}")
sys.exit(1 if missing or different else 0)
PY

step "replicate --verify s3://$src s3://$dst"
"$REPLICATE" --verify --state-dir "$work/state" "s3://$src" "s3://$dst"

restored=demo-restored-$(date +%s)
step "replicate --restore s3://$dst s3://$restored (the backup given back, into a fresh bucket)"
"$S3TOOL" mkbucket "$restored"
"$REPLICATE" --restore --json --no-progress --state-dir "$work/state-elsewhere" "s3://$dst" "s3://$restored" \
  >"$work/restore.json"

step "checking that the restore is exactly the app's bucket as the last run left it"
for b in "$src" "$restored"; do
  /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3api list-objects-v2 --bucket "$b" --output json \
    --query 'Contents[].[Key,Size,ETag]' >"$work/list-$b.json"
done
python3 - "$work/list-$src.json" "$work/list-$restored.json" "$work/restore.json" <<'PY'
import json, sys
src = {k: (s, e) for k, s, e in json.load(open(sys.argv[1])) or []}
rst = {k: (s, e) for k, s, e in json.load(open(sys.argv[2])) or []}
r = json.load(open(sys.argv[3]))
missing = [k for k in src if k not in rst]
extra = [k for k in rst if k not in src]
different = [k for k in src if k in rst and rst[k] != src[k]]
print(f"restored run {r['run_id']} ({r['objects_copied']} objects, {r['bytes_copied'] / 1048576:.1f} MiB, "
      f"{r['duration_seconds']:.0f}s) from the backup alone, with an empty state directory")
print(f"the app's bucket has {len(src)} objects; the restore has {len(rst)}: missing {len(missing)}, "
      f"extra {len(extra)}, different size or ETag {len(different)}")
sys.exit(1 if missing or extra or different else 0)
PY

step "what happened"
python3 - "$work/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
mib = s["bytes_copied"] / 1048576
print(f"replicate copied {s['objects_copied']} objects ({mib:.1f} MiB) in {s['passes']} passes "
      f"and {s['duration_seconds']:.1f}s ({s['copy_mode']} copy).")
for p in s["pass_details"]:
    flag = " with the maintenance flag on" if p["maintenance"] else ""
    print(f"  pass {p['pass']}{flag}: listed {p['listed']}, copied {p['copied']} in {p['duration_seconds']:.2f}s")
if s["maintenance"]:
    print("The last pass ran while the app was in maintenance mode, so the gap is 0 s: nothing written "
          "before the flag went up can be missing from the backup.")
else:
    print(f"The gap (a window in which a write could be missed) was {s['gap_seconds']:.2f}s.")
PY
echo
echo "demo: OK"
