#!/usr/bin/env bash
# Faults (issue 7): replicate 2,104 objects (four of 9-21 MiB, multipart) through tests/tools/faultproxy in
# front of RGW with about 10% of requests faulted, all kinds mixed (503 SlowDown with Retry-After, 500, resets
# before the reply / while sending / while receiving, stalls longer than --timeout, bodies cut short, 200 with
# an <Error> body for CopyObject, UploadPartCopy and CompleteMultipartUpload):
#   same-endpoint (CopyObject and UploadPartCopy, both sides through one proxy in front of A) and
#   cross-endpoint (streamed GET -> PUT and multipart; a proxy in front of A and another in front of B):
# exit 0, the target equals the source (awscli against RGW directly: keys, sizes, content), and every object
# the manifest records is in the target as the recorded version. Then a delta run whose listing replies are
# truncated, garbled or oversized XML a quarter of the time: exit 0.
# FAULT_SEED=N picks another fault sequence.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

tag=f$(date +%s)$$
src=$tag-src
mkbucket a "$src"
s3tool_on a fill "$src" a/ 1100 100 4000 21 || die "s3tool fill"
# above --multipart-threshold 8MiB: multipart when streamed; above --copy-threshold 10MiB: UploadPartCopy
s3tool_on a put "$src" m/nine $((9 * MiB)) 1 || die "s3tool put"
s3tool_on a put "$src" m/twelve $((12 * MiB + 17)) 2 || die "s3tool put"
s3tool_on a put "$src" m/sixteen $((16 * MiB)) 3 || die "s3tool put"
s3tool_on a put "$src" m/twenty-one $((21 * MiB + 5)) 4 || die "s3tool put"
s3tool_on a fill "$src" z/ 1000 0 3000 22 || die "s3tool fill"
echo "source s3://$src on A: 2104 objects, 4 of them 9-21 MiB (${SECONDS}s)"

common=(--no-progress --timeout 5 --part-size 5MiB --multipart-threshold 8MiB --copy-threshold 10MiB --settle 60
  --jobs 32)
seed=${FAULT_SEED:-7}
stall=8 # > --timeout 5: the client must give up on the stalled request and retry

run_mixed() { # LABEL DST-BUCKET[/PREFIX] SRC-ENDPOINT DST-ENDPOINT DST-PROFILE [SRC-BUCKET[/PREFIX]]
  local label=$1 dst=$2 se=$3 de=$4 dp=$5 from=${6:-$src} rc t0=$SECONDS
  "$REPLICATE" "${common[@]}" --state-dir "$T_TMP/state-$label" --json -v \
    --source-profile a --target-profile "$dp" --source-endpoint "$se" --target-endpoint "$de" \
    "s3://$from" "s3://$dst" >"$T_TMP/$label.json" 2>"$T_TMP/$label.err"
  rc=$?
  if [ "$rc" = 0 ]; then
    ok "$label run through the faults: exit 0 in $((SECONDS - t0))s"
  else
    bad "$label run through the faults: exit $rc after $((SECONDS - t0))s"
    grep -v ': info: ' "$T_TMP/$label.err" | tail -n 25
  fi
  echo "  run: result $(jget "$T_TMP/$label.json" 'd["result"]'), $(jget "$T_TMP/$label.json" 'd["copy_mode"]') copy," \
    "$(jget "$T_TMP/$label.json" 'd["passes"]') pass(es), copied $(jget "$T_TMP/$label.json" 'd["objects_copied"]')," \
    "failed $(jget "$T_TMP/$label.json" 'd["objects_failed"]'); $(grep -c 'retrying in' "$T_TMP/$label.err") retries logged"
}

# ---- same endpoint: CopyObject, UploadPartCopy
dst1=$tag-same
mkbucket a "$dst1" --versioned
start_proxy p-same "$RGW_A_ENDPOINT" 0 --rate 0.10 --seed "$seed" --stall-seconds $stall --log "$T_TMP/p-same.log"
px=$PROXY_PID
run_mixed same-endpoint "$dst1" "$PROXY_URL" "$PROXY_URL" a
stop_proxy "$px"
show_counts p-same
[ "$(jget "$T_TMP/same-endpoint.json" 'd["copy_mode"]')" = server-side ] && ok "same-endpoint run copied server-side" \
  || bad "same-endpoint run did not copy server-side"
n=$(grep -c "^PUT /$dst1/m/[a-z-]*?partNumber=.* -> 200" "$T_TMP/p-same.log")
[ "$n" -ge 11 ] && ok "UploadPartCopy used for the objects over --copy-threshold ($n parts)" || bad "only $n UploadPartCopy parts"
same_content a "$src" a "$dst1" same-endpoint
recorded_exist "$(ls "$T_TMP"/state-same-endpoint/*/manifests/*.jsonl | head -n 1)" a "$dst1" same-endpoint

# ---- cross endpoint: streamed GET -> PUT, ranged GET -> UploadPart
dst2=$tag-cross
mkbucket b "$dst2" --versioned
start_proxy p-cross-a "$RGW_A_ENDPOINT" 0 --rate 0.10 --seed "$seed" --stall-seconds $stall
pa=$PROXY_PID pa_url=$PROXY_URL
start_proxy p-cross-b "$RGW_B_ENDPOINT" 0 --rate 0.10 --seed "$((seed + 1))" --stall-seconds $stall \
  --log "$T_TMP/p-cross-b.log"
pb=$PROXY_PID pb_url=$PROXY_URL
run_mixed cross-endpoint "$dst2" "$pa_url" "$pb_url" b
stop_proxy "$pa"
stop_proxy "$pb"
show_counts p-cross-a
show_counts p-cross-b
[ "$(jget "$T_TMP/cross-endpoint.json" 'd["copy_mode"]')" = streamed ] && ok "cross-endpoint run streamed" \
  || bad "cross-endpoint run did not stream"
n=$(grep -c "^PUT /$dst2/m/[a-z-]*?partNumber=.* -> 200" "$T_TMP/p-cross-b.log")
[ "$n" -ge 13 ] && ok "multipart UploadPart used for the objects over --multipart-threshold ($n parts)" || bad "only $n UploadPart parts"
same_content a "$src" b "$dst2" cross-endpoint
recorded_exist "$(ls "$T_TMP"/state-cross-endpoint/*/manifests/*.jsonl | head -n 1)" b "$dst2" cross-endpoint

kinds=$(s3check fault-kinds "$T_TMP"/p-same.counts.json "$T_TMP"/p-cross-?.counts.json)
want="internal reset-before reset-request reset-response short-body slowdown stall"
[ "$kinds" = "$want" ] && ok "these fault kinds occurred: $kinds (error-200 and bad-xml: below)" || bad "fault kinds seen: $kinds; want $want"

# ---- 200 OK with an <Error> body for CopyObject, UploadPartCopy and CompleteMultipartUpload (whether the
# server did the work or not, the client must not take it as done): 30% of those requests, on the large
# objects (smaller ones are copied with GET+PUT on RGW), same endpoint
dst3=$tag-e200
mkbucket a "$dst3" --versioned
start_proxy p-e200 "$RGW_A_ENDPOINT" 0 --faults error-200 --rate 0.3 --seed "$seed" --log "$T_TMP/p-e200.log"
px=$PROXY_PID
run_mixed error-200 "$dst3/m" "$PROXY_URL" "$PROXY_URL" a "$src/m"
stop_proxy "$px"
show_counts p-e200
n=$(jget "$T_TMP/p-e200.counts.json" 'd["faults"]["error-200"]')
echo "  error-200 replies: $(grep -c 'PUT .*partNumber=.*fault=error-200' "$T_TMP/p-e200.log") UploadPartCopy," \
  "$(grep -c '^POST .*uploadId=.*fault=error-200' "$T_TMP/p-e200.log") CompleteMultipartUpload," \
  "$(grep 'fault=error-200' "$T_TMP/p-e200.log" | grep -vc 'partNumber=\|uploadId=') CopyObject"
[ "${n:-0}" -gt 0 ] && ok "$n replies were 200 OK with an <Error> body" || bad "no error-200 fault was served"
same_content a "$src/m" a "$dst3/m" error-200

# ---- listing replies: truncated, garbled and oversized (17 MiB) XML on a quarter of the listing requests. A
# delta run lists in a few pages only, so runs repeat (other seeds) until some bad replies were served.
nbad=0 again=0 runs=0
for ((i = 0; i < 8 && nbad < 3; i++)); do
  start_proxy p-list-a "$RGW_A_ENDPOINT" 0 --faults bad-xml --rate 0.25 --seed "$((seed + 10 * i))"
  pa=$PROXY_PID pa_url=$PROXY_URL
  start_proxy p-list-b "$RGW_B_ENDPOINT" 0 --faults bad-xml --rate 0.25 --seed "$((seed + 10 * i + 1))"
  pb=$PROXY_PID pb_url=$PROXY_URL
  "$REPLICATE" "${common[@]}" --state-dir "$T_TMP/state-cross-endpoint" --json -v \
    --source-profile a --target-profile b --source-endpoint "$pa_url" --target-endpoint "$pb_url" \
    "s3://$src" "s3://$dst2" >"$T_TMP/listing.json" 2>"$T_TMP/listing.err"
  rc=$?
  stop_proxy "$pa"
  stop_proxy "$pb"
  runs=$((runs + 1))
  n=$(($(jget "$T_TMP/p-list-a.counts.json" 'd["faults"]["bad-xml"]') + $(jget "$T_TMP/p-list-b.counts.json" 'd["faults"]["bad-xml"]')))
  a=$(grep -c 'not a valid page.*asking again' "$T_TMP/listing.err")
  nbad=$((nbad + n)) again=$((again + a))
  if [ "$rc" != 0 ] || [ "$(jget "$T_TMP/listing.json" 'd["objects_copied"]')" != 0 ]; then
    bad "a delta run over bad listing replies exited $rc"
    show_counts p-list-a
    show_counts p-list-b
    grep -v ': info: progress' "$T_TMP/listing.err" | tail -n 15
    break
  fi
done
[ "$rc" = 0 ] && ok "$runs delta runs over bad listing replies ($nbad served, $again asked for again) completed, copying nothing"
[ "$nbad" -gt 0 ] && [ "$again" = "$nbad" ] && ok "every bad listing reply was asked for again" \
  || bad "$nbad bad listing replies served, $again asked for again"

finish
