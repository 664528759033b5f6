#!/usr/bin/env bash
# Faults (issue 7): every request for one key fails (tests/tools/faultproxy --rule KIND:/KEY) — a 500 for
# every CopyObject of it (same endpoint), a connection reset for every GET of it (cross endpoint). The run
# exits 1, its output names that key and the reason, every other object (multipart ones too) is copied, and
# the key is recorded as copied nowhere: not in the local manifest (--state-dir), not in the manifest uploaded
# to the target's .replicate/manifests/, not in the target itself.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

tag=k$(date +%s)$$
src=$tag-src
mkbucket a "$src"
s3tool_on a fill "$src" a/ 600 0 3000 31 || die "s3tool fill"
s3tool_on a put "$src" m/twelve $((12 * MiB + 3)) 5 || die "s3tool put"
s3tool_on a fill "$src" z/ 400 0 3000 32 || die "s3tool fill"
total=1001
poison=a/000417
echo "source s3://$src on A: $total objects; every request for $poison will fail"

for mode in same cross; do
  dst=$tag-$mode
  if [ $mode = same ]; then
    mkbucket a "$dst" --versioned
    start_proxy "p-$mode" "$RGW_A_ENDPOINT" 0 --rule "internal:/$poison" --log "$T_TMP/p-$mode.log"
    se=$PROXY_URL de=$PROXY_URL dp=a S=a want=InternalError
  else
    mkbucket b "$dst" --versioned
    start_proxy "p-$mode" "$RGW_A_ENDPOINT" 0 --rule "reset-before:/$poison" --log "$T_TMP/p-$mode.log"
    se=$PROXY_URL de=$RGW_B_ENDPOINT dp=b S=b want='connection reset'
  fi
  pp=$PROXY_PID
  echo "--- $mode endpoint"
  "$REPLICATE" --no-progress --part-size 5MiB --copy-threshold 10MiB --retries 4 --state-dir "$T_TMP/state-$mode" \
    --json --source-profile a --target-profile $dp --source-endpoint "$se" --target-endpoint "$de" \
    "s3://$src" "s3://$dst" >"$T_TMP/$mode.json" 2>"$T_TMP/$mode.err"
  rc=$?
  stop_proxy "$pp"
  show_counts "p-$mode"
  tries=$(grep -c " /[^ ]*/${poison}[ ?].*fault=" "$T_TMP/p-$mode.log")
  echo "  requests for $poison that the proxy failed: $tries"
  [ "$rc" = 1 ] && ok "$mode endpoint: exit 1" || { bad "$mode endpoint: exit $rc, expected 1"; tail -20 "$T_TMP/$mode.err"; }
  line=$(grep "FAILED $poison: " "$T_TMP/$mode.err" | tail -n 1)
  if [ -n "$line" ]; then
    ok "the output names the key and the reason: ${line#replicate: }"
    grep -q "$want" <<<"$line" && ok "the reason says '$want'" || bad "the reason does not say '$want'"
  else
    bad "no 'FAILED $poison: reason' line in the output"; tail -20 "$T_TMP/$mode.err"
  fi
  if [ "$(jget "$T_TMP/$mode.json" 'd["result"], d["objects_failed"], d["objects_copied"], len(d["failures"])')" = "('failed', 1, $((total - 1)), 1)" ] &&
    [ "$(jget "$T_TMP/$mode.json" 'd["failures"][0].split(": ")[0]')" = "$poison" ]; then
    ok "JSON summary: result failed, 1 failure ($poison), $((total - 1)) copied"
  else
    bad "JSON summary: $(jget "$T_TMP/$mode.json" 'd["result"], d["objects_failed"], d["objects_copied"], d["failures"]')"
  fi
  man=$(ls "$T_TMP/state-$mode"/*/manifests/*.jsonl 2>/dev/null | head -n 1)
  if [ -z "$man" ]; then
    bad "no local manifest"
  else
    recs=$(grep -c '"t":"object"' "$man")
    [ "$recs" = $((total - 1)) ] && ok "the local manifest records $recs objects" || bad "the local manifest records $recs objects, expected $((total - 1))"
    grep -F "\"$poison\"" "$man" >/dev/null && bad "the local manifest mentions $poison" || ok "the local manifest does not record $poison"
  fi
  mkey=$(aws_on "$S" s3api list-objects-v2 --bucket "$dst" --prefix .replicate/manifests/ --query 'Contents[].Key' --output text)
  if [ -z "$mkey" ] || [ "$mkey" = None ]; then
    bad "no manifest uploaded to the target"
  else
    # stored gzip-compressed, its object records sorted by key (manifest/chain.c): the same records as the local one
    aws_on "$S" s3 cp --quiet "s3://$dst/$mkey" "$T_TMP/uploaded.stored"
    case $mkey in
      *.gz) gzip -dc "$T_TMP/uploaded.stored" >"$T_TMP/uploaded.jsonl" || bad "the uploaded manifest is not gzip" ;;
      *) cp "$T_TMP/uploaded.stored" "$T_TMP/uploaded.jsonl" ;;
    esac
    if cmp -s <(grep '"t":"object"' "$T_TMP/uploaded.jsonl" | sort) <(grep '"t":"object"' "$man" | sort); then
      ok "the uploaded manifest ($mkey) records the local one's objects"
    else bad "the uploaded manifest's object records differ from the local one's"; fi
    grep -F "\"$poison\"" "$T_TMP/uploaded.jsonl" >/dev/null && bad "the uploaded manifest mentions $poison" \
      || ok "the uploaded manifest does not record $poison"
    grep -q '"t":"trailer".*"result":"failed"' "$T_TMP/uploaded.jsonl" && ok "the uploaded manifest's trailer says failed" \
      || bad "the uploaded manifest's trailer does not say failed"
  fi
  if aws_on "$S" s3api head-object --bucket "$dst" --key "$poison" >/dev/null 2>&1; then
    bad "$poison exists in the target"
  else
    ok "$poison is absent from the target"
  fi
  snapshot a "$src" "$T_TMP/ks.json" >/dev/null && snapshot "$S" "$dst" "$T_TMP/kd.json" >/dev/null \
    || bad "an awscli snapshot failed"
  d=$(compare_snapshots "$T_TMP/ks.json" "$T_TMP/kd.json" content | grep -v '^    compared \|^    x-amz-meta-')
  if [ "$d" = "    1 source keys missing in the target: ['$poison']" ]; then
    ok "every other object is in the target with the same content ($(jget "$T_TMP/kd.json" 'len([k for k in d["objects"] if not k.startswith(".replicate/")])') objects, awscli)"
  else
    bad "the target differs from the source by more than $poison:"; head <<<"$d"
  fi
done

finish
