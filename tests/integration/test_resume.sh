#!/usr/bin/env bash
# Resume after a crash (issue 5): a run killed with SIGKILL in the middle of its first pass over 2,000+
# objects; the next run completes, sends no more copies than the objects the killed run had not finished
# (from its partial manifest), aborts the multipart uploads left behind, and the target then equals the
# source (checked with awscli).
set -uo pipefail
[ -n "${RGW_A_ENDPOINT:-}" ] && [ -n "${RGW_B_ENDPOINT:-}" ] && [ -n "${REPLICATE:-}" ] || { echo "skip: no RGW env"; exit 77; }
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL
work=$(mktemp -d)
trap 'kill $rp 2>/dev/null; rm -rf "$work"' EXIT
rp=""
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
cat >"$work/credentials" <<EOC
[a]
aws_access_key_id = $RGW_A_ACCESS_KEY
aws_secret_access_key = $RGW_A_SECRET_KEY
[b]
aws_access_key_id = $RGW_B_ACCESS_KEY
aws_secret_access_key = $RGW_B_SECRET_KEY
EOC
export AWS_SHARED_CREDENTIALS_FILE=$work/credentials AWS_REGION=us-east-1
A() { AWS_PROFILE=a AWS_ENDPOINT_URL=$RGW_A_ENDPOINT "$@"; }
B() { AWS_PROFILE=b AWS_ENDPOINT_URL=$RGW_B_ENDPOINT "$@"; }
tag=r$(date +%s)$$
src=$tag-src dst=$tag-dst
A "$TOOLS/s3tool" mkbucket "$src" && B "$TOOLS/s3tool" mkbucket "$dst" --versioned || exit 1
# small objects before and after the large ones, so that the kill lands while a multipart upload is open
A "$TOOLS/s3tool" fill "$src" a-small/ 1200 200 3000 11 || exit 1
for i in 1 2 3 4; do A "$TOOLS/s3tool" put "$src" "m-large/obj-$i" $((21 * 1024 * 1024)) "$i" || exit 1; done
A "$TOOLS/s3tool" fill "$src" z-small/ 1200 200 3000 12 || exit 1
total=2404
args=(--no-progress --state-dir "$work/state" --source-profile a --target-profile b
  --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$RGW_B_ENDPOINT" --part-size 5MiB --jobs 8)

# ---- a run killed mid-pass
"$REPLICATE" "${args[@]}" "s3://$src" "s3://$dst" >"$work/run1.out" 2>&1 &
rp=$!
# wait until it has copied a good part of the bucket and opened a multipart upload (RGW B's request log)
for ((i = 0; i < 2400; i++)); do
  if [ -n "${RGW_B_LOG:-}" ] && grep -q "POST /$dst/m-large/.*uploads" "$RGW_B_LOG" 2>/dev/null; then sleep 0.3; break; fi
  if [ -z "${RGW_B_LOG:-}" ]; then
    n=$(cat "$work"/state/*/manifests/*.jsonl 2>/dev/null | grep -c '"t":"object"')
    [ "${n:-0}" -ge 1200 ] && break
  fi
  sleep 0.05
done
kill -KILL "$rp"
wait "$rp" 2>/dev/null
rp=""
manifest=$(ls "$work"/state/*/manifests/*.jsonl | head -n 1)
[ -n "$manifest" ] || { echo "no manifest; the killed run printed:"; cat "$work/run1.out"; }
finished=$(grep -c '"t":"object"' "$manifest")
echo "the killed run recorded $finished of $total objects as copied"
[ "$finished" -gt 0 ] && [ "$finished" -lt "$total" ] && ok "killed in the middle of the first pass" \
  || bad "not killed mid-pass ($finished of $total)"
grep -q '"t":"trailer"' "$manifest" && bad "the killed run's manifest has a trailer" || ok "its manifest has no trailer"
uploads=$(B /usr/bin/aws --endpoint-url "$RGW_B_ENDPOINT" s3api list-multipart-uploads --bucket "$dst" \
  --query 'length(Uploads || `[]`)' --output text)
echo "multipart uploads left open by the killed run: $uploads"

# ---- the next run
"$REPLICATE" "${args[@]}" --settle 60 -vv --json "s3://$src" "s3://$dst" >"$work/run2.json" 2>"$work/run2.err"
rc=$?
[ "$rc" = 0 ] && ok "the next run completed" || { bad "the next run exited $rc"; tail -20 "$work/run2.err"; }
copied=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["objects_copied"])' "$work/run2.json")
limit=$((total - finished))
[ "$copied" -le "$limit" ] && ok "it copied $copied objects, at most the $limit the killed run had not finished" \
  || bad "it copied $copied objects, more than the $limit the killed run had not finished"
puts=$(grep -c 'debug: PUT s3://'"$dst"'/[az]-small/' "$work/run2.err")
[ "$puts" -le "$limit" ] && ok "copy requests for small objects sent: $puts (<= $limit)" || bad "$puts PUTs > $limit"
if [ "$uploads" -gt 0 ]; then
  ok "the killed run left $uploads multipart upload(s) open"
  grep -q 'aborted an unfinished multipart upload' "$work/run2.err" && ok "it aborted the uploads left behind" \
    || bad "no abort of the uploads left behind"
fi
left=$(B /usr/bin/aws --endpoint-url "$RGW_B_ENDPOINT" s3api list-multipart-uploads --bucket "$dst" \
  --query 'length(Uploads || `[]`)' --output text)
[ "$left" = 0 ] && ok "no multipart upload is left open" || bad "$left multipart uploads still open"

# ---- the target equals the source (keys, sizes, content)
A /usr/bin/aws --endpoint-url "$RGW_A_ENDPOINT" s3 sync --quiet "s3://$src" "$work/src" || exit 1
B /usr/bin/aws --endpoint-url "$RGW_B_ENDPOINT" s3 sync --quiet --exclude '.replicate/*' "s3://$dst" "$work/dst" || exit 1
if diff -r "$work/src" "$work/dst" >/dev/null; then
  ok "target equals source: $(find "$work/dst" -type f | wc -l) files, identical content"
else
  bad "target differs from source"; diff -rq "$work/src" "$work/dst" | head
fi
# ---- a corrupt and a truncated manifest in the state folder never stop a new run from a correct backup
for m in "$work"/state/*/manifests/*.jsonl; do
  head -c 300 "$m" >"$m.cut" && mv "$m.cut" "$m" # truncated mid-line
  break
done
printf '{"t":"object","key":\n\x00garbage\n' >"$work/state/$(ls "$work/state" | head -n 1)/manifests/99999999T000000Z-zzzz.jsonl"
A "$TOOLS/s3tool" fill "$src" after/ 20 100 200 13 || exit 1
"$REPLICATE" "${args[@]}" --settle 60 --json "s3://$src" "s3://$dst" >"$work/run3.json" 2>"$work/run3.err"
rc=$?
[ "$rc" = 0 ] && ok "a run with a corrupt and a truncated manifest in its state folder completed" \
  || { bad "exit $rc with corrupt manifests"; tail "$work/run3.err"; }
grep -qiE 'corrupt|unreadable' "$work/run3.err" && ok "and reported them: $(grep -m1 -iE 'corrupt|unreadable' "$work/run3.err")" \
  || bad "the corrupt manifests were not reported"
copied=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["objects_copied"])' "$work/run3.json")
[ "$copied" = 20 ] && ok "it copied exactly the 20 new objects" || bad "it copied $copied objects (expected 20)"

echo "resume: $fails failure(s)"
[ "$fails" = 0 ]
