#!/usr/bin/env bash
# Self-test of tests/tools/faultproxy against RGW: rule-forced faults come back as they should, and a plain
# request passes through with its status and body unchanged (the proxy must not break SigV4).
# Exit 0 pass, 77 skip (something missing), anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init faultproxy curl

bucket="fp-self-$$-$RANDOM"
# shellcheck disable=SC2016 # (expanded when the hook runs)
lib_on_exit 'aws_on a s3 rb --force "s3://$bucket" >/dev/null 2>&1'

start_proxy proxy "$RGW_A_ENDPOINT" 0 --log "$T_TMP/proxy.log" \
  --rule "internal:/$bucket/force-internal" --rule "slowdown:/$bucket/force-slowdown" \
  --rule "reset-before:/$bucket/force-reset"
proxy_pid=$PROXY_PID
proxy=$PROXY_URL
require "faultproxy says 'listening on 127.0.0.1:PORT' ($proxy)" \
  grep -Eq '^listening on 127\.0\.0\.1:[0-9]+$' "$T_TMP/proxy.out"

# A bucket and an object, written through the proxy: forwarded requests must keep valid signatures.
head -c 300000 /dev/urandom >"$T_TMP/obj"
require "create a bucket through the proxy" aws_at a "$proxy" s3 mb "s3://$bucket"
require "upload through the proxy" aws_at a "$proxy" s3 cp --only-show-errors "$T_TMP/obj" "s3://$bucket/plain"

# Forced faults are answered by the proxy itself, so unsigned requests are enough.
code="$(curl -s -o "$T_TMP/body" -w '%{http_code}' "$proxy/$bucket/force-internal")"
check "internal: 500 (got $code)" test "$code" = 500
check "internal: an InternalError body" grep -q '<Code>InternalError</Code>' "$T_TMP/body"

code="$(curl -s -D "$T_TMP/head" -o "$T_TMP/body" -w '%{http_code}' "$proxy/$bucket/force-slowdown")"
check "slowdown: 503 (got $code)" test "$code" = 503
check "slowdown: a Retry-After header" grep -qi '^Retry-After: 1' "$T_TMP/head"
check "slowdown: a SlowDown body" grep -q '<Code>SlowDown</Code>' "$T_TMP/body"

curl -s -o /dev/null "$proxy/$bucket/force-reset"
rc=$?
case $rc in
  52 | 56) ok "reset-before: curl exit $rc (52 or 56)" ;;
  *) bad "reset-before: expected curl exit 52 or 56, got $rc" ;;
esac

# A plain request: same status and body as asking RGW directly.
check "download through the proxy" \
  aws_at a "$proxy" s3 cp --only-show-errors "s3://$bucket/plain" "$T_TMP/via-proxy"
check "the body is unchanged on the way through the proxy" cmp -s "$T_TMP/obj" "$T_TMP/via-proxy"
if curl --help all 2>/dev/null | grep -- --aws-sigv4 >/dev/null; then
  # RGW wants x-amz-content-sha256 signed; curl signs it when it is present.
  sig=(--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$RGW_A_ACCESS_KEY:$RGW_A_SECRET_KEY"
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
  direct="$(curl -s "${sig[@]}" -o "$T_TMP/direct" -w '%{http_code}' "$RGW_A_ENDPOINT/$bucket/plain")"
  proxied="$(curl -s "${sig[@]}" -o "$T_TMP/proxied" -w '%{http_code}' "$proxy/$bucket/plain")"
  check "plain GET: 200 directly and through the proxy (direct $direct, through the proxy $proxied)" \
    test "$direct/$proxied" = 200/200
  check "plain GET: the same body directly and through the proxy" cmp -s "$T_TMP/direct" "$T_TMP/proxied"
  direct="$(curl -s "${sig[@]}" -o /dev/null -w '%{http_code}' "$RGW_A_ENDPOINT/$bucket/missing")"
  proxied="$(curl -s "${sig[@]}" -o /dev/null -w '%{http_code}' "$proxy/$bucket/missing")"
  check "missing key: the same status directly and through the proxy (direct $direct, through the proxy $proxied)" \
    test "$direct" = "$proxied"
else
  say "note: this curl has no --aws-sigv4: the signed comparisons with RGW directly are left out"
fi

check "the log has the internal fault" grep -q "GET /$bucket/force-internal -> 500 \[fault=internal\]" "$T_TMP/proxy.log"
check "the log has the plain GET" grep -q "GET /$bucket/plain -> 200 \[in-flight=[0-9]*\]$" "$T_TMP/proxy.log"

# Counts on SIGUSR1, clean exit on SIGTERM.
kill -USR1 "$proxy_pid"
for _ in $(seq 50); do [ -s "$T_TMP/proxy.counts.json" ] && break; sleep 0.1; done
check "SIGUSR1 writes the counts: one slowdown ($(cat "$T_TMP/proxy.counts.json" 2>/dev/null))" \
  grep -q '"slowdown": 1' "$T_TMP/proxy.counts.json"
kill -TERM "$proxy_pid"
wait "$proxy_pid"
rc=$?
check "faultproxy exits 0 on SIGTERM (exit $rc)" test "$rc" = 0
[ "$T_FAILS" -eq 0 ] || [ ! -s "$T_TMP/proxy.err" ] || sed 's/^/  proxy: /' "$T_TMP/proxy.err"
finish
