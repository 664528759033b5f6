#!/usr/bin/env bash
# Object tags and the backup's storage class (issue 14), on RGW itself, checked with /usr/bin/aws:
#   - tags arrive with every object, same endpoint (CopyObject, UploadPartCopy) and cross (streamed, piped
#     multipart), and come back with a restore; --no-tags writes none; --verify --deep compares them
#   - --storage-class STANDARD_IA (a second class scripts/rgw.sh configures) is the class of every object
#     written, server-side and streamed
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b

src=$(bucket src)
aws_on a s3api create-bucket --bucket "$src" >/dev/null || die "create-bucket"
printf 'small and tagged\n' >"$T_TMP/small"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$T_TMP/big" || die "head"
aws_on a s3api put-object --bucket "$src" --key tagged/small.txt --body "$T_TMP/small" \
  --tagging 'team=web&note=a b+c&empty=' >/dev/null || die "put small"
aws_on a s3api put-object --bucket "$src" --key tagged/big.bin --body "$T_TMP/big" --tagging 'size=big' \
  >/dev/null || die "put big"
aws_on a s3api put-object --bucket "$src" --key plain/untagged.txt --body "$T_TMP/small" >/dev/null || die "put"
s3tool_on a fill "$src" bulk/ 50 0 2048 3 || die "fill"

tags_of() { # SIDE BUCKET KEY: "k=v;k=v" sorted, or empty
  aws_on "$1" s3api get-object-tagging --bucket "$2" --key "$3" --output json |
    jget /dev/stdin '";".join(sorted(t["Key"] + "=" + t["Value"] for t in d["TagSet"]))'
}
SMALL_TAGS=$(tags_of a "$src" tagged/small.txt)
check "the source's tagged/small.txt has three tags, one with spaces and '+', one empty ($SMALL_TAGS)" \
  test "$(tr ';' '\n' <<<"$SMALL_TAGS" | wc -l)" = 3
class_of() { aws_on "$1" s3api head-object --bucket "$2" --key "$3" --query StorageClass --output text; }
check_target() { # NAME SIDE BUCKET CLASS TAGS(yes|no)
  local n=$1 side=$2 b=$3 cls=$4 want_small=$SMALL_TAGS want_big='size=big' got k
  if [ "$5" = no ]; then want_small='' want_big=''; fi
  got=$(tags_of "$side" "$b" tagged/small.txt)
  check "$n: tagged/small.txt has the tags [$want_small] ($got)" test "$got" = "$want_small"
  got=$(tags_of "$side" "$b" tagged/big.bin)
  check "$n: the 12 MiB multipart tagged/big.bin has the tags [$want_big] ($got)" test "$got" = "$want_big"
  got=$(tags_of "$side" "$b" plain/untagged.txt)
  check "$n: plain/untagged.txt has no tags ($got)" test -z "$got"
  [ -n "$cls" ] || return 0
  for k in tagged/small.txt tagged/big.bin bulk/000007; do
    got=$(class_of "$side" "$b" "$k")
    check "$n: $k is in storage class $cls ($got)" test "$got" = "$cls"
  done
}

same=$(bucket same) cross=$(bucket cross) notags=$(bucket notags)
mkbucket a "$same" --versioned
mkbucket b "$cross" --versioned
mkbucket b "$notags" --versioned
rep same "${SAME[@]}" --copy-threshold 10MiB --storage-class STANDARD_IA "s3://$src" "s3://$same"
expect_rc same 0 "same endpoint (CopyObject, UploadPartCopy above 10 MiB), --storage-class STANDARD_IA"
check_target same a "$same" STANDARD_IA yes
rep cross "${CROSS[@]}" --storage-class STANDARD_IA "s3://$src" "s3://$cross"
expect_rc cross 0 "cross endpoint (streamed, piped multipart), --storage-class STANDARD_IA"
check_target cross b "$cross" STANDARD_IA yes
rep notags "${CROSS[@]}" --no-tags "s3://$src" "s3://$notags"
expect_rc notags 0 "cross endpoint with --no-tags"
check_target notags b "$notags" "" no
rep nochange "${CROSS[@]}" --json --storage-class STANDARD_IA "s3://$src" "s3://$cross"
check "a second run copies nothing ($(jget "$T_TMP/nochange.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/nochange.out" 'd["objects_copied"]')" = 0

# ---- --verify --deep compares tags (reading them only where the GET replies' tag counts do not decide)
rep deep "${CROSS[@]}" --verify --deep "s3://$src" "s3://$cross"
expect_rc deep 0 "--verify --deep of the cross backup (content and tags equal)"
rep deepnt "${CROSS[@]}" --verify --deep --no-tags "s3://$src" "s3://$notags"
expect_rc deepnt 0 "--verify --deep --no-tags of the --no-tags backup"
rep deepn "${CROSS[@]}" --verify --deep "s3://$src" "s3://$notags"
expect_rc deepn 5 "--verify --deep of the --no-tags backup: its objects lack the tags"
check "it names tags as the difference" grep -q 'tags differ (--deep: 3 on the source, 0 on the target)'   "$T_TMP/deepn.out"
aws_on b s3api put-object-tagging --bucket "$cross" --key tagged/small.txt   --tagging '{"TagSet":[{"Key":"team","Value":"ops"},{"Key":"note","Value":"a b+c"},{"Key":"empty","Value":""}]}' || die "put-object-tagging"
rep deepv "${CROSS[@]}" --verify --deep "s3://$src" "s3://$cross"
expect_rc deepv 5 "--verify --deep after one tag value was changed in the target"
check "it names the changed tag set" grep -q 'tags differ (--deep: source ".*team=web.*", target ".*team=ops'   "$T_TMP/deepv.out"
aws_on b s3api put-object-tagging --bucket "$cross" --key tagged/small.txt   --tagging '{"TagSet":[{"Key":"team","Value":"web"},{"Key":"note","Value":"a b+c"},{"Key":"empty","Value":""}]}' || die "put-object-tagging"

# ---- a restore gives the tags back
back=$(bucket restored)
mkbucket a "$back"
rep restore --source-endpoint "$RGW_B_ENDPOINT" --target-endpoint "$RGW_A_ENDPOINT" --source-profile b \
  --target-profile a --restore "s3://$cross" "s3://$back"
expect_rc restore 0 "restore of the cross backup into a fresh bucket"
check_target restore a "$back" "" yes
rep badclass "${SAME[@]}" --storage-class 'not a class' "s3://$src" "s3://$same"
expect_rc badclass 2 "--storage-class with a malformed name is a usage error"
finish
