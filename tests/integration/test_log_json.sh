#!/usr/bin/env bash
# --log-format json (issue 16): every line replicate writes on stderr is one JSON object with time, level and
# message (event, key and fields where there are some), for
#   1. a run with -v --json (stdout: the summary; stderr: copied events with keys, progress, output lines);
#   2. a delta run with -vv (every request as a "request" event with method, status and ms);
#   3. a failing run (the target refuses connections): the error is a level "error" line;
#   4. --verify -v --json;
# and --log-format with another value is a usage error. The human format is unchanged (other tests).
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init

src=$(bucket src) dst=$(bucket dst)
mkbucket a "$src"
mkbucket a "$dst" --versioned
s3tool_on a fill "$src" j/ 30 100 2000 6 || die "s3tool fill"
printf 'key with "quotes", a \\ backslash and a tab\t.\n' >"$T_TMP/odd"
aws_on a s3api put-object --bucket "$src" --key $'odd/"quoted"\tkey ✓.txt' --body "$T_TMP/odd" >/dev/null ||
  die "put-object"

# json_lines NAME [PYTHON-CONDITION...]: every stderr line of run NAME is a JSON object with time, level and
# message; each condition (over the list of objects, as L) must hold
json_lines() { s3check json-log "$T_TMP/$1.err" "${@:2}"; }

# ---- 1. a full run, -v --json
rep full "${SAME[@]}" --settle 0 -v --log-format json --json "s3://$src" "s3://$dst"
expect_rc full 0 "a run with -v --log-format json --json"
check "its stdout is the JSON summary (31 objects copied)" test "$(jget "$T_TMP/full.out" 'd["objects_copied"]')" = 31
check "every stderr line is a JSON object; copied events name their key and bytes; the odd key survives" \
  json_lines full \
  'sum(1 for o in L if o.get("event") == "copied" and o.get("key") and isinstance(o.get("bytes"), (int, float))) == 31' \
  'any(o.get("key") == "odd/\"quoted\"\tkey ✓.txt" for o in L)' \
  'any(o.get("event") == "output" and o["message"].startswith("pass 1:") for o in L)'

# ---- 2. a delta run, -vv: every request
s3tool_on a fill "$src" j2/ 3 100 200 7 || die "s3tool fill"
rep delta "${SAME[@]}" --settle 0 -vv --log-format json "s3://$src" "s3://$dst"
expect_rc delta 0 "a delta run with -vv --log-format json (human summary on stdout)"
check "its stdout stays human" grep -q '^done: 3 objects copied' "$T_TMP/delta.out"
check "every stderr line is a JSON object; requests are events with method, status and ms" \
  json_lines delta \
  'sum(1 for o in L if o.get("event") == "request" and o.get("method") in ("GET", "HEAD", "PUT", "POST") and isinstance(o.get("status"), (int, float)) and isinstance(o.get("ms"), (int, float))) >= 5' \
  'all(o["level"] == "debug" for o in L if o.get("event") == "request")'

# ---- 3. a failing run
closed=$(free_port)
rep failing --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "http://127.0.0.1:$closed" --profile a \
  --retries 2 -v --log-format json --json "s3://$src" "s3://$(bucket nowhere)"
expect_rc failing 1 "a run whose target refuses connections"
check "every stderr line is a JSON object; the reason is an error line; the retry is an event" \
  json_lines failing \
  'any(o["level"] == "error" and "connection refused" in o["message"] for o in L)' \
  'any(o.get("event") == "retry" and o.get("attempt") == 2 for o in L)'

# ---- 4. --verify
rep verify "${SAME[@]}" --verify -v --log-format json --json "s3://$src" "s3://$dst"
expect_rc verify 0 "--verify -v --log-format json --json"
check "every stderr line of --verify is a JSON object" json_lines verify

rep badfmt --log-format xml "s3://$src" "s3://$dst"
expect_rc badfmt 2 "--log-format xml is a usage error"
finish
