#!/usr/bin/env bash
# Faults (issue 7): every request for one key fails (tests/tools/faultproxy --rule KIND:/KEY) — a 500 for
# every CopyObject of it (same endpoint), a connection reset for every GET of it (cross endpoint). The run
# exits 1, its output names that key and the reason, every other object (multipart ones too) is copied, and
# the key is recorded as copied nowhere: not in the local manifest (--state-dir), not in the manifest uploaded
# to the target's .replicate/manifests/, not in the target itself.
# shellcheck source=tests/integration/faultlib.sh
. "$(dirname "$0")/faultlib.sh"

tag=k$(date +%s)$$
src=$tag-src
A "$TOOLS/s3tool" mkbucket "$src" || exit 1
A "$TOOLS/s3tool" fill "$src" a/ 600 0 3000 31 || exit 1
A "$TOOLS/s3tool" put "$src" m/twelve $((12 * MiB + 3)) 5 || exit 1
A "$TOOLS/s3tool" fill "$src" z/ 400 0 3000 32 || exit 1
total=1001
poison=a/000417
echo "source s3://$src on A: $total objects; every request for $poison will fail"

for mode in same cross; do
  dst=$tag-$mode
  if [ $mode = same ]; then
    A "$TOOLS/s3tool" mkbucket "$dst" --versioned || exit 1
    start_proxy "p-$mode" "$RGW_A_ENDPOINT" 0 --rule "internal:/$poison" --log "$work/p-$mode.log"
    se=$PROXY_URL de=$PROXY_URL dp=a S=awsA want=InternalError
  else
    B "$TOOLS/s3tool" mkbucket "$dst" --versioned || exit 1
    start_proxy "p-$mode" "$RGW_A_ENDPOINT" 0 --rule "reset-before:/$poison" --log "$work/p-$mode.log"
    se=$PROXY_URL de=$RGW_B_ENDPOINT dp=b S=awsB want='connection reset'
  fi
  pp=$PROXY_PID
  echo "--- $mode endpoint"
  "$REPLICATE" --no-progress --part-size 5MiB --copy-threshold 10MiB --retries 4 --state-dir "$work/state-$mode" \
    --json --source-profile a --target-profile $dp --source-endpoint "$se" --target-endpoint "$de" \
    "s3://$src" "s3://$dst" >"$work/$mode.json" 2>"$work/$mode.err"
  rc=$?
  stop_proxy "$pp"
  show_counts "p-$mode"
  tries=$(grep -c " /[^ ]*/${poison}[ ?].*fault=" "$work/p-$mode.log")
  echo "  requests for $poison that the proxy failed: $tries"
  [ "$rc" = 1 ] && ok "$mode endpoint: exit 1" || { bad "$mode endpoint: exit $rc, expected 1"; tail -20 "$work/$mode.err"; }
  line=$(grep "FAILED $poison: " "$work/$mode.err" | tail -n 1)
  if [ -n "$line" ]; then
    ok "the output names the key and the reason: ${line#replicate: }"
    grep -q "$want" <<<"$line" && ok "the reason says '$want'" || bad "the reason does not say '$want'"
  else
    bad "no 'FAILED $poison: reason' line in the output"; tail -20 "$work/$mode.err"
  fi
  if [ "$(jget "$work/$mode.json" 'd["result"], d["objects_failed"], d["objects_copied"], len(d["failures"])')" = "('failed', 1, $((total - 1)), 1)" ] &&
    [ "$(jget "$work/$mode.json" 'd["failures"][0].split(": ")[0]')" = "$poison" ]; then
    ok "JSON summary: result failed, 1 failure ($poison), $((total - 1)) copied"
  else
    bad "JSON summary: $(jget "$work/$mode.json" 'd["result"], d["objects_failed"], d["objects_copied"], d["failures"]')"
  fi
  man=$(ls "$work/state-$mode"/*/manifests/*.jsonl 2>/dev/null | head -n 1)
  if [ -z "$man" ]; then
    bad "no local manifest"
  else
    recs=$(grep -c '"t":"object"' "$man")
    [ "$recs" = $((total - 1)) ] && ok "the local manifest records $recs objects" || bad "the local manifest records $recs objects, expected $((total - 1))"
    grep -F "\"$poison\"" "$man" >/dev/null && bad "the local manifest mentions $poison" || ok "the local manifest does not record $poison"
  fi
  mkey=$($S s3api list-objects-v2 --bucket "$dst" --prefix .replicate/manifests/ --query 'Contents[].Key' --output text)
  if [ -z "$mkey" ] || [ "$mkey" = None ]; then
    bad "no manifest uploaded to the target"
  else
    $S s3 cp --quiet "s3://$dst/$mkey" "$work/uploaded.jsonl"
    cmp -s "$work/uploaded.jsonl" "$man" && ok "the uploaded manifest ($mkey) is the local one" || bad "the uploaded manifest differs from the local one"
    grep -F "\"$poison\"" "$work/uploaded.jsonl" >/dev/null && bad "the uploaded manifest mentions $poison" \
      || ok "the uploaded manifest does not record $poison"
    grep -q '"t":"trailer".*"result":"failed"' "$work/uploaded.jsonl" && ok "the uploaded manifest's trailer says failed" \
      || bad "the uploaded manifest's trailer does not say failed"
  fi
  if $S s3api head-object --bucket "$dst" --key "$poison" >/dev/null 2>&1; then
    bad "$poison exists in the target"
  else
    ok "$poison is absent from the target"
  fi
  rm -rf "$work/s" "$work/d"
  awsA s3 sync --quiet "s3://$src" "$work/s" && $S s3 sync --quiet --exclude '.replicate/*' "s3://$dst" "$work/d" \
    || bad "aws s3 sync failed"
  d=$(diff -r "$work/s" "$work/d")
  if [ "$d" = "Only in $work/s/a: 000417" ]; then
    ok "every other object is in the target with the same content ($(find "$work/d" -type f | wc -l) objects, awscli)"
  else
    bad "the target differs from the source by more than $poison:"; head <<<"$d"
  fi
done

finish faults_key
