#!/usr/bin/env bash
# The client never deletes: scans both RGW request logs (RGW_A_LOG, RGW_B_LOG: one "beast:" line per HTTP
# request, with the user agent) for requests that destroy data, sent by anything but awscli (the tests use
# /usr/bin/aws themselves to play a user deleting a source object or tampering with a target):
#   - DELETE on anything (object, version, bucket), except AbortMultipartUpload (query has uploadId=);
#   - POST ?delete (DeleteObjects);
#   - ?lifecycle (a lifecycle rule could expire objects).
# Named zz_ so that scripts/check.sh runs it after every other test. Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init test_replicate_zz_no_delete
[ -n "${RGW_A_LOG:-}" ] || { say "skip: RGW_A_LOG is not set"; exit 77; }

logs=("$RGW_A_LOG")
[ -n "${RGW_B_LOG:-}" ] && logs+=("$RGW_B_LOG")
for f in "${logs[@]}"; do
  # flush what RGW still holds: one harmless request, waited for in the log
  case $f in "$RGW_A_LOG") log_sync a "no-delete-check" ;; *) log_sync b "no-delete-check" ;; esac
done

python3 - "${logs[@]}" <<'PY'
import re, sys
from urllib.parse import parse_qs

# 127.0.0.1 - tester [26/Nov/2026:16:07:04.957 +0000] "DELETE /b/k?x=y HTTP/1.1" 204 0 - "aws-cli/2.9.19 ..." - latency=
LINE = re.compile(r' beast: \S+ \S+ \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d+) (.*)$')
fails = 0
for path in sys.argv[1:]:
    try:
        f = open(path, "rb")
    except OSError as e:
        print(f"FAIL - cannot read the RGW log {path}: {e}")
        fails += 1
        continue
    total = awscli = others = aborts = awscli_deletes = unparsed = 0
    bad = []
    for raw in f:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if " beast: " not in line:
            continue
        m = LINE.search(line)
        if not m:
            unparsed += 1
            continue
        total += 1
        method, uri, status, rest = m.groups()
        path_part, _, query = uri.partition("?")
        params = parse_qs(query, keep_blank_values=True)
        destructive = (method == "DELETE" and "uploadId" not in params) or \
                      (method == "POST" and "delete" in params) or "lifecycle" in params
        if "aws-cli/" in rest:
            awscli += 1
            if destructive:
                awscli_deletes += 1
            continue
        others += 1
        if method == "DELETE" and "uploadId" in params:
            aborts += 1
        if destructive:
            bad.append(line[line.index(" beast: ") + 8:])
    f.close()
    print(f"    {path}: {total} requests: {awscli} from awscli (of them {awscli_deletes} deletes by the tests "
          f"themselves, not counted), {others} from other clients (replicate, s3tool, ...) with {aborts} "
          f"AbortMultipartUpload; {unparsed} beast lines not understood")
    if total == 0 or others == 0:
        print(f"FAIL - {path} holds no request from replicate or s3tool: this check would see nothing")
        fails += 1
    elif bad:
        print(f"FAIL - {len(bad)} destructive requests (DELETE / POST ?delete / ?lifecycle) from a client other "
              f"than awscli in {path}:")
        for b in bad[:20]:
            print("    | " + b)
        fails += 1
    else:
        print(f"ok   - no DELETE (other than AbortMultipartUpload), DeleteObjects or lifecycle request from a client "
              f"other than awscli in {path}")
    if unparsed:
        print(f"FAIL - {unparsed} request lines in {path} did not match the expected format")
        fails += 1
sys.exit(1 if fails else 0)
PY
rc=$?
if [ "$rc" -eq 0 ]; then say "test_replicate_zz_no_delete: passed (${SECONDS}s)"; else say "test_replicate_zz_no_delete: FAILED"; fi
exit "$rc"
