#!/usr/bin/env bash
# Maintenance flag around the final pass (issue 4): a live writer that writes only while the flag file is
# absent loses nothing; on/off commands run exactly once each; SIGTERM/SIGINT during the final pass switch the
# flag off and exit 130; after SIGKILL the next run clears the flag before anything else; a failing
# on-command means no final pass, flag off, non-zero exit; --maintenance-max caps the time with the flag on.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
# replicate, s3tool and awscli configured from the environment (no profile, no --endpoint)
use_env_credentials a
S3TOOL=$TOOLS/s3tool
tag=m$(date +%s)$$

wait_for_file() { # PATH SECONDS
  local i
  for ((i = 0; i < $2 * 20; i++)); do [ -e "$1" ] && return 0; sleep 0.05; done
  return 1
}

# ---- 1. a live writer and --maintenance-file
src=$tag-src dst=$tag-dst
mkbucket a "$src"
mkbucket a "$dst" --versioned
s3tool_on a fill "$src" base/ 800 200 4000 1 || die "s3tool fill"
flag=$T_TMP/maintenance.txt
"$S3TOOL" writer "$src" live/ "$T_TMP/written.log" --flag "$flag" --interval 5 --stop-on-flag 2>"$T_TMP/writer.err" &
wpid=$!
lib_kill_at_exit "$wpid"
sleep 0.5
rep s1 --settle 1 --grace 1 --maintenance-file "$flag" --json "s3://$src" "s3://$dst"
wait "$wpid"
expect_rc s1 0 "replicate with --maintenance-file"
[ -e "$flag" ] && bad "the flag file is still there" || ok "the flag file is gone"
grep -q '(maintenance on)' "$T_TMP/s1.err" && ok "a final pass ran with the flag on" || bad "no maintenance pass in the output"
aws_on a s3api list-objects-v2 --bucket "$dst" --prefix live/ --output json --query 'Contents[].[Key,ETag]' >"$T_TMP/t1.json"
s3check writer-in-target "$T_TMP/written.log" "$T_TMP/t1.json" && ok "every object the writer wrote is in the target with the same MD5" || bad "writer objects missing"
[ "$(jget "$T_TMP/s1.out" 'bool(d["maintenance"] and d["gap_seconds"] == 0)')" = true ] && ok "the summary reports gap 0 with the flag" || bad "the summary does not report gap 0"

# ---- 2. --maintenance-on/--maintenance-off commands: exactly one on and one off
calls=$T_TMP/calls.log
on="echo on >>$calls; touch $T_TMP/flag2"
off="echo off >>$calls; rm -f $T_TMP/flag2"
s3tool_on a fill "$src" more/ 20 100 200 2 || die "s3tool fill"
rep s2 --settle 5 --grace 0 --maintenance-on "$on" --maintenance-off "$off" "s3://$src" "s3://$dst"
expect_rc s2 0 "replicate with on/off commands"
[ "$(grep -c '^on$' "$calls")" = 1 ] && [ "$(grep -c '^off$' "$calls")" = 1 ] && [ "$(wc -l <"$calls")" = 2 ] \
  && ok "exactly one on and one off ($(tr '\n' ' ' <"$calls"))" || bad "calls: $(tr '\n' ' ' <"$calls")"
[ -e "$T_TMP/flag2" ] && bad "flag2 still exists" || ok "the command flag is off"

# ---- 3. signals during the final pass: the flag goes off, exit 130
# The final pass is made long by objects that arrive during the grace period (writes in flight).
signal_case() { # SIGNAL
  local sig=$1 f=$T_TMP/flag-$1 s2=$tag-${1,,} rc
  mkbucket a "$s2"
  s3tool_on a fill "$s2" a/ 5 100 200 3 || die "s3tool fill"
  mkbucket a "$s2-dst" --versioned
  # started directly (not through a shell function) so that the signal reaches replicate itself
  "$REPLICATE" --no-progress --state-dir "$STATE" --settle 30 --grace 1 --maintenance-file "$f" \
    "s3://$s2" "s3://$s2-dst" >"$T_TMP/sig-$sig.out" 2>&1 &
  local p=$!
  lib_kill_at_exit "$p"
  wait_for_file "$f" 30 || { bad "$sig: the flag never appeared"; kill $p; return; }
  "$S3TOOL" fill "$s2" late/ 2500 100 300 4 &
  local fp=$!
  sleep 1.6 # grace (1 s) is over: the final pass is listing/copying
  kill -s "$sig" "$p"
  wait "$p"
  rc=$?
  kill "$fp" 2>/dev/null
  wait "$fp" 2>/dev/null
  [ "$rc" = 130 ] && ok "$sig during the final pass: exit 130" || { bad "$sig: exit $rc"; cat "$T_TMP/sig-$sig.out"; }
  [ -e "$f" ] && bad "$sig: the flag file is still there" || ok "$sig: the flag is off"
  grep -q '(maintenance on)' "$T_TMP/sig-$sig.out" && ok "$sig: it arrived during the final pass ($(grep -m1 '(maintenance on)' "$T_TMP/sig-$sig.out"))" \
    || bad "$sig: the final pass was not running"
}
signal_case TERM
signal_case INT

# ---- 4. SIGKILL during the final pass: the next run clears the flag before anything else
s3=$tag-kill f=$T_TMP/flag-kill
mkbucket a "$s3"
s3tool_on a fill "$s3" a/ 5 100 200 5 || die "s3tool fill"
mkbucket a "$s3-dst" --versioned
"$REPLICATE" --no-progress --state-dir "$STATE" --settle 30 --grace 1 --maintenance-file "$f" \
  "s3://$s3" "s3://$s3-dst" >"$T_TMP/kill.out" 2>&1 &
p=$!
wait_for_file "$f" 30 || bad "SIGKILL case: the flag never appeared"
"$S3TOOL" fill "$s3" late/ 1500 100 300 6 &
fp=$!
sleep 1.6
kill -KILL "$p"
wait "$p" 2>/dev/null
wait "$fp" 2>/dev/null
[ -e "$f" ] && ok "after SIGKILL the flag is still on (as expected)" || { bad "the flag vanished after SIGKILL?"; cat "$T_TMP/kill.out"; }
# the next run is bound to fail (its source bucket does not exist), but it clears the flag first: the
# warning is the first thing it prints
"$REPLICATE" --no-progress --state-dir "$STATE" "s3://$tag-no-such-source" "s3://$s3-dst" >"$T_TMP/next.out" 2>&1
rc=$?
[ -e "$f" ] && bad "the next run did not clear the flag" || ok "the next run cleared the flag (it then exited $rc)"
head -n 1 "$T_TMP/next.out" | grep -q 'killed with the maintenance flag on' && ok "and warned: $(grep -m1 killed "$T_TMP/next.out")" \
  || { bad "no warning about the killed run"; cat "$T_TMP/next.out"; }

# ---- 5. a failing on-command: no final pass, flag off, non-zero exit with a clear message
calls5=$T_TMP/calls5.log
"$REPLICATE" --no-progress --state-dir "$STATE" --settle 5 --grace 0 --maintenance-on "echo on >>$calls5; exit 3" --maintenance-off "echo off >>$calls5" \
  "s3://$src" "s3://$dst" >"$T_TMP/s5.out" 2>&1
rc=$?
[ "$rc" != 0 ] && ok "failing on-command: exit $rc" || bad "failing on-command: exit 0"
grep -q 'switching maintenance on failed' "$T_TMP/s5.out" && ok "clear message: $(grep -m1 'maintenance on failed' "$T_TMP/s5.out")" \
  || { bad "no clear message"; cat "$T_TMP/s5.out"; }
grep -q '(maintenance on)' "$T_TMP/s5.out" && bad "a final pass ran anyway" || ok "no final pass ran"
tail -n 1 "$calls5" | grep -q '^off$' && ok "the flag was switched off again" || bad "off was not called: $(cat "$calls5")"

# ---- 6. --maintenance-max: the flag never stays on longer
s6=$tag-max f=$T_TMP/flag-max
mkbucket a "$s6"
s3tool_on a fill "$s6" a/ 5 100 200 7 || die "s3tool fill"
mkbucket a "$s6-dst" --versioned
"$REPLICATE" --no-progress --state-dir "$STATE" --settle 30 --grace 0.5 --maintenance-max 1 \
  --maintenance-file "$f" "s3://$s6" "s3://$s6-dst" >"$T_TMP/s6.out" 2>&1 &
p=$!
wait_for_file "$f" 30
"$S3TOOL" fill "$s6" late/ 2500 100 300 8 &
fp=$!
wait "$p"
rc=$?
wait "$fp" 2>/dev/null
[ "$rc" = 1 ] && ok "--maintenance-max reached: exit 1" || { bad "--maintenance-max: exit $rc"; cat "$T_TMP/s6.out"; }
[ -e "$f" ] && bad "--maintenance-max: the flag is still on" || ok "--maintenance-max: the flag is off"
grep -q 'maintenance-max' "$T_TMP/s6.out" && ok "reported: $(grep -m1 'maintenance-max' "$T_TMP/s6.out")" || bad "not reported"

finish
