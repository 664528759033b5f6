#!/usr/bin/env bash
# Resume after a crash (issue 5): a run killed with SIGKILL in the middle of its first pass over 2,000+
# objects; the next run completes, sends no more copies than the objects the killed run had not finished
# (from its partial manifest), aborts the multipart uploads left behind, and the target then equals the
# source (checked with awscli).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b
tag=r$(date +%s)$$
src=$tag-src dst=$tag-dst
mkbucket a "$src"
mkbucket b "$dst" --versioned
# small objects before and after the large ones, so that the kill lands while a multipart upload is open
s3tool_on a fill "$src" a-small/ 1200 200 3000 11 || die "s3tool fill"
for i in 1 2 3 4; do s3tool_on a put "$src" "m-large/obj-$i" $((21 * MiB)) "$i" || die "s3tool put"; done
s3tool_on a fill "$src" z-small/ 1200 200 3000 12 || die "s3tool fill"
total=2404
args=(--no-progress --state-dir "$STATE" --source-profile a --target-profile b
  --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$RGW_B_ENDPOINT" --part-size 5MiB --jobs 8)

# ---- a run killed mid-pass
"$REPLICATE" "${args[@]}" "s3://$src" "s3://$dst" >"$T_TMP/run1.out" 2>&1 &
rp=$!
lib_kill_at_exit "$rp"
# wait until it has copied a good part of the bucket and opened a multipart upload (RGW B's request log)
for ((i = 0; i < 2400; i++)); do
  if [ -n "${RGW_B_LOG:-}" ] && grep -q "POST /$dst/m-large/.*uploads" "$RGW_B_LOG" 2>/dev/null; then sleep 0.3; break; fi
  if [ -z "${RGW_B_LOG:-}" ]; then
    n=$(cat "$STATE"/*/manifests/*.jsonl 2>/dev/null | grep -c '"t":"object"')
    [ "${n:-0}" -ge 1200 ] && break
  fi
  sleep 0.05
done
kill -KILL "$rp"
wait "$rp" 2>/dev/null
rp=""
manifest=$(ls "$STATE"/*/manifests/*.jsonl | head -n 1)
[ -n "$manifest" ] || { say "no manifest; the killed run printed:"; cat "$T_TMP/run1.out"; }
finished=$(grep -c '"t":"object"' "$manifest")
echo "the killed run recorded $finished of $total objects as copied"
[ "$finished" -gt 0 ] && [ "$finished" -lt "$total" ] && ok "killed in the middle of the first pass" \
  || bad "not killed mid-pass ($finished of $total)"
grep -q '"t":"trailer"' "$manifest" && bad "the killed run's manifest has a trailer" || ok "its manifest has no trailer"
uploads=$(aws_on b s3api list-multipart-uploads --bucket "$dst" \
  --query 'length(Uploads || `[]`)' --output text)
echo "multipart uploads left open by the killed run: $uploads"

# ---- the next run
"$REPLICATE" "${args[@]}" --settle 60 -vv --json "s3://$src" "s3://$dst" >"$T_TMP/run2.json" 2>"$T_TMP/run2.err"
rc=$?
[ "$rc" = 0 ] && ok "the next run completed" || { bad "the next run exited $rc"; tail -20 "$T_TMP/run2.err"; }
copied=$(jget "$T_TMP/run2.json" 'd["objects_copied"]')
limit=$((total - finished))
[ "$copied" -le "$limit" ] && ok "it copied $copied objects, at most the $limit the killed run had not finished" \
  || bad "it copied $copied objects, more than the $limit the killed run had not finished"
puts=$(grep -c 'debug: PUT s3://'"$dst"'/[az]-small/' "$T_TMP/run2.err")
[ "$puts" -le "$limit" ] && ok "copy requests for small objects sent: $puts (<= $limit)" || bad "$puts PUTs > $limit"
if [ "$uploads" -gt 0 ]; then
  ok "the killed run left $uploads multipart upload(s) open"
  grep -q 'aborted an unfinished multipart upload' "$T_TMP/run2.err" && ok "it aborted the uploads left behind" \
    || bad "no abort of the uploads left behind"
fi
left=$(aws_on b s3api list-multipart-uploads --bucket "$dst" \
  --query 'length(Uploads || `[]`)' --output text)
[ "$left" = 0 ] && ok "no multipart upload is left open" || bad "$left multipart uploads still open"

# ---- the target equals the source (keys, sizes, content)
same_content a "$src" b "$dst" "after the resumed run"

# ---- a corrupt and a truncated manifest in the state folder never stop a new run from a correct backup
for m in "$STATE"/*/manifests/*.jsonl; do
  head -c 300 "$m" >"$m.cut" && mv "$m.cut" "$m" # truncated mid-line
  break
done
printf '{"t":"object","key":\n\x00garbage\n' >"$STATE/$(ls "$STATE" | head -n 1)/manifests/99999999T000000Z-zzzz.jsonl"
s3tool_on a fill "$src" after/ 20 100 200 13 || die "s3tool fill"
"$REPLICATE" "${args[@]}" --settle 60 --json "s3://$src" "s3://$dst" >"$T_TMP/run3.json" 2>"$T_TMP/run3.err"
rc=$?
[ "$rc" = 0 ] && ok "a run with a corrupt and a truncated manifest in its state folder completed" \
  || { bad "exit $rc with corrupt manifests"; tail "$T_TMP/run3.err"; }
grep -qiE 'corrupt|unreadable' "$T_TMP/run3.err" && ok "and reported them: $(grep -m1 -iE 'corrupt|unreadable' "$T_TMP/run3.err")" \
  || bad "the corrupt manifests were not reported"
copied=$(jget "$T_TMP/run3.json" 'd["objects_copied"]')
[ "$copied" = 20 ] && ok "it copied exactly the 20 new objects" || bad "it copied $copied objects (expected 20)"

finish
