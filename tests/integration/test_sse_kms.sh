#!/usr/bin/env bash
# SSE-KMS buckets (issue 14). Amazon S3's ETag of an SSE-KMS object is 32 hex digits that are not the MD5 of its
# bytes: sent as Content-MD5 it is refused (BadDigest), compared with a part's MD5 it never matches. The fault
# proxy's provider mode (--kms-bucket) makes RGW answer so: every ETag of the named buckets is turned into other
# hex digits on the way to the client (and back on the way in, the request signed again), and object replies say
# x-amz-server-side-encryption: aws:kms. Through it:
#   1. cross, a source with SSE-KMS and plain objects -> plain target: every object copied (whole objects with their own Content-MD5,
#      a multipart source without the composite-ETag check), content equal (awscli on RGW itself), a second run
#      copies nothing, --verify and --verify --deep pass
#   2. cross, plain source -> SSE-KMS target: multipart parts go with Content-MD5 (said once at -v), content
#      equal, no-change run, --verify, --verify --deep, and --verify --deep finds a changed target object;
#      --restore-drill of that backup passes (the KMS ETags are not taken for MD5s)
#   3. same endpoint, SSE-KMS -> SSE-KMS with UploadPartCopy (the copy-source conditions turned back), then
#      --restore from the SSE-KMS backup into a fresh bucket: exact
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

src=$(bucket src) dst1=$(bucket dst1) dst2=$(bucket dst2) dst3=$(bucket dst3) back=$(bucket back)
plain=$(bucket plain)
for b in "$src" "$plain"; do
  aws_on a s3api create-bucket --bucket "$b" >/dev/null || die "create-bucket $b"
  s3tool_on a fill "$b" small/ 40 0 4096 31 || die "fill $b"
  s3tool_on a put "$b" big/ten-mib.bin $((10 * 1024 * 1024)) 32 || die "put $b"
  head -c $((20 * 1024 * 1024)) /dev/urandom >"$T_TMP/twenty.bin"
  aws_on a s3 cp --quiet "$T_TMP/twenty.bin" "s3://$b/big/twenty-mib-multipart.bin" || die "aws s3 cp (multipart)"
done
etag=$(aws_on a s3api head-object --bucket "$src" --key big/twenty-mib-multipart.bin --query ETag --output text)
case $etag in *-3\") ok "the 20 MiB source object is multipart ($etag)" ;; *) bad "not multipart: $etag" ;; esac
mkbucket b "$dst1" --versioned
mkbucket b "$dst2" --versioned
mkbucket a "$dst3" --versioned
mkbucket a "$back"
n_all=42

# the source is mixed, as a bucket is whose default encryption was set after some uploads: small/00001*
# and big/ are SSE-KMS objects, the other small/ objects plain
start_proxy pa "$RGW_A_ENDPOINT" 0 --rate 0 --kms-bucket "$src/small/00001" --kms-bucket "$src/big/" --kms-bucket "$dst3" \
  --resign-keys "$RGW_A_ACCESS_KEY:$RGW_A_SECRET_KEY" --log "$T_TMP/pa.log"
pa=$PROXY_URL
start_proxy pb "$RGW_B_ENDPOINT" 0 --rate 0 --kms-bucket "$dst2" \
  --resign-keys "$RGW_B_ACCESS_KEY:$RGW_B_SECRET_KEY" --log "$T_TMP/pb.log"
pb=$PROXY_URL

# the proxy does what the test relies on: other ETags than RGW's, and the header
e_rgw=$(aws_on a s3api head-object --bucket "$src" --key big/ten-mib.bin --query ETag --output text)
e_kms=$(aws_at a "$pa" s3api head-object --bucket "$src" --key big/ten-mib.bin --query ETag --output text)
sse=$(aws_at a "$pa" s3api head-object --bucket "$src" --key big/ten-mib.bin --query ServerSideEncryption --output text)
check "through the proxy the ETag is another 32 hex digits ($e_rgw -> $e_kms) and SSE-KMS is said ($sse)" \
  test "$e_rgw" != "$e_kms" -a "${#e_kms}" = 34 -a "$sse" = aws:kms
l_rgw=$(aws_on a s3api list-objects-v2 --bucket "$src" --prefix small/ --query 'Contents[].ETag' --output text)
l_kms=$(aws_at a "$pa" s3api list-objects-v2 --bucket "$src" --prefix small/ --query 'Contents[].ETag' --output text)
n=$(paste <(tr '\t' '\n' <<<"$l_rgw") <(tr '\t' '\n' <<<"$l_kms") | awk '$1 != $2' | wc -l)
check "through the proxy the listing rotates the ETags of small/00001* only ($n of 40 differ)" test "$n" = 10

no_trouble() { # NAME: no integrity refusal or retry in the run's log
  if grep -E 'BadDigest|gave up|do not add up|stored other bytes' "$T_TMP/$1.err" >/dev/null; then
    bad "$1: integrity trouble in the log:"
    grep -E 'BadDigest|gave up|do not add up|stored other bytes' "$T_TMP/$1.err" | head -n 5 | indent
  else ok "$1: no BadDigest, no integrity retry"; fi
}
copied() { jget "$T_TMP/$1.out" 'd["objects_copied"]'; }

# ---- 1. SSE-KMS source -> plain target (cross)
X1=(--source-endpoint "$pa" --target-endpoint "$RGW_B_ENDPOINT" --source-profile a --target-profile b)
rep kms1 -v "${X1[@]}" --json "s3://$src" "s3://$dst1"
expect_rc kms1 0 "1: SSE-KMS source -> plain target"
check "1: every object copied ($(copied kms1) of $n_all)" test "$(copied kms1)" = "$n_all"
no_trouble kms1
same_content a "$src" b "$dst1" "1: SSE-KMS source"
rep kms1b "${X1[@]}" --json "s3://$src" "s3://$dst1"
expect_rc kms1b 0 "1: second run"
check "1: the second run copies nothing ($(copied kms1b))" test "$(copied kms1b)" = 0
rep ver1 --verify "${X1[@]}" "s3://$src" "s3://$dst1"
expect_rc ver1 0 "1: --verify"
rep deep1 --verify --deep "${X1[@]}" "s3://$src" "s3://$dst1"
expect_rc deep1 0 "1: --verify --deep"

# ---- 2. plain source -> SSE-KMS target (cross)
X2=(--source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$pb" --source-profile a --target-profile b)
rep kms2 -v "${X2[@]}" --json "s3://$plain" "s3://$dst2"
expect_rc kms2 0 "2: plain source -> SSE-KMS target"
check "2: every object copied ($(copied kms2) of $n_all)" test "$(copied kms2)" = "$n_all"
no_trouble kms2
n=$(grep -c 'the target encrypts with aws:kms' "$T_TMP/kms2.err")
check "2: the target's SSE-KMS is said once ($n)" test "$n" = 1
same_content a "$plain" b "$dst2" "2: SSE-KMS target"
rep kms2b "${X2[@]}" --json "s3://$plain" "s3://$dst2"
expect_rc kms2b 0 "2: second run"
check "2: the second run copies nothing ($(copied kms2b))" test "$(copied kms2b)" = 0
rep ver2 --verify "${X2[@]}" "s3://$plain" "s3://$dst2"
expect_rc ver2 0 "2: --verify"
rep deep2 --verify --deep "${X2[@]}" "s3://$plain" "s3://$dst2"
expect_rc deep2 0 "2: --verify --deep"
rep drill2 --restore-drill --endpoint "$pb" --profile b --json "s3://$dst2"
expect_rc drill2 0 "2: --restore-drill of the SSE-KMS backup"
# a target object changed behind replicate's back (same size): --deep must see it
k=$(aws_on b s3api list-objects-v2 --bucket "$dst2" --prefix small/ --query 'Contents[?Size>`100`]|[0].Key' --output text)
sz=$(aws_on b s3api head-object --bucket "$dst2" --key "$k" --query ContentLength --output text)
head -c "$sz" /dev/urandom >"$T_TMP/changed"
aws_on b s3 cp --quiet "$T_TMP/changed" "s3://$dst2/$k" || die "overwrite $k"
rep deep2x --verify --deep "${X2[@]}" "s3://$plain" "s3://$dst2"
expect_rc deep2x 5 "2: --verify --deep after $k was changed in the target"

# ---- 3. same endpoint, SSE-KMS -> SSE-KMS, parts by UploadPartCopy; then a restore from that backup
X3=(--endpoint "$pa" --profile a)
rep kms3 -v "${X3[@]}" --copy-threshold 5MiB --json "s3://$src" "s3://$dst3"
expect_rc kms3 0 "3: same endpoint, SSE-KMS -> SSE-KMS"
check "3: every object copied ($(copied kms3) of $n_all)" test "$(copied kms3)" = "$n_all"
n=$(grep -c 'PUT /'"$dst3"'/big/.*partNumber=' "$T_TMP/pa.log")
check "3: the big objects went by UploadPartCopy ($n part copies)" test "$n" -ge 5
same_content a "$src" a "$dst3" "3: server-side"
rep kms3b "${X3[@]}" --json "s3://$src" "s3://$dst3"
check "3: the second run copies nothing ($(copied kms3b))" test "$(copied kms3b)" = 0
rep ver3 --verify "${X3[@]}" "s3://$src" "s3://$dst3"
expect_rc ver3 0 "3: --verify"
rm -rf "$STATE"
rep rest3 "${X3[@]}" --restore --json "s3://$dst3" "s3://$back"
expect_rc rest3 0 "3: --restore from the SSE-KMS backup into a fresh bucket"
same_content a "$src" a "$back" "3: restored"
# (the lease's conditional writes under .replicate/ are refused by design when another write raced them)
n=$(cat "$T_TMP/pa.log" "$T_TMP/pb.log" | grep -v '/\.replicate/' | grep -c ' -> 40[03]\| -> 412')
check "no object request was refused by RGW for a wrong ETag or signature (400/403/412: $n)" test "$n" = 0
finish
