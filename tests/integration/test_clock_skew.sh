#!/usr/bin/env bash
# A wrong clock here (issue 14): replicate runs under faketime 40 minutes behind, then 40 minutes ahead, of the
# RGW servers, which refuse a request whose signed date is more than 15 minutes off (403 RequestTimeTooSkewed;
# a HEAD gets a bare 403). replicate must take the server's time from the first refusal (its Date header: RGW
# sends no <ServerTime>), say so once per endpoint at -v, sign with it from then on and copy everything: small
# objects and one of 12 MiB in 5 MiB parts (multipart: ranged GET + UploadPart A -> B, UploadPartCopy on A). awscli (with the
# right clock) checks the bytes in the targets. The lease must be written in the target's time, not ours. A run
# with the right clock says nothing about clocks. That the skew is real is checked too: curl's own SigV4 under
# the same faketime is refused.
# faketime: FAKETIME_DONT_FAKE_MONOTONIC=1 leaves CLOCK_MONOTONIC (libev's timers, curl's timeouts) alone, so
# only the wall clock is off, as on a machine with a wrong clock (40 minutes back could make it negative on a
# machine up for less than that).
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faketime=faketime curl

export FAKETIME_DONT_FAKE_MONOTONIC=1
REAL_REPLICATE=$REPLICATE
skewed() { # OFFSET: a replicate that runs with the wall clock OFFSET (faketime's -f: -40m, +40m) off
  cat >"$T_TMP/replicate$1" <<EOF
#!/bin/sh
exec faketime -f '$1' '$REAL_REPLICATE' "\$@"
EOF
  chmod +x "$T_TMP/replicate$1"
  echo "$T_TMP/replicate$1"
}
host_of() { echo "${1#*://}"; }
said() { grep -c "the clock here is [0-9]* s" "$1"; }
# FILE DIRECTION HOST: the correction said for HOST, once, of about 2400 s in DIRECTION (behind | ahead of)
said_once() {
  local n s
  n=$(grep -c "the clock here is [0-9]* s $2 $3's; signing with its time" "$1")
  s=$(grep -o "the clock here is [0-9]* s $2 $3's" "$1" | head -n 1 | grep -oE '[0-9]+ s' | grep -oE '[0-9]+')
  check "-v said once that the clock is ${s:-?} s $2 $3's ($n times)" \
    test "$n" = 1 -a "${s:-0}" -ge 2390 -a "${s:-0}" -le 2410
}

src=$(bucket src) dst=$(bucket dst) dst2=$(bucket dst2)
mkbucket a "$src"
s3tool_on a fill "$src" small/ 5 1 70000 31 || die "fill"
s3tool_on a put "$src" big/twelve-mib.bin $((12 * MiB)) 32 || die "put"
mkbucket b "$dst" --versioned
mkbucket a "$dst2" --versioned

code=$(faketime -f -40m curl -s --aws-sigv4 "aws:amz:$RGW_REGION:s3" --user "$RGW_A_ACCESS_KEY:$RGW_A_SECRET_KEY" \
  "$RGW_A_ENDPOINT/$src/" |
  grep -o '<Code>[A-Za-z]*</Code>')
require "RGW refuses curl's SigV4 under faketime -40m ($code): the skew is real" \
  test "$code" = "<Code>RequestTimeTooSkewed</Code>"

# 40 minutes behind, A -> B: GET piped into PUT, the big object in parts
REPLICATE=$(skewed -40m) rep run1 -v "${CROSS[@]}" --multipart-threshold 8MiB --part-size 5MiB --json \
  "s3://$src" "s3://$dst"
expect_rc run1 0 "replicate A -> B with the clock here 40 minutes behind"
check "every object copied ($(jget "$T_TMP/run1.out" 'd["objects_copied"]') of 6), failed 0" \
  test "$(jget "$T_TMP/run1.out" '(d["objects_copied"], d["objects_failed"])')" = "(6, 0)"
said_once "$T_TMP/run1.err" behind "$(host_of "$RGW_A_ENDPOINT")"
said_once "$T_TMP/run1.err" behind "$(host_of "$RGW_B_ENDPOINT")"
n=$(grep -c "RequestTimeTooSkewed\|HTTP error 403" "$T_TMP/run1.err")
check "few requests were refused before the clock was corrected ($n)" test "$n" -ge 1 -a "$n" -le 6
etag=$(aws_on b s3api head-object --bucket "$dst" --key big/twelve-mib.bin --query ETag --output text)
check "the 12 MiB object went up in 3 parts (target ETag $etag)" grep -q -- '-3"$' <<<"$etag"
same_content a "$src" b "$dst" "A -> B at -40 minutes"
# the lease was written in the target's time: another host (with a right clock) must see when it expires
aws_on b s3 cp "s3://$dst/.replicate/lease" "$T_TMP/lease.json" --quiet || bad "cannot read the lease"
renewed=$(jget "$T_TMP/lease.json" 'int(d["renewed"])')
now=$(date +%s)
check "the lease was released at the target's time ($renewed; now $now), not 40 minutes behind it" \
  test "$(( ${renewed:-0} > now - 300 && ${renewed:-0} <= now + 5 ))" = 1

# 40 minutes ahead, A -> A: server-side copies (UploadPartCopy for the big one), two clients of one endpoint
REPLICATE=$(skewed +40m) rep run2 -v "${SAME[@]}" --copy-threshold 8MiB --part-size 5MiB --json \
  "s3://$src" "s3://$dst2"
expect_rc run2 0 "replicate A -> A with the clock here 40 minutes ahead"
check "every object copied ($(jget "$T_TMP/run2.out" 'd["objects_copied"]') of 6), failed 0" \
  test "$(jget "$T_TMP/run2.out" '(d["objects_copied"], d["objects_failed"])')" = "(6, 0)"
said_once "$T_TMP/run2.err" "ahead of" "$(host_of "$RGW_A_ENDPOINT")"
check "said for no other endpoint ($(said "$T_TMP/run2.err") in all)" test "$(said "$T_TMP/run2.err")" = 1
etag=$(aws_on a s3api head-object --bucket "$dst2" --key big/twelve-mib.bin --query ETag --output text)
check "the 12 MiB object was copied in 3 parts (target ETag $etag)" grep -q -- '-3"$' <<<"$etag"
same_content a "$src" a "$dst2" "A -> A at +40 minutes"

# the right clock: nothing to correct, nothing said
s3tool_on a put "$src" small/late.bin 4096 33 || die "put"
rep run3 -v "${CROSS[@]}" --json "s3://$src" "s3://$dst"
expect_rc run3 0 "replicate A -> B again with the right clock"
check "it copied the one new object ($(jget "$T_TMP/run3.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/run3.out" 'd["objects_copied"]')" = 1
check "nothing was said about clocks ($(said "$T_TMP/run3.err"))" test "$(said "$T_TMP/run3.err")" = 0
same_content a "$src" b "$dst" "A -> B, right clock"
finish
