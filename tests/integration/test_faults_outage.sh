#!/usr/bin/env bash
# Faults (issue 7): the server stops and starts again in the middle of a run. The shared RGW servers are not
# restarted (other tests use them): the tests/tools/faultproxy in front of one is killed with SIGTERM, so
# connections are refused, and a new one comes up on the same port a few seconds later.
#   1. same endpoint, the whole server away for 4s, default retries: the run completes, or fails naming what
#      failed and why;
#   2. cross endpoint, the target away for 4s, --retries 3 (too few to wait it out) and one pass: the run
#      fails and names the objects and the reason (or completes);
# in both cases what the run recorded as copied is in the target, and the following run completes with the
# target equal to the source (awscli against RGW directly);
#   3. cross endpoint, the target hangs (no reply at all) on a multipart object's parts and on aborts: SIGINT
#      ends the run within seconds, with one AbortMultipartUpload per upload, not ten tries of --timeout each.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

tag=o$(date +%s)$$
src=$tag-src
mkbucket a "$src"
s3tool_on a fill "$src" a/ 800 0 3000 41 || die "s3tool fill"
s3tool_on a put "$src" m/eleven $((11 * MiB + 1)) 6 || die "s3tool put"
s3tool_on a put "$src" m/seventeen $((17 * MiB)) 7 || die "s3tool put"
s3tool_on a fill "$src" z/ 800 0 3000 42 || die "s3tool fill"
echo "source s3://$src on A: 1602 objects, 2 of them multipart"
common=(--no-progress --timeout 5 --part-size 5MiB --copy-threshold 10MiB --source-profile a)

# outage LABEL PROXY-NAME UPSTREAM PID URL STATE-DIR: waits until the run ($rp) has recorded 300 objects, kills
# the proxy, waits 4s, starts a new one on the same port
outage() {
  local label=$1 name=$2 up=$3 pid=$4 url=$5 state=$6 i n=0
  for ((i = 0; i < 1200; i++)); do
    n=$(cat "$state"/*/manifests/*.jsonl 2>/dev/null | grep -c '"t":"object"')
    [ "${n:-0}" -ge 300 ] && break
    kill -0 "$rp" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$rp" 2>/dev/null || { bad "$label: the run ended before the outage"; return; }
  echo "  $label: $n objects recorded; stopping the proxy in front of $up, refusing connections for 4s"
  stop_proxy "$pid"
  sleep 4
  start_proxy "$name-again" "$up" "${url##*:}"
  [ "$PROXY_URL" = "$url" ] && echo "  $label: back on $url" || bad "$label: new proxy on $PROXY_URL, not $url"
}

# judge LABEL RC ERR-FILE: exit 0, or exit 1 with a clear message (objects named with the reason)
judge() {
  local label=$1 rc=$2 err=$3 refused
  refused=$(grep -c 'connection refused' "$err")
  echo "  $label: exit $rc; 'connection refused' in $refused lines"
  [ "$refused" -gt 0 ] && ok "$label: the run saw the outage" || bad "$label: the run never saw a refused connection"
  if [ "$rc" = 0 ]; then
    ok "$label: the run rode through the outage (exit 0)"
  elif [ "$rc" = 1 ] && grep -q '^replicate: FAILED [^ ]*: .*connection refused' "$err"; then
    ok "$label: the run failed (exit 1) naming $(grep -c '^replicate: FAILED ' "$err") object(s) and the reason, e.g. $(grep -m1 '^replicate: FAILED ' "$err" | cut -c1-160)"
  elif [ "$rc" = 1 ] && grep -q '^replicate: .*listing.*failed.*connection refused' "$err"; then
    ok "$label: the run failed (exit 1): $(grep -m1 '^replicate: .*listing' "$err" | cut -c1-160)"
  else
    bad "$label: exit $rc without a clear message"; grep -v ': info: ' "$err" | tail -n 15
  fi
}

# ---- 1. same endpoint: the whole server goes away
dst=$tag-same
mkbucket a "$dst" --versioned
start_proxy p-same "$RGW_A_ENDPOINT" 0
url=$PROXY_URL
args=("${common[@]}" --state-dir "$T_TMP/state-same" --target-profile a --source-endpoint "$url" --target-endpoint "$url")
"$REPLICATE" "${args[@]}" --jobs 8 -v "s3://$src" "s3://$dst" >"$T_TMP/same1.out" 2>"$T_TMP/same1.err" &
rp=$!
lib_kill_at_exit "$rp"
outage same-endpoint p-same "$RGW_A_ENDPOINT" "$PROXY_PID" "$url" "$T_TMP/state-same"
wait "$rp"
rc=$?
rp=""
judge same-endpoint "$rc" "$T_TMP/same1.err"
recorded_exist "$(ls "$T_TMP"/state-same/*/manifests/*.jsonl | head -n 1)" a "$dst" "same-endpoint, the interrupted run"
"$REPLICATE" "${args[@]}" "s3://$src" "s3://$dst" >"$T_TMP/same2.out" 2>"$T_TMP/same2.err"
rc=$?
[ "$rc" = 0 ] && ok "same-endpoint: the following run completed: $(grep '^done' "$T_TMP/same2.out")" \
  || { bad "same-endpoint: the following run exited $rc"; tail -n 20 "$T_TMP/same2.err"; }
same_content a "$src" a "$dst" same-endpoint

# ---- 2. cross endpoint: the target goes away, too few retries to wait it out
dst=$tag-cross
mkbucket b "$dst" --versioned
start_proxy p-src "$RGW_A_ENDPOINT" 0
su=$PROXY_URL
start_proxy p-dst "$RGW_B_ENDPOINT" 0
du=$PROXY_URL
args=("${common[@]}" --state-dir "$T_TMP/state-cross" --target-profile b --source-endpoint "$su" --target-endpoint "$du")
"$REPLICATE" "${args[@]}" --jobs 8 --retries 3 --settle 600 -v --json "s3://$src" "s3://$dst" >"$T_TMP/cross1.json" 2>"$T_TMP/cross1.err" &
rp=$!
lib_kill_at_exit "$rp"
outage cross-endpoint p-dst "$RGW_B_ENDPOINT" "$PROXY_PID" "$du" "$T_TMP/state-cross"
wait "$rp"
rc=$?
rp=""
judge cross-endpoint "$rc" "$T_TMP/cross1.err"
man=$(ls "$T_TMP"/state-cross/*/manifests/*.jsonl | head -n 1)
recorded_exist "$man" b "$dst" "cross-endpoint, the interrupted run"
if [ "$rc" = 1 ]; then
  [ "$(jget "$T_TMP/cross1.json" 'd["result"]')" = failed ] && ok "cross-endpoint: JSON result failed, $(jget "$T_TMP/cross1.json" 'd["objects_failed"]') failed" \
    || bad "cross-endpoint: JSON result $(jget "$T_TMP/cross1.json" 'd["result"]')"
  grep '^replicate: FAILED ' "$T_TMP/cross1.err" | sed 's/^replicate: FAILED \([^:]*\): .*/"key":"\1"/' | sort -u >"$T_TMP/failed-keys"
  if [ -s "$T_TMP/failed-keys" ] && grep -F -f "$T_TMP/failed-keys" "$man" >/dev/null; then
    bad "cross-endpoint: a failed object is recorded as copied: $(grep -F -f "$T_TMP/failed-keys" "$man" | head -n 1)"
  else
    ok "cross-endpoint: none of the $(wc -l <"$T_TMP/failed-keys") objects named as failed is recorded as copied"
  fi
fi
"$REPLICATE" "${args[@]}" "s3://$src" "s3://$dst" >"$T_TMP/cross2.out" 2>"$T_TMP/cross2.err"
rc=$?
[ "$rc" = 0 ] && ok "cross-endpoint: the following run completed: $(grep '^done' "$T_TMP/cross2.out")" \
  || { bad "cross-endpoint: the following run exited $rc"; tail -n 20 "$T_TMP/cross2.err"; }
same_content a "$src" b "$dst" cross-endpoint

# ---- 3. the target hangs: a signal still ends the run promptly
hsrc=$tag-hang-src dst=$tag-hang
mkbucket a "$hsrc"
s3tool_on a put "$hsrc" m/seventeen $((17 * MiB)) 8 || die "s3tool put"
mkbucket b "$dst" --versioned
start_proxy p-hang "$RGW_B_ENDPOINT" 0 --stall-seconds 600 --rule "stall:PUT /$dst/m/" --rule "stall:DELETE /$dst/" \
  --log "$T_TMP/p-hang.log"
"$REPLICATE" "${common[@]}" --timeout 2 --state-dir "$T_TMP/state-hang" --target-profile b \
  --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$PROXY_URL" "s3://$hsrc" "s3://$dst" \
  >"$T_TMP/hang.out" 2>"$T_TMP/hang.err" &
rp=$!
lib_kill_at_exit "$rp"
for ((i = 0; i < 300; i++)); do # until the upload is created (POST ?uploads): then its parts stall
  kill -USR1 "$PROXY_PID" && sleep 0.1
  [ "$(jget "$T_TMP/p-hang.counts.json" 'd["methods"].get("POST", 0)')" -ge 1 ] 2>/dev/null && break
  kill -0 "$rp" 2>/dev/null || break
done
sleep 1
kill -INT "$rp"
t0=$SECONDS
wait "$rp"
rc=$?
took=$((SECONDS - t0))
kill -USR1 "$PROXY_PID" && sleep 0.2 # the counts so far
aborts=$(jget "$T_TMP/p-hang.counts.json" 'd["methods"].get("DELETE", 0)')
[ "$rc" = 130 ] && ok "hung target: SIGINT gives exit 130" || { bad "hung target: exit $rc"; tail -n 15 "$T_TMP/hang.err"; }
[ "$took" -le 20 ] && ok "hung target: the run ended ${took}s after the signal" \
  || bad "hung target: the run took ${took}s to stop after the signal"
[ "$aborts" = 1 ] && ok "hung target: one AbortMultipartUpload, tried once" \
  || { bad "hung target: $aborts AbortMultipartUpload requests"; grep DELETE "$T_TMP/p-hang.log" | head -n 5; }
stop_proxy "$PROXY_PID"

finish
