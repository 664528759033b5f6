#!/usr/bin/env bash
# Secrets (issue 7): credentials and signatures never reach any output, at any verbosity. Runs at -vvv (the
# most verbose level: every request and every state change), with session tokens set (RGW ignores an
# unknown x-amz-security-token, so the runs work):
#   1. cross endpoint, per-side profiles with aws_session_token, through faultproxy with ~10% faults (so
#      retries and error paths are logged too), --json, --metrics-file;
#   2. same endpoint from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN)
#      with a wrong secret: 403 on every request, --notify-cmd capturing the failure summary;
#   3. --verify --deep and --status at -vvv;
# and checks stdout, stderr, the JSON summaries, the local and uploaded manifests, the metrics file and the
# notification for the secret keys, the session tokens (also their first 12 characters), and any
# "Signature=" / "X-Amz-Signature" / "x-amz-security-token" value.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

tok_a="IQoJb3JpZ2luX2VjEAsessionTokenA$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
tok_b="IQoJb3JpZ2luX2VjEBsessionTokenB$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
tok_env="FwoGZXIvYXdzEnvSessionToken$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
wrong_secret="wRoNgSeCrEt$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cat >>"$AWS_SHARED_CREDENTIALS_FILE" <<EOC
[a-tok]
aws_access_key_id = $RGW_A_ACCESS_KEY
aws_secret_access_key = $RGW_A_SECRET_KEY
aws_session_token = $tok_a
[b-tok]
aws_access_key_id = $RGW_B_ACCESS_KEY
aws_secret_access_key = $RGW_B_SECRET_KEY
aws_session_token = $tok_b
EOC
secrets=("$RGW_A_SECRET_KEY" "$RGW_B_SECRET_KEY" "$tok_a" "$tok_b" "$tok_env" "$wrong_secret")
names=("A's secret key" "B's secret key" "A's session token" "B's session token" "the env session token" "the wrong secret key")

# scan LABEL FILE...: none of the secrets (nor a 12-character prefix of one), no signature or token value
scan() {
  local label=$1 f i hit=0 bytes=0 lines=0
  shift
  for f in "$@"; do
    [ -f "$f" ] || { bad "$label: $(basename "$f") was not written"; hit=1; continue; }
    bytes=$((bytes + $(wc -c <"$f")))
    lines=$((lines + $(wc -l <"$f")))
    for i in "${!secrets[@]}"; do
      if grep -qF -- "${secrets[$i]:0:12}" "$f"; then
        bad "$label: ${names[$i]} appears in $(basename "$f"): $(grep -F -m1 -- "${secrets[$i]:0:12}" "$f" | cut -c1-200)"
        hit=1
      fi
    done
    if grep -qiE 'Signature=[^ ,&"]*[0-9a-f]{8}|X-Amz-Signature|x-amz-security-token[:=] *[A-Za-z0-9]' "$f"; then
      bad "$label: a signature or token value in $(basename "$f"): $(grep -iE -m1 'Signature=|X-Amz-Signature|x-amz-security-token' "$f" | cut -c1-200)"
      hit=1
    fi
  done
  [ "$hit" = 0 ] && ok "$label: no secret key, session token or signature in $# file(s) ($lines lines, $bytes bytes)"
}

# the scanner itself finds what it looks for
printf 'x %s y\nAuthorization: AWS4-HMAC-SHA256 Credential=K/x, Signature=0123456789abcdef\n' "${secrets[2]}" >"$T_TMP/control"
out=$(scan control "$T_TMP/control") # (in a subshell: its findings are not counted)
grep -q 'A.s session token appears' <<<"$out" && grep -q 'signature or token value' <<<"$out" \
  && ok "control: the scan finds a token and a signature planted in a file" || { bad "control: the scan is blind"; echo "$out"; }

tag=x$(date +%s)$$
src=$tag-src
mkbucket a "$src"
s3tool_on a fill "$src" s/ 300 0 3000 61 || die "s3tool fill"
s3tool_on a put "$src" m/big $((12 * MiB)) 8 || die "s3tool put"

# ---- 1. cross endpoint, profiles with session tokens, through faults, -vvv
dst=$tag-dst
mkbucket b "$dst" --versioned
start_proxy p-a "$RGW_A_ENDPOINT" 0 --rate 0.10 --seed 11 --stall-seconds 4
pa=$PROXY_PID ua=$PROXY_URL
start_proxy p-b "$RGW_B_ENDPOINT" 0 --rate 0.10 --seed 12 --stall-seconds 4
pb=$PROXY_PID ub=$PROXY_URL
"$REPLICATE" --no-progress -vvv --json --timeout 2 --part-size 5MiB --state-dir "$T_TMP/state" \
  --metrics-file "$T_TMP/metrics.prom" --source-profile a-tok --target-profile b-tok \
  --source-endpoint "$ua" --target-endpoint "$ub" "s3://$src" "s3://$dst" >"$T_TMP/run1.json" 2>"$T_TMP/run1.err"
rc=$?
stop_proxy "$pa"
stop_proxy "$pb"
show_counts p-a
show_counts p-b
[ "$rc" = 0 ] && ok "run 1 (tokens, faults, -vvv): exit 0, $(wc -l <"$T_TMP/run1.err") lines on stderr, $(grep -c 'retrying in' "$T_TMP/run1.err") retries" \
  || { bad "run 1 exited $rc"; grep -v -e debug -e trace "$T_TMP/run1.err" | tail -n 10; }
grep -q 'debug: GET ' "$T_TMP/run1.err" && grep -q 'trace: ' "$T_TMP/run1.err" && ok "run 1 logged every request and state change" \
  || bad "run 1 did not log at debug/trace level"
mkey=$(aws_on b s3api list-objects-v2 --bucket "$dst" --prefix .replicate/manifests/ --query 'Contents[0].Key' --output text)
aws_on b s3 cp --quiet "s3://$dst/$mkey" "$T_TMP/uploaded.jsonl" || bad "no manifest uploaded"
scan "run 1" "$T_TMP/run1.json" "$T_TMP/run1.err" "$T_TMP/metrics.prom" "$T_TMP/uploaded.jsonl" "$T_TMP"/state/*/manifests/*.jsonl

# ---- 2. same endpoint from the environment, wrong secret: 403 everywhere
dst2=$tag-dst2
mkbucket a "$dst2" --versioned
AWS_ACCESS_KEY_ID=$RGW_A_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$wrong_secret AWS_SESSION_TOKEN=$tok_env \
  "$REPLICATE" --no-progress -vvv --json --state-dir "$T_TMP/state2" --endpoint "$RGW_A_ENDPOINT" \
  --notify-cmd "cat >'$T_TMP/notify.json'" "s3://$src" "s3://$dst2" >"$T_TMP/run2.json" 2>"$T_TMP/run2.err"
rc=$?
[ "$rc" != 0 ] && grep -q '403' "$T_TMP/run2.err" && ok "run 2 (wrong secret, env token): exit $rc, 403: $(grep -m1 '403' "$T_TMP/run2.err" | cut -c1-150)" \
  || { bad "run 2 exited $rc without a 403"; tail -n 5 "$T_TMP/run2.err"; }
scan "run 2" "$T_TMP/run2.json" "$T_TMP/run2.err" "$T_TMP/notify.json"

# ---- 3. verify and status
AWS_PROFILE=a-tok "$REPLICATE" --verify --deep -vvv --source-profile a-tok --target-profile b-tok \
  --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$RGW_B_ENDPOINT" --state-dir "$T_TMP/state" \
  "s3://$src" "s3://$dst" >"$T_TMP/verify.out" 2>"$T_TMP/verify.err"
rc=$?
[ "$rc" = 0 ] && ok "verify --deep at -vvv: exit 0" || { bad "verify exited $rc"; tail -n 5 "$T_TMP/verify.err"; }
"$REPLICATE" --status -vvv --target-profile b-tok --target-endpoint "$RGW_B_ENDPOINT" "s3://$dst" \
  >"$T_TMP/status.out" 2>"$T_TMP/status.err"
rc=$?
[ "$rc" = 0 ] && ok "status at -vvv: exit 0" || { bad "status exited $rc"; tail -n 5 "$T_TMP/status.err"; }
scan "verify and status" "$T_TMP/verify.out" "$T_TMP/verify.err" "$T_TMP/status.out" "$T_TMP/status.err"

finish
