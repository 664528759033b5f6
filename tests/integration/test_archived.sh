#!/usr/bin/env bash
# Archived objects (issue 14): objects listed in GLACIER (a storage class scripts/rgw.sh configures; RGW lists
# it as written) are not copied, not retried, named and counted, and the run exits 1 so the gap is loud;
# --skip-archived accepts them (exit 0, still counted). An object that answers 403 InvalidObjectState (as S3
# does for GLACIER, played by the fault proxy) is handled the same way, with one GET and no retry.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

src=$(bucket src)
aws_on a s3api create-bucket --bucket "$src" >/dev/null || die "create-bucket"
printf 'cold data\n' >"$T_TMP/cold"
for k in cold/a.bin cold/b.bin; do
  aws_on a s3api put-object --bucket "$src" --key "$k" --body "$T_TMP/cold" --storage-class GLACIER >/dev/null ||
    die "put $k"
done
s3tool_on a fill "$src" warm/ 20 0 2048 5 || die "fill"
listed=$(aws_on a s3api head-object --bucket "$src" --key cold/a.bin --query StorageClass --output text)
check "RGW reports cold/a.bin as GLACIER ($listed)" test "$listed" = GLACIER

t1=$(bucket t1)
mkbucket a "$t1" --versioned
rep run1 "${SAME[@]}" --json "s3://$src" "s3://$t1"
expect_rc run1 1 "archived objects fail the run (exit 1), everything else is copied"
check "objects_archived = 2, objects_copied = 20, objects_failed = 0 ($(jget "$T_TMP/run1.out" '(d["objects_archived"], d["objects_copied"], d["objects_failed"])'))" \
  test "$(jget "$T_TMP/run1.out" '(d["objects_archived"], d["objects_copied"], d["objects_failed"])')" = "(2, 20, 0)"
check "both archived keys are named" grep -q 'archived, not copied: cold/b.bin (GLACIER)' "$T_TMP/run1.err"
check "the message says what to do" grep -q 'skip-archived' "$T_TMP/run1.err"
n=$(aws_on a s3api list-objects-v2 --bucket "$t1" --prefix cold/ --query 'length(Contents || `[]`)' --output text)
check "no archived object is in the target ($n)" test "$n" = 0
check "the manifest's trailer counts them" \
  s3check manifest-trailer "$STATE" "$(jget "$T_TMP/run1.out" 'd["run_id"]')" archived 2

rep run2 "${SAME[@]}" --skip-archived --json "s3://$src" "s3://$t1"
expect_rc run2 0 "--skip-archived accepts them"
check "still counted (objects_archived = $(jget "$T_TMP/run2.out" 'd["objects_archived"]'))" \
  test "$(jget "$T_TMP/run2.out" 'd["objects_archived"]')" = 2

# ---- a 403 InvalidObjectState from the source (S3's answer for an archived object listed as STANDARD here)
start_proxy proxy "$RGW_A_ENDPOINT" 0 --rate 0 --rule "archived:GET /$src/warm/000003" --log "$T_TMP/proxy.log"
proxy=$PROXY_URL
t2=$(bucket t2)
mkbucket b "$t2" --versioned
rep run3 --source-endpoint "$proxy" --target-endpoint "$RGW_B_ENDPOINT" --source-profile a --target-profile b \
  --json "s3://$src" "s3://$t2"
expect_rc run3 1 "a source object answering InvalidObjectState fails the run"
check "counted as archived: 3 (2 by class, 1 by reply), 19 copied ($(jget "$T_TMP/run3.out" '(d["objects_archived"], d["objects_copied"])'))" \
  test "$(jget "$T_TMP/run3.out" '(d["objects_archived"], d["objects_copied"])')" = "(3, 19)"
gets=$(grep -c "GET /$src/warm/000003" "$T_TMP/proxy.log")
check "it was asked for once, not retried ($gets GET)" test "$gets" = 1
finish
