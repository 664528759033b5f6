# shellcheck shell=bash
# Helpers for tests/integration/test_faults*.sh (sourced, not run): environment checks, a temp dir, per-side
# profiles, faultproxy instances, and the awscli comparison of two buckets (against RGW directly).
#   A / B CMD...              run CMD with side a's / b's profile and endpoint in the environment (s3tool)
#   awsA / awsB ARGS...       /usr/bin/aws with that side's profile and --endpoint-url
#   start_proxy NAME UPSTREAM-URL PORT ARGS...   faultproxy in the background: PROXY_URL, PROXY_PID
#   stop_proxy PID            SIGTERM; it writes $work/NAME.counts.json and exits
#   show_counts NAME          one line: requests by method, faults by kind
#   same_content awsA SRC awsB DST LABEL          aws s3 sync both, diff -r (.replicate/ excluded)
#   ok / bad / finish         reporting; finish exits 0 when nothing failed
set -uo pipefail
[ -n "${RGW_A_ENDPOINT:-}" ] && [ -n "${RGW_B_ENDPOINT:-}" ] && [ -n "${REPLICATE:-}" ] || { echo "skip: no RGW env"; exit 77; }
[ -x "${TOOLS:-}/faultproxy" ] && [ -x "$TOOLS/s3tool" ] || { echo "skip: TOOLS/faultproxy or s3tool not built"; exit 77; }
[ -x /usr/bin/aws ] || { echo "skip: /usr/bin/aws (awscli) missing"; exit 77; }
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_ENDPOINT_URL
AWS=/usr/bin/aws
work=$(mktemp -d)
proxies=()
rp=""
fails=0
fault_cleanup() {
  [ -n "$rp" ] && kill "$rp" 2>/dev/null
  local p
  for p in "${proxies[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap fault_cleanup EXIT
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
finish() {
  echo "$1: $fails failure(s) (${SECONDS}s)"
  [ "$fails" = 0 ]
  exit
}
cat >"$work/credentials" <<EOC
[a]
aws_access_key_id = $RGW_A_ACCESS_KEY
aws_secret_access_key = $RGW_A_SECRET_KEY
[b]
aws_access_key_id = $RGW_B_ACCESS_KEY
aws_secret_access_key = $RGW_B_SECRET_KEY
EOC
export AWS_SHARED_CREDENTIALS_FILE=$work/credentials AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
A() { AWS_PROFILE=a AWS_ENDPOINT_URL=$RGW_A_ENDPOINT "$@"; }
B() { AWS_PROFILE=b AWS_ENDPOINT_URL=$RGW_B_ENDPOINT "$@"; }
awsA() { AWS_PROFILE=a $AWS --endpoint-url "$RGW_A_ENDPOINT" "$@"; }
awsB() { AWS_PROFILE=b $AWS --endpoint-url "$RGW_B_ENDPOINT" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@" 2>/dev/null; }
hostport() { local u=${1#*://}; echo "${u%%/*}"; }
MiB=$((1024 * 1024))

start_proxy() {
  local name=$1 up=$2 port=$3 i
  shift 3
  : >"$work/$name.out"
  "$TOOLS/faultproxy" --listen "127.0.0.1:$port" --upstream "$(hostport "$up")" \
    --count-file "$work/$name.counts.json" "$@" >"$work/$name.out" 2>>"$work/$name.err" &
  PROXY_PID=$!
  proxies+=("$PROXY_PID")
  for ((i = 0; i < 100; i++)); do
    grep -q '^listening on ' "$work/$name.out" 2>/dev/null && break
    kill -0 "$PROXY_PID" 2>/dev/null || { echo "faultproxy $name did not start:"; cat "$work/$name.err"; exit 1; }
    sleep 0.05
  done
  PROXY_URL="http://$(sed -n 's/^listening on //p' "$work/$name.out")"
}
stop_proxy() {
  kill -TERM "$1" 2>/dev/null
  wait "$1" 2>/dev/null
}
show_counts() {
  python3 - "$work/$1.counts.json" "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
f = {k: v for k, v in d["faults"].items() if k != "none" and v}
n = sum(f.values())
print(f"  {sys.argv[2]}: {d['requests']} requests ({', '.join(f'{k} {v}' for k, v in d['methods'].items())}); "
      f"{n} faulted ({100.0 * n / max(d['requests'], 1):.1f}%): {', '.join(f'{k} {v}' for k, v in f.items()) or '-'}")
PY
}
faulted() { jget "$1" 'sum(v for k, v in d["faults"].items() if k != "none")'; }

same_content() { # the source's download is kept (sync only fetches what changed) for the next comparison
  local s="$work/cmp-src-$2" d="$work/cmp-dst" ns nd t0=$SECONDS
  rm -rf "$d" && mkdir -p "$d" "$s"
  $1 s3 sync --quiet --delete "s3://$2" "$s" &
  local sp=$!
  $3 s3 sync --quiet --exclude '.replicate/*' "s3://$4" "$d" || { bad "$5: aws s3 sync of the target failed"; wait $sp; return; }
  wait $sp || { bad "$5: aws s3 sync of the source failed"; return; }
  ns=$(find "$s" -type f | wc -l)
  nd=$(find "$d" -type f | wc -l)
  if [ "$ns" -gt 0 ] && diff -r "$s" "$d" >/dev/null; then
    ok "$5: target equals source ($nd objects, same keys, sizes and content; awscli against RGW, $((SECONDS - t0))s)"
  else
    bad "$5: target differs from source ($ns source objects, $nd target objects)"
    diff -rq "$s" "$d" | head
  fi
  rm -rf "$d"
}

# recorded_exist MANIFEST awsA|awsB BUCKET LABEL: every object the manifest records as copied exists in the
# target as the recorded version with the recorded size (a copy that did not happen must never be recorded)
recorded_exist() {
  $2 s3api list-object-versions --bucket "$3" --output json >"$work/versions.json" || { bad "$4: listing versions failed"; return; }
  local out
  if out=$(python3 - "$1" "$work/versions.json" <<'PY'
import json, sys
have = {}
for v in (json.load(open(sys.argv[2])).get("Versions") or []):
    have[(v["Key"], v["VersionId"])] = v["Size"]
    have.setdefault((v["Key"], None), v["Size"])
n = bad = 0
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("t") != "object":
        continue
    n += 1
    k = (r.get("target_key") or r["key"], r.get("version_id"))
    if have.get(k) != r["size"]:
        bad += 1
        if bad <= 5:
            print(f"recorded but not in the target: {k[0]} version {k[1]} size {r['size']} (target: {have.get(k)})")
print(f"{n} records checked")
sys.exit(1 if bad or not n else 0)
PY
  ); then
    ok "$4: every object its manifest records is in the target as recorded (${out##*$'\n'})"
  else
    bad "$4: $out"
  fi
}
