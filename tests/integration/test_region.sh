#!/usr/bin/env bash
# A bucket in another region than the one configured (issue 14): the fault proxy answers every request that
# is not signed for its --bucket-region as Amazon S3 does (400 AuthorizationHeaderMalformed with <Region> and
# x-amz-bucket-region; a HEAD gets the header alone). replicate must learn the region from the first such
# reply, say so once at -v, sign for it from then on, and copy everything, on either side; --verify too.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

src=$(bucket src) dst=$(bucket dst)
aws_on a s3api create-bucket --bucket "$src" >/dev/null || die "create-bucket"
s3tool_on a fill "$src" small/ 200 0 4096 21 || die "fill"
s3tool_on a put "$src" big/ten-mib.bin $((10 * 1024 * 1024)) 22 || die "put"
mkbucket b "$dst" --versioned
start_proxy src "$RGW_A_ENDPOINT" 0 --rate 0 --bucket-region eu-west-1 --log "$T_TMP/src.log"
psrc=$PROXY_URL
start_proxy dst "$RGW_B_ENDPOINT" 0 --rate 0 --bucket-region ap-southeast-2 --log "$T_TMP/dst.log"
pdst=$PROXY_URL

rep run1 -v --source-endpoint "$psrc" --target-endpoint "$pdst" --source-profile a --target-profile b --json \
  "s3://$src" "s3://$dst"
expect_rc run1 0 "replicate with both buckets in other regions than us-east-1"
check "every object copied ($(jget "$T_TMP/run1.out" 'd["objects_copied"]') of 201)" \
  test "$(jget "$T_TMP/run1.out" 'd["objects_copied"]')" = 201
check "the source's region is said once" test "$(grep -c "is in region eu-west-1" "$T_TMP/run1.err")" = 1
check "the target's region is said once" test "$(grep -c "is in region ap-southeast-2" "$T_TMP/run1.err")" = 1
n1=$(grep -c 'fault=wrong-region' "$T_TMP/src.log") n2=$(grep -c 'fault=wrong-region' "$T_TMP/dst.log")
t1=$(grep -c '' "$T_TMP/src.log")
check "few requests were refused before the region was learnt (source $n1 of $t1, target $n2)" \
  test "$n1" -le 3 -a "$n2" -le 3 -a "$n1" -ge 1 -a "$n2" -ge 1
n=$(aws_on b s3api list-objects-v2 --bucket "$dst" --prefix small/ --query 'length(Contents || `[]`)' --output text)
check "awscli sees the 200 small objects in the target ($n)" test "$n" = 200
rep verify --verify --source-endpoint "$psrc" --target-endpoint "$pdst" --source-profile a --target-profile b \
  "s3://$src" "s3://$dst"
expect_rc verify 0 "--verify through the same proxies"
finish
