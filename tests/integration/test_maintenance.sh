#!/usr/bin/env bash
# Maintenance flag around the final pass (issue 4): a live writer that writes only while the flag file is
# absent loses nothing; on/off commands run exactly once each; SIGTERM/SIGINT during the final pass switch the
# flag off and exit 130; after SIGKILL the next run clears the flag before anything else; a failing
# on-command means no final pass, flag off, non-zero exit; --maintenance-max caps the time with the flag on.
set -uo pipefail
[ -n "${RGW_A_ENDPOINT:-}" ] && [ -n "${REPLICATE:-}" ] && [ -n "${TOOLS:-}" ] || { echo "skip: no RGW env"; exit 77; }
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN
export AWS_ACCESS_KEY_ID=$RGW_A_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_A_SECRET_KEY
export AWS_ENDPOINT_URL=$RGW_A_ENDPOINT AWS_REGION=us-east-1
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
S3TOOL=$TOOLS/s3tool
tag=m$(date +%s)$$
rep() { "$REPLICATE" --no-progress --state-dir "$work/state" "$@"; }
aws3() { /usr/bin/aws --endpoint-url "$RGW_A_ENDPOINT" "$@"; }

wait_for_file() { # PATH SECONDS
  local i
  for ((i = 0; i < $2 * 20; i++)); do [ -e "$1" ] && return 0; sleep 0.05; done
  return 1
}

# ---- 1. a live writer and --maintenance-file
src=$tag-src dst=$tag-dst
"$S3TOOL" mkbucket "$src" && "$S3TOOL" mkbucket "$dst" --versioned || exit 1
"$S3TOOL" fill "$src" base/ 800 200 4000 1 || exit 1
flag=$work/maintenance.txt
"$S3TOOL" writer "$src" live/ "$work/written.log" --flag "$flag" --interval 5 --stop-on-flag 2>"$work/writer.err" &
wpid=$!
pids+=("$wpid")
sleep 0.5
rep --settle 1 --grace 1 --maintenance-file "$flag" --json "s3://$src" "s3://$dst" >"$work/s1.json" 2>"$work/s1.err"
rc=$?
wait "$wpid"
[ "$rc" = 0 ] && ok "replicate with --maintenance-file exited 0" || { bad "exit $rc"; cat "$work/s1.err"; }
[ -e "$flag" ] && bad "the flag file is still there" || ok "the flag file is gone"
grep -q '(maintenance on)' "$work/s1.err" && ok "a final pass ran with the flag on" || bad "no maintenance pass in the output"
aws3 s3api list-objects-v2 --bucket "$dst" --prefix live/ --output json --query 'Contents[].[Key,ETag]' >"$work/t1.json"
python3 - "$work/written.log" "$work/t1.json" <<'PY' && ok "every object the writer wrote is in the target with the same MD5" || bad "writer objects missing"
import json, sys
w = dict(l.split() for l in open(sys.argv[1]) if l.strip())
t = {k: e.strip('"') for k, e in (json.load(open(sys.argv[2])) or [])}
miss = [k for k in w if k not in t]; diff = [k for k in w if k in t and t[k] != w[k]]
print(f"  writer wrote {len(w)}; missing {len(miss)} {miss[:5]}; different {len(diff)} {diff[:5]}")
sys.exit(1 if miss or diff or not w else 0)
PY
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s["maintenance"] and s["gap_seconds"]==0 else 1)' "$work/s1.json" \
  && ok "the summary reports gap 0 with the flag" || bad "the summary does not report gap 0"

# ---- 2. --maintenance-on/--maintenance-off commands: exactly one on and one off
calls=$work/calls.log
on="echo on >>$calls; touch $work/flag2"
off="echo off >>$calls; rm -f $work/flag2"
"$S3TOOL" fill "$src" more/ 20 100 200 2 || exit 1
rep --settle 5 --grace 0 --maintenance-on "$on" --maintenance-off "$off" "s3://$src" "s3://$dst" >"$work/s2.out" 2>&1
rc=$?
[ "$rc" = 0 ] && ok "replicate with on/off commands exited 0" || { bad "exit $rc"; cat "$work/s2.out"; }
[ "$(grep -c '^on$' "$calls")" = 1 ] && [ "$(grep -c '^off$' "$calls")" = 1 ] && [ "$(wc -l <"$calls")" = 2 ] \
  && ok "exactly one on and one off ($(tr '\n' ' ' <"$calls"))" || bad "calls: $(tr '\n' ' ' <"$calls")"
[ -e "$work/flag2" ] && bad "flag2 still exists" || ok "the command flag is off"

# ---- 3. signals during the final pass: the flag goes off, exit 130
# The final pass is made long by objects that arrive during the grace period (writes in flight).
signal_case() { # SIGNAL
  local sig=$1 f=$work/flag-$1 s2=$tag-${1,,} rc
  "$S3TOOL" mkbucket "$s2" || return 1
  "$S3TOOL" fill "$s2" a/ 5 100 200 3 || return 1
  "$S3TOOL" mkbucket "$s2-dst" --versioned || return 1
  # started directly (not through a shell function) so that the signal reaches replicate itself
  "$REPLICATE" --no-progress --state-dir "$work/state" --settle 30 --grace 1 --maintenance-file "$f" \
    "s3://$s2" "s3://$s2-dst" >"$work/sig-$sig.out" 2>&1 &
  local p=$!
  pids+=("$p")
  wait_for_file "$f" 30 || { bad "$sig: the flag never appeared"; kill $p; return; }
  "$S3TOOL" fill "$s2" late/ 2500 100 300 4 &
  local fp=$!
  sleep 1.6 # grace (1 s) is over: the final pass is listing/copying
  kill -s "$sig" "$p"
  wait "$p"
  rc=$?
  kill "$fp" 2>/dev/null
  wait "$fp" 2>/dev/null
  [ "$rc" = 130 ] && ok "$sig during the final pass: exit 130" || { bad "$sig: exit $rc"; cat "$work/sig-$sig.out"; }
  [ -e "$f" ] && bad "$sig: the flag file is still there" || ok "$sig: the flag is off"
  grep -q '(maintenance on)' "$work/sig-$sig.out" && ok "$sig: it arrived during the final pass ($(grep -m1 '(maintenance on)' "$work/sig-$sig.out"))" \
    || bad "$sig: the final pass was not running"
}
signal_case TERM
signal_case INT

# ---- 4. SIGKILL during the final pass: the next run clears the flag before anything else
s3=$tag-kill f=$work/flag-kill
"$S3TOOL" mkbucket "$s3" && "$S3TOOL" fill "$s3" a/ 5 100 200 5 || exit 1
"$S3TOOL" mkbucket "$s3-dst" --versioned || exit 1
"$REPLICATE" --no-progress --state-dir "$work/state" --settle 30 --grace 1 --maintenance-file "$f" \
  "s3://$s3" "s3://$s3-dst" >"$work/kill.out" 2>&1 &
p=$!
wait_for_file "$f" 30 || bad "SIGKILL case: the flag never appeared"
"$S3TOOL" fill "$s3" late/ 1500 100 300 6 &
fp=$!
sleep 1.6
kill -KILL "$p"
wait "$p" 2>/dev/null
wait "$fp" 2>/dev/null
[ -e "$f" ] && ok "after SIGKILL the flag is still on (as expected)" || { bad "the flag vanished after SIGKILL?"; cat "$work/kill.out"; }
# the next run is bound to fail (its source bucket does not exist), but it clears the flag first: the
# warning is the first thing it prints
rep "s3://$tag-no-such-source" "s3://$s3-dst" >"$work/next.out" 2>&1
rc=$?
[ -e "$f" ] && bad "the next run did not clear the flag" || ok "the next run cleared the flag (it then exited $rc)"
head -n 1 "$work/next.out" | grep -q 'killed with the maintenance flag on' && ok "and warned: $(grep -m1 killed "$work/next.out")" \
  || { bad "no warning about the killed run"; cat "$work/next.out"; }

# ---- 5. a failing on-command: no final pass, flag off, non-zero exit with a clear message
calls5=$work/calls5.log
rep --settle 5 --grace 0 --maintenance-on "echo on >>$calls5; exit 3" --maintenance-off "echo off >>$calls5" \
  "s3://$src" "s3://$dst" >"$work/s5.out" 2>&1
rc=$?
[ "$rc" != 0 ] && ok "failing on-command: exit $rc" || bad "failing on-command: exit 0"
grep -q 'switching maintenance on failed' "$work/s5.out" && ok "clear message: $(grep -m1 'maintenance on failed' "$work/s5.out")" \
  || { bad "no clear message"; cat "$work/s5.out"; }
grep -q '(maintenance on)' "$work/s5.out" && bad "a final pass ran anyway" || ok "no final pass ran"
tail -n 1 "$calls5" | grep -q '^off$' && ok "the flag was switched off again" || bad "off was not called: $(cat "$calls5")"

# ---- 6. --maintenance-max: the flag never stays on longer
s6=$tag-max f=$work/flag-max
"$S3TOOL" mkbucket "$s6" && "$S3TOOL" fill "$s6" a/ 5 100 200 7 || exit 1
"$S3TOOL" mkbucket "$s6-dst" --versioned || exit 1
"$REPLICATE" --no-progress --state-dir "$work/state" --settle 30 --grace 0.5 --maintenance-max 1 \
  --maintenance-file "$f" "s3://$s6" "s3://$s6-dst" >"$work/s6.out" 2>&1 &
p=$!
wait_for_file "$f" 30
"$S3TOOL" fill "$s6" late/ 2500 100 300 8 &
fp=$!
wait "$p"
rc=$?
wait "$fp" 2>/dev/null
[ "$rc" = 1 ] && ok "--maintenance-max reached: exit 1" || { bad "--maintenance-max: exit $rc"; cat "$work/s6.out"; }
[ -e "$f" ] && bad "--maintenance-max: the flag is still on" || ok "--maintenance-max: the flag is off"
grep -q 'maintenance-max' "$work/s6.out" && ok "reported: $(grep -m1 'maintenance-max' "$work/s6.out")" || bad "not reported"

echo "maintenance: $fails failure(s)"
[ "$fails" = 0 ]
