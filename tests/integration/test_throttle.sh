#!/usr/bin/env bash
# Adaptive concurrency (issue 15): a target that answers 30% of PUTs with 503 SlowDown (the fault proxy, as Amazon
# S3 does past 3,500 PUT/s per prefix) makes the run back off: fewer copies in flight than --jobs (AIMD per
# endpoint: halve on a burst of SlowDowns, grow back by one per window of successes), reported in the JSON
# ("concurrency") and the summary, and the copy is still exact, as awscli reads it.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

src=$(bucket src) dst=$(bucket dst)
s3tool_on a mkbucket "$src" >/dev/null || die "mkbucket $src"
s3tool_on a fill "$src" t/ 120 100 6000 21 >/dev/null || die "fill"
mkbucket b "$dst" --versioned

# run0: the same copy through the proxy with no faults, for comparison
dst0=$(bucket dst0)
mkbucket b "$dst0" --versioned
start_proxy proxy0 "$RGW_B_ENDPOINT" 0 --rate 0 --log "$T_TMP/proxy0.log"
rep run0 --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$PROXY_URL" --source-profile a --target-profile b \
  --jobs 16 --json --state-dir "$T_TMP/state0" "s3://$src" "s3://$dst0"
stop_proxy "$PROXY_PID"
expect_rc run0 0 "run 0: the copy without SlowDowns"
check "run 0: no back-off ($(jget "$T_TMP/run0.out" 'd["concurrency"]["lowest"]') of 16)" \
  test "$(jget "$T_TMP/run0.out" 'd["concurrency"]["lowest"]')" = 16

start_proxy proxy "$RGW_B_ENDPOINT" 0 --rate 0.3 --faults slowdown --only "PUT " --seed 7 --log "$T_TMP/proxy.log"
rep run1 --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$PROXY_URL" --source-profile a --target-profile b \
  --jobs 16 --json "s3://$src" "s3://$dst"
stop_proxy "$PROXY_PID"
expect_rc run1 0 "a target throttling 30% of PUTs: every object copied after retries"
slow=$(grep -ac 'fault=slowdown' "$T_TMP/proxy.log")
check "the proxy answered SlowDown to some PUTs ($slow)" test "$slow" -ge 10
c() { jget "$T_TMP/run1.out" "d['concurrency']$1"; }
check "the run saw them ($(c "['target']['throttled']") throttled replies from the target, none from the source: $(c "['source']['throttled']"))" \
  test "$(c "['target']['throttled']")" -ge 10 -a "$(c "['source']['throttled']")" = 0
check "the target's concurrency backed off from 16 to $(c "['target']['lowest']") in $(c "['target']['backoffs']") steps" \
  test "$(c "['target']['lowest']")" -le 4 -a "$(c "['target']['backoffs']")" -ge 2
check "the summary says so" grep -q 'concurrency backed off to [0-9]* of 16 jobs' "$T_TMP/run1.err"
# the proxy's own view: requests in flight when each PUT arrived, in the later half of the run: far fewer than
# in the same copy without SlowDowns (run0)
inflight_p90() { # PROXY-LOG: the 90th percentile of the in-flight counts of the later half of the PUTs
  python3 - "$1" <<'EOF'
import re, sys
n = [int(m.group(1)) for l in open(sys.argv[1], errors="replace") if l.startswith("PUT ")
     for m in [re.search(r"\[in-flight=(\d+)\]", l)] if m]
half = sorted(n[len(n) // 2:])
print(half[len(half) * 9 // 10] if half else 0)
EOF
}
free=$(inflight_p90 "$T_TMP/proxy0.log") slowed=$(inflight_p90 "$T_TMP/proxy.log")
check "the proxy saw the back-off: $slowed requests in flight (90th percentile, later half) against $free unthrottled" \
  test "$free" -ge 8 -a "$((slowed * 3))" -le "$free"
check "objects_copied = 120 ($(jget "$T_TMP/run1.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/run1.out" 'd["objects_copied"]')" = 120
snapshot a "$src" "$T_TMP/src.json" || die "snapshot source"
snapshot b "$dst" "$T_TMP/dst.json" || die "snapshot target"
check "the target holds exactly the source (keys, sizes, content MD5s)" compare_snapshots "$T_TMP/src.json" "$T_TMP/dst.json"

finish
