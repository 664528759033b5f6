#!/usr/bin/env bash
# Server-side copies into a versioned target whose CopyObject replies name no version (Ceph RGW): the run learns
# the new versions in bulk, one ListObjectVersions page per batch of copied keys, instead of a HEAD (or a
# GET+PUT) per object (issue 15). Every manifest record must still name its key's latest version, with its ETag,
# as awscli lists them:
#   run 1: 1,500 new small objects: one CopyObject each, a few dozen listings, (almost) no HEADs
#   run 2: 200 of them overwritten at the source: their second versions are the ones recorded
#   run 3: through a fault proxy that spoils every batch listing (malformed XML): each object's version is then
#          read with a HEAD, and still right
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init log faultproxy

src=$(bucket src) dst=$(bucket dst) dst3=$(bucket dst3)
s3tool_on a mkbucket "$src" >/dev/null || die "mkbucket $src"
s3tool_on a fill "$src" p/ 1500 100 4000 11 >/dev/null || die "fill"
mkbucket a "$dst" --versioned
mkbucket a "$dst3" --versioned

latest_ok() { # RUN-NAME BUCKET LABEL: every record of the run's manifest names the key's latest version
  local run out
  run=$(jget "$T_TMP/$1.out" 'd["run_id"]')
  aws_on a s3api list-object-versions --bucket "$2" --output json >"$T_TMP/$1.versions.json" ||
    { bad "$3: listing versions failed"; return; }
  if out=$(s3check recorded-latest "$(ls "$STATE"/*/manifests/"$run".jsonl)" "$T_TMP/$1.versions.json"); then
    ok "$3: every manifest record names its key's latest version and ETag (${out##*$'\n'})"
  else
    bad "$3:"
    indent <<<"$out"
  fi
}
learned() { # RUN-NAME: "LEARNED LISTS MISSED" from the run's info line
  sed -n 's/.*new versions: \([0-9]*\) learned with \([0-9]*\) ListObjectVersions requests, \([0-9]*\) read one by one.*/\1 \2 \3/p' \
    "$T_TMP/$1.err" | tail -n 1
}

# ---- run 1: everything new
mark=$(log_mark a)
rep run1 "${SAME[@]}" -v --json "s3://$src" "s3://$dst"
expect_rc run1 0 "run 1: 1,500 objects copied server-side"
log_sync a "$dst"
read -r n lists missed <<<"$(learned run1)"
check "run 1: the versions were learned in bulk: ${n:-none} learned with ${lists:-?} listings, ${missed:-?} by HEAD" \
  test "${n:-0}" -ge 1400 -a "${lists:-999}" -le 60 -a "$((n + missed))" -eq 1500
copies=$(log_requests a "$mark" "\"PUT /$dst/p/" | grep -avc 'aws-cli/')
gets=$(log_requests a "$mark" "\"GET /$src/p/" | grep -avc 'aws-cli/')
heads=$(log_requests a "$mark" "\"HEAD /$dst/p/" | grep -avc 'aws-cli/')
check "run 1: one CopyObject per object ($copies), no GET of a source object ($gets), HEADs only for those ($heads <= ${missed:-0})" \
  test "$copies" -eq 1500 -a "$gets" -eq 0 -a "$heads" -le "${missed:-0}"
latest_ok run1 "$dst" "run 1"

# ---- run 2: 200 objects changed at the source (each then has two versions in the target)
s3tool_on a fill "$src" p/ 200 100 4000 12 >/dev/null || die "overwrite"
rep run2 "${SAME[@]}" -v --json "s3://$src" "s3://$dst"
expect_rc run2 0 "run 2: the changed objects copied again"
check "run 2: objects_copied = 200 ($(jget "$T_TMP/run2.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/run2.out" 'd["objects_copied"]')" = 200
latest_ok run2 "$dst" "run 2"

# ---- run 3: every batch listing answered with malformed XML (the pass's own listing of the new target, with
# no key-marker, is left alone): HEAD per object
start_proxy proxy "$RGW_A_ENDPOINT" 0 --rate 0 --rule "bad-xml:GET /$dst3/?encoding-type=url&key-marker=" \
  --log "$T_TMP/proxy.log"
rep run3 --endpoint "$PROXY_URL" --profile a -v --json "s3://$src" "s3://$dst3"
stop_proxy "$PROXY_PID"
expect_rc run3 0 "run 3: spoiled batch listings do not fail the run"
read -r n lists missed <<<"$(learned run3)"
spoiled=$(grep -a "GET /$dst3/?encoding-type=url&key-marker=" "$T_TMP/proxy.log" | grep -ac "fault=bad-xml")
heads=$(grep -ac "^HEAD /$dst3/p/" "$T_TMP/proxy.log")
check "run 3: the batch listings were spoiled ($spoiled), none learned (${n:-?}), all 1,500 by HEAD (${missed:-?}, $heads HEADs)" \
  test "$spoiled" -ge 1 -a "${n:-1}" = 0 -a "${missed:-0}" = 1500 -a "$heads" -ge 1500
latest_ok run3 "$dst3" "run 3"

finish
