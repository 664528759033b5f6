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
lib_init log

logs=("$RGW_A_LOG")
[ -n "${RGW_B_LOG:-}" ] && logs+=("$RGW_B_LOG")
for f in "${logs[@]}"; do
  # flush what RGW still holds: one harmless request, waited for in the log
  case $f in "$RGW_A_LOG") log_sync a "no-delete-check" ;; *) log_sync b "no-delete-check" ;; esac
done

s3check_checks no-delete "${logs[@]}"
finish
