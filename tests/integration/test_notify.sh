#!/usr/bin/env bash
# Notifications that say why (issue 16). A run whose target refuses connections fails on the target's
# versioning check; its --json summary, the summary --notify-cmd reads on stdin and the text --notify-url
# POSTs (to a small local HTTP listener) must each carry the first error, what to do about it, the host name,
# the run id and the meaning of the exit code. The same for a configuration error (an unknown profile,
# exit 2), which fails before any request.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init test_notify

src=$(bucket src)
mkbucket a "$src"
s3tool_on a fill "$src" n/ 3 100 200 4 || die "s3tool fill"
host=$(hostname)

# the listener: every POST body into posts.jsonl, one per line; its port into port
cat >"$T_TMP/listener.py" <<'PY'
import http.server, json, sys
out, portfile = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                "body": body.decode("utf-8", "replace")}) + "\n")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(portfile + ".tmp", "w").write(str(s.server_address[1]))
import os; os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PY
python3 "$T_TMP/listener.py" "$T_TMP/posts.jsonl" "$T_TMP/port" &
lpid=$!
lib_on_exit "kill $lpid 2>/dev/null; wait $lpid 2>/dev/null"
for _ in $(seq 50); do [ -s "$T_TMP/port" ] && break; sleep 0.1; done
[ -s "$T_TMP/port" ] || die "the HTTP listener did not start"
hook="http://127.0.0.1:$(cat "$T_TMP/port")/hooks/replicate"
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# explains NAME WANT-IN-ERROR WANT-IN-HINT WANT-EXIT: the three reports of run NAME
explains() {
  local n=$1 err=$2 hint=$3 code=$4 run
  run=$(jget "$T_TMP/$n.out" 'd["run_id"]')
  check "$n: --json summary names the run id ($run)" test -n "$run"
  python3 - "$T_TMP/$n.out" "$T_TMP/$n.notify" "$T_TMP/posts.jsonl" "$err" "$hint" "$code" "$host" "$run" \
    >"$T_TMP/$n.explain" 2>&1 <<'PY'
import json, sys
summ, notify, posts, err, hint, code, host, run = sys.argv[1:]
code = int(code)
fails = []
def summary(label, d):
    for k in ("message", "error", "hint", "host", "exit_meaning", "run_id"):
        if not isinstance(d.get(k), str) or not d.get(k):
            fails.append(f"{label}: {k} is {d.get(k)!r}")
    if err not in (d.get("message") or "") or err not in (d.get("error") or ""):
        fails.append(f"{label}: message/error {d.get('message')!r} lack {err!r}")
    if hint not in (d.get("hint") or ""):
        fails.append(f"{label}: hint {d.get('hint')!r} lacks {hint!r}")
    if d.get("host") != host: fails.append(f"{label}: host {d.get('host')!r} is not {host!r}")
    if d.get("run_id") != run: fails.append(f"{label}: run_id {d.get('run_id')!r} is not {run!r}")
    if d.get("exit_code") != code: fails.append(f"{label}: exit_code {d.get('exit_code')!r}")
    print(f"    {label}: message={d.get('message')!r} hint={d.get('hint')!r} exit_meaning={d.get('exit_meaning')!r}")
summary("--json summary", json.load(open(summ)))
summary("--notify-cmd stdin", json.load(open(notify)))
lines = open(posts).read().splitlines()
if not lines:
    fails.append("--notify-url: nothing was posted")
else:
    p = json.loads(lines[-1])
    text = json.loads(p["body"])["text"]
    print(f"    --notify-url text: {text}")
    if p["content_type"] != "application/json": fails.append(f"--notify-url content type {p['content_type']}")
    for want in (err, hint, host, run, f"exit {code}", "What to do"):
        if want not in text: fails.append(f"--notify-url text lacks {want!r}")
for f in fails: print("    " + f)
sys.exit(1 if fails else 0)
PY
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
