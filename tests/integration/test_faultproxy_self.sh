#!/usr/bin/env bash
# Self-test of tests/tools/faultproxy against RGW: rule-forced faults come back as they should, and a plain
# request passes through with its status and body unchanged (the proxy must not break SigV4).
# Env: RGW_A_ENDPOINT, RGW_A_ACCESS_KEY, RGW_A_SECRET_KEY, TOOLS (directory holding faultproxy).
# Exit 0 pass, 77 skip (something missing), anything else fail.
set -u

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -s "$work/proxy.err" ] && sed 's/^/  proxy: /' "$work/proxy.err"; exit 1; }

[ -n "${RGW_A_ENDPOINT:-}" ] && [ -n "${RGW_A_ACCESS_KEY:-}" ] && [ -n "${RGW_A_SECRET_KEY:-}" ] ||
    skip "RGW_A_ENDPOINT / RGW_A_ACCESS_KEY / RGW_A_SECRET_KEY not set"
proxy_bin="${TOOLS:-build/tools}/faultproxy"
[ -x "$proxy_bin" ] || skip "$proxy_bin not built"
command -v curl >/dev/null || skip "curl not installed"
[ -x /usr/bin/aws ] || skip "/usr/bin/aws (awscli) not installed"
curl -s -m 5 -o /dev/null "$RGW_A_ENDPOINT/" || skip "RGW not reachable at $RGW_A_ENDPOINT"

upstream="${RGW_A_ENDPOINT#http://}"
upstream="${upstream%%/*}"
work="$(mktemp -d)"
bucket="fp-self-$$-$RANDOM"
export AWS_ACCESS_KEY_ID="$RGW_A_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$RGW_A_SECRET_KEY"
export AWS_DEFAULT_REGION="${RGW_REGION:-us-east-1}" AWS_EC2_METADATA_DISABLED=true
proxy_pid=""

cleanup() {
    [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null && wait "$proxy_pid" 2>/dev/null
    /usr/bin/aws --endpoint-url "$RGW_A_ENDPOINT" s3 rb --force "s3://$bucket" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

"$proxy_bin" --listen 127.0.0.1:0 --upstream "$upstream" --log "$work/proxy.log" --count-file "$work/counts.json" \
    --rule "internal:/$bucket/force-internal" --rule "slowdown:/$bucket/force-slowdown" \
    --rule "reset-before:/$bucket/force-reset" >"$work/proxy.out" 2>"$work/proxy.err" &
proxy_pid=$!
for _ in $(seq 50); do
    grep -q '^listening on ' "$work/proxy.out" && break
    kill -0 "$proxy_pid" 2>/dev/null || fail "faultproxy exited at start"
    sleep 0.1
done
port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/proxy.out")"
[ -n "$port" ] || fail "no 'listening on 127.0.0.1:PORT' line"
proxy="http://127.0.0.1:$port"

# A bucket and an object, written through the proxy: forwarded requests must keep valid signatures.
head -c 300000 /dev/urandom >"$work/obj"
/usr/bin/aws --endpoint-url "$proxy" s3 mb "s3://$bucket" >/dev/null || fail "create bucket through the proxy"
/usr/bin/aws --endpoint-url "$proxy" s3 cp --only-show-errors "$work/obj" "s3://$bucket/plain" || fail "upload through the proxy"

# Forced faults are answered by the proxy itself, so unsigned requests are enough.
code="$(curl -s -o "$work/body" -w '%{http_code}' "$proxy/$bucket/force-internal")"
[ "$code" = 500 ] || fail "internal: expected 500, got $code"
grep -q '<Code>InternalError</Code>' "$work/body" || fail "internal: no InternalError body"

code="$(curl -s -D "$work/head" -o "$work/body" -w '%{http_code}' "$proxy/$bucket/force-slowdown")"
[ "$code" = 503 ] || fail "slowdown: expected 503, got $code"
grep -qi '^Retry-After: 1' "$work/head" || fail "slowdown: no Retry-After header"
grep -q '<Code>SlowDown</Code>' "$work/body" || fail "slowdown: no SlowDown body"

curl -s -o /dev/null "$proxy/$bucket/force-reset"
rc=$?
[ "$rc" = 52 ] || [ "$rc" = 56 ] || fail "reset-before: expected curl exit 52 or 56, got $rc"

# A plain request: same status and body as asking RGW directly.
/usr/bin/aws --endpoint-url "$proxy" s3 cp --only-show-errors "s3://$bucket/plain" "$work/via-proxy" || fail "download"
cmp -s "$work/obj" "$work/via-proxy" || fail "body changed on the way through the proxy"
if curl --help all 2>/dev/null | grep -q -- --aws-sigv4; then
    # RGW wants x-amz-content-sha256 signed; curl signs it when it is present.
    sig=(--aws-sigv4 "aws:amz:$AWS_DEFAULT_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
        -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
    direct="$(curl -s "${sig[@]}" -o "$work/direct" -w '%{http_code}' "$RGW_A_ENDPOINT/$bucket/plain")"
    proxied="$(curl -s "${sig[@]}" -o "$work/proxied" -w '%{http_code}' "$proxy/$bucket/plain")"
    [ "$direct" = 200 ] && [ "$proxied" = 200 ] || fail "plain GET: direct $direct, through the proxy $proxied"
    cmp -s "$work/direct" "$work/proxied" || fail "plain GET: bodies differ"
    direct="$(curl -s "${sig[@]}" -o /dev/null -w '%{http_code}' "$RGW_A_ENDPOINT/$bucket/missing")"
    proxied="$(curl -s "${sig[@]}" -o /dev/null -w '%{http_code}' "$proxy/$bucket/missing")"
    [ "$direct" = "$proxied" ] || fail "missing key: direct $direct, through the proxy $proxied"
fi

grep -q "GET /$bucket/force-internal -> 500 \[fault=internal\]" "$work/proxy.log" || fail "log lacks the internal fault"
grep -q "GET /$bucket/plain -> 200$" "$work/proxy.log" || fail "log lacks the plain GET"

# Counts on SIGUSR1, clean exit on SIGTERM.
kill -USR1 "$proxy_pid"
for _ in $(seq 50); do [ -s "$work/counts.json" ] && break; sleep 0.1; done
grep -q '"slowdown": 1' "$work/counts.json" || fail "counts file: $(cat "$work/counts.json" 2>/dev/null)"
kill -TERM "$proxy_pid"
wait "$proxy_pid"
rc=$?
proxy_pid=""
[ "$rc" = 0 ] || fail "faultproxy exited with $rc on SIGTERM"
echo "PASS: faultproxy self-test"
