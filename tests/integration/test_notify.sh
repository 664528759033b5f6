#!/usr/bin/env bash
# Notifications that say why (issue 16). A run whose target refuses connections fails on the target's
# versioning check; its --json summary, the summary --notify-cmd reads on stdin and the text --notify-url
# POSTs (to a small local HTTP listener) must each carry the first error, what to do about it, the host name,
# the run id and the meaning of the exit code. The same for a configuration error (an unknown profile,
# exit 2), which fails before any request.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init

src=$(bucket src)
mkbucket a "$src"
s3tool_on a fill "$src" n/ 3 100 200 4 || die "s3tool fill"
host=$(hostname)

# the listener: every POST body into posts.jsonl, one per line; its port into port
# (python3 itself in the background, not the s3check function: $! must be the listener, for the kill at exit)
python3 "$S3CHECK" post-listener "$T_TMP/posts.jsonl" "$T_TMP/port" &
lib_kill_at_exit $!
for _ in $(seq 50); do [ -s "$T_TMP/port" ] && break; sleep 0.1; done
[ -s "$T_TMP/port" ] || die "the HTTP listener did not start"
hook="http://127.0.0.1:$(cat "$T_TMP/port")/hooks/replicate"
closed=$(free_port)

# explains NAME WANT-IN-ERROR WANT-IN-HINT WANT-EXIT: the three reports of run NAME
explains() {
  local n=$1 err=$2 hint=$3 code=$4 run
  run=$(jget "$T_TMP/$n.out" 'd["run_id"]')
  check "$n: --json summary names the run id ($run)" test -n "$run"
  s3check notify-reports "$T_TMP/$n.out" "$T_TMP/$n.notify" "$T_TMP/posts.jsonl" "$err" "$hint" "$code" "$host" \
    "$run" >"$T_TMP/$n.explain" 2>&1
  local rc=$?
  cat "$T_TMP/$n.explain"
  check "$n: the --json summary, --notify-cmd and --notify-url all say why, what to do, host, run id, exit code" \
    test "$rc" -eq 0
}

# ---- the target refuses connections: the versioning check fails
: >"$T_TMP/posts.jsonl"
rep refused --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "http://127.0.0.1:$closed" --profile a \
  --retries 1 --json --notify-cmd "cat >'$T_TMP/refused.notify'" --notify-url "$hook" "s3://$src" "s3://$(bucket dst)"
expect_rc refused 1 "a run whose target refuses connections fails"
check "its stderr names the versioning check" grep -q "versioning" "$T_TMP/refused.err"
explains refused "connection refused" "check the endpoint URL" 1
check "the notification names the failing check (versioning)" grep -q 'versioning' "$T_TMP/refused.notify"

# ---- a configuration error, before any request
: >"$T_TMP/posts.jsonl"
rep config "${SAME[@]}" --target-profile no-such-profile --json --notify-cmd "cat >'$T_TMP/config.notify'" \
  --notify-url "$hook" "s3://$src" "s3://$(bucket dst2)"
expect_rc config 2 "an unknown target profile is a configuration error"
explains config 'profile "no-such-profile"' "check the profile" 2
finish
