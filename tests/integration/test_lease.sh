#!/usr/bin/env bash
# One run per target across hosts (issue 16): the lease .replicate/lease in the target. Separate state
# directories stand in for separate hosts (each has its own local lock, so only the lease can stop them):
#   1. two runs started together against one target: exactly one runs (exit 0), the other exits 3 naming the
#      holder (host, pid, run id); afterwards the lease is a released record, not deleted;
#   2. kill -9 of a holder with --lease 10s: a run from another state dir is refused until the lease expires,
#      then takes it over with a warning and works;
#   3. kill -9 of a holder, then the same state dir again: taken over at once (that dir's lock proves the
#      holder dead);
#   4. a holder whose lease is overwritten by another run (a takeover behind its back) stops at its next
#      renewal: exit 1, "another run took over the lease".
# (test_zz_no_delete checks RGW's log for DELETEs of every test, this one included.)
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init curl

src=$(bucket src) dst=$(bucket dst)
mkbucket a "$src"
mkbucket a "$dst" --versioned
s3tool_on a fill "$src" l/ 20 100 500 12 || die "s3tool fill"
host=$(hostname)
# the lease read and written with curl's SigV4 (awscli takes seconds of CPU a call: too slow for short leases)
s3curl() { curl -s -f --aws-sigv4 "aws:amz:${RGW_REGION:-us-east-1}:s3" --user "$RGW_A_ACCESS_KEY:$RGW_A_SECRET_KEY" \
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"; }
lease() { s3curl "$RGW_A_ENDPOINT/$dst/.replicate/lease"; }
lease_field() { lease | jget /dev/stdin "d.get('$1', '')"; }

# bg NAME STATE ARGS...: replicate in the background with its own state dir; pid in BG_PID
bg() {
  local n=$1 st=$2
  shift 2
  "$REPLICATE" --no-progress --state-dir "$T_TMP/$st" "$@" >"$T_TMP/$n.out" 2>"$T_TMP/$n.err" &
  BG_PID=$!
}
# holding PID NAME: waits (15 s at most) until the run's maintenance flag is on, i.e. it holds the lease
holding() {
  local i
  for ((i = 0; i < 150; i++)); do
    grep -qh '^maintenance on' "$T_TMP/$2.out" "$T_TMP/$2.err" 2>/dev/null && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- 1. two runs at once
RUN=("${SAME[@]}" --settle 0 --json --maintenance-file "$T_TMP/maint" --grace 4)
bg one st-one "${RUN[@]}" "s3://$src" "s3://$dst"
p1=$BG_PID
bg two st-two "${RUN[@]}" "s3://$src" "s3://$dst"
p2=$BG_PID
wait "$p1"
r1=$?
wait "$p2"
r2=$?
say "    run one: exit $r1; run two: exit $r2"
if [ "$r1" -eq 0 ] && [ "$r2" -eq 3 ]; then win=one lose=two wpid=$p1
elif [ "$r1" -eq 3 ] && [ "$r2" -eq 0 ]; then win=two lose=one wpid=$p2
else win="" lose=""; fi
check "of two runs started together exactly one ran (exit 0) and the other was refused (exit 3)" test -n "$win"
if [ -n "$win" ]; then
  wrun=$(jget "$T_TMP/$win.out" 'd["run_id"]')
  say "    refused: $(grep 'refused' "$T_TMP/$lose.err" | head -n 1)"
  check "the refused run names the holder: host $host, pid $wpid, run $wrun" \
    grep -q "leased to another replicate run: host $host, pid $wpid, run $wrun" "$T_TMP/$lose.err"
  check "the refused run's --json summary says refused" test "$(jget "$T_TMP/$lose.out" 'd["result"]')" = refused
  check "the winner copied the 20 objects" test "$(jget "$T_TMP/$win.out" 'd["objects_copied"]')" = 20
fi
check "after the run the lease is a released record of the winner ($(lease_field state), run $(lease_field run_id))" \
  test "$(lease_field state)" = released -a "$(lease_field run_id)" = "${wrun:-?}"
rep st_rel "${SAME[@]}" --status "s3://$dst"
check "--status shows the lease released by the winner" grep -q "^lease: released by run ${wrun:-?} " "$T_TMP/st_rel.out"
rep third "${SAME[@]}" --settle 0 --state-dir "$T_TMP/st-three" "s3://$src" "s3://$dst"
expect_rc third 0 "a run from a third state dir takes the released lease at once"

# ---- 2. kill -9 of the holder; another state dir waits for the expiry
bg killed st-killed "${SAME[@]}" --settle 0 --lease 10s --maintenance-file "$T_TMP/maint" --grace 60 \
  "s3://$src" "s3://$dst"
kpid=$BG_PID
if holding "$kpid" killed; then ok "the holder (pid $kpid) has the lease"; else bad "the holder never held the lease"; fi
krun=$(lease_field run_id)
{ kill -9 "$kpid" && wait "$kpid"; } 2>/dev/null
rm -f "$T_TMP/maint"
expires=$(lease_field expires)
rep st_dead "${SAME[@]}" --status "s3://$dst"
check "--status names the dead holder's lease: held by run $krun, pid $kpid" \
  grep -q "^lease: held by run $krun (host $host, pid $kpid) until " "$T_TMP/st_dead.out"
rep st_dead_j "${SAME[@]}" --status --json "s3://$dst"
check "--status --json too (lease.state $(jget "$T_TMP/st_dead_j.out" 'd["lease"]["state"]'), expired $(jget "$T_TMP/st_dead_j.out" 'd["lease"]["expired"]'))" \
  test "$(jget "$T_TMP/st_dead_j.out" '(d["lease"]["state"], d["lease"]["run_id"], d["lease"]["expired"])')" = "('held', '$krun', False)"
rep early "${SAME[@]}" --settle 0 --lease 10s --state-dir "$T_TMP/st-other" "s3://$src" "s3://$dst"
expect_rc early 3 "before the dead holder's lease expires a run from another state dir is refused"
check "it names the dead holder (pid $kpid, run $krun)" grep -q "pid $kpid, run $krun" "$T_TMP/early.err"
now=$(date +%s)
[ -n "$expires" ] && [ "$expires" -ge "$now" ] && sleep $((expires - now + 1))
rep late "${SAME[@]}" --settle 0 --lease 10s --state-dir "$T_TMP/st-other" "s3://$src" "s3://$dst"
expect_rc late 0 "after the expiry the run takes the lease over"
check "with a warning naming the expired holder" grep -q "taking over the lease of run $krun.*it expired at" "$T_TMP/late.err"

# ---- 3. kill -9, then the same state dir: at once
bg killed2 st-same "${SAME[@]}" --settle 0 --maintenance-file "$T_TMP/maint" --grace 60 "s3://$src" "s3://$dst"
kpid=$BG_PID
holding "$kpid" killed2 || bad "the second holder never held the lease"
{ kill -9 "$kpid" && wait "$kpid"; } 2>/dev/null
rm -f "$T_TMP/maint"
rep same "${SAME[@]}" --settle 0 --state-dir "$T_TMP/st-same" "s3://$src" "s3://$dst"
expect_rc same 0 "the same state dir after a kill -9 takes the lease over at once (its default 5m lease held)"
check "saying the holder died" grep -q "ran from this host and state directory and died" "$T_TMP/same.err"

# ---- 4. the lease taken behind a holder's back: it stops at its next renewal
bg victim st-victim "${SAME[@]}" --settle 0 --json --lease 3s --maintenance-file "$T_TMP/maint" --grace 30 \
  "s3://$src" "s3://$dst"
vpid=$BG_PID
holding "$vpid" victim || bad "the victim never held the lease"
printf '{"tool":"replicate","state":"held","host":"elsewhere","pid":1,"run_id":"intruder","expires":%s}\n' \
  $(($(date +%s) + 600)) >"$T_TMP/intruder.json"
s3curl -o /dev/null -X PUT --data-binary "@$T_TMP/intruder.json" "$RGW_A_ENDPOINT/$dst/.replicate/lease" ||
  bad "could not write the intruder"
for _ in $(seq 100); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$vpid" 2>/dev/null; then
  bad "the victim still runs 10 s after its lease was taken"
  kill -9 "$vpid"
fi
wait "$vpid"
vrc=$?
check "the run whose lease was taken over stopped with exit 1 (exit $vrc)" test "$vrc" -eq 1
check "it says another run took over the lease" grep -q "another run took over the lease" "$T_TMP/victim.err"
check "its maintenance flag is off" test ! -e "$T_TMP/maint"
check "it left the intruder's lease alone" test "$(lease_field run_id)" = intruder
finish
