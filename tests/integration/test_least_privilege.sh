#!/usr/bin/env bash
# Least privilege (issue 16): two RGW users that have only the rights of the policy documents in scripts/iam/
# (granted as bucket policies, with the buckets' owner as the administrator), one for the source (read-only),
# one for the target (list, read, write, multipart; no delete, no lifecycle, no versioning change). A backup, a
# no-change run, --verify, --status, a restore drill, a restore (read with the target's rights) and a --retain
# backup into a bucket with Object Lock all succeed with them. The same backup with a source credential that may write is still never seen writing to the source
# (RGW's request log).
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init log radosgw-admin

conf=$RGW_STATE_DIR/a/ceph.conf
[ -f "$conf" ] || die "no RGW configuration at $conf"
users() { # UID KEY SECRET
  radosgw-admin -c "$conf" user create --uid="$1" --display-name="replicate test $1" --access-key="$2" \
    --secret="$3" >/dev/null 2>&1 || radosgw-admin -c "$conf" user info --uid="$1" >/dev/null 2>&1
}
ro_ak=RO${T_RUN//-/}X ro_sk=readonly-secret-$T_RUN rw_ak=RW${T_RUN//-/}X rw_sk=readwrite-secret-$T_RUN
require "an RGW user for the source (read-only policy)" users "src-ro-$T_RUN" "$ro_ak" "$ro_sk"
require "an RGW user for the target (target policy)" users "dst-rw-$T_RUN" "$rw_ak" "$rw_sk"
cat >>"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[src-ro]
aws_access_key_id = $ro_ak
aws_secret_access_key = $ro_sk
[dst-rw]
aws_access_key_id = $rw_ak
aws_secret_access_key = $rw_sk
EOF

src=$(bucket src) dst=$(bucket dst) back=$(bucket restored)
aws_on a s3api create-bucket --bucket "$src" >/dev/null || die "create-bucket"
s3tool_on a fill "$src" data/ 120 0 4096 31 || die "fill"
s3tool_on a put "$src" big/twelve.bin $((12 * 1024 * 1024)) 32 || die "put"
printf 'tagged\n' >"$T_TMP/t"
aws_on a s3api put-object --bucket "$src" --key tagged.txt --body "$T_TMP/t" --tagging 'a=b' >/dev/null || die "put"
mkbucket a "$dst" --versioned
mkbucket a "$back"

# the policy documents as bucket policies for the two users
grant() { # POLICY-FILE BUCKET PLACEHOLDER USER
  python3 - "$1" "$2" "$3" "arn:aws:iam:::user/$4" >"$T_TMP/policy-$2.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
for st in p["Statement"]:
    st["Principal"] = {"AWS": [sys.argv[4]]}
    st["Resource"] = st["Resource"].replace(sys.argv[3], sys.argv[2])
print(json.dumps(p))
PY
  aws_on a s3api put-bucket-policy --bucket "$2" --policy "file://$T_TMP/policy-$2.json"
}
require "the source policy is set on s3://$src" grant scripts/iam/replicate-source-policy.json "$src" SOURCE-BUCKET "src-ro-$T_RUN"
require "the target policy is set on s3://$dst" grant scripts/iam/replicate-target-policy.json "$dst" TARGET-BUCKET "dst-rw-$T_RUN"
check "the read-only user cannot write to the source (PutObject refused)" \
  bash -c "! AWS_PROFILE=src-ro /usr/bin/aws --endpoint-url '$RGW_A_ENDPOINT' s3api put-object --bucket '$src' --key x --body '$T_TMP/t' >/dev/null 2>&1"
check "the target user cannot delete in the target (DeleteObject refused)" \
  bash -c "! AWS_PROFILE=dst-rw /usr/bin/aws --endpoint-url '$RGW_A_ENDPOINT' s3api delete-object --bucket '$dst' --key .replicate/marker >/dev/null 2>&1"

LP=(--endpoint "$RGW_A_ENDPOINT" --source-profile src-ro --target-profile dst-rw)
rep backup "${LP[@]}" --json "s3://$src" "s3://$dst"
expect_rc backup 0 "a backup with only the documented rights"
check "it copied all 122 objects ($(jget "$T_TMP/backup.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/backup.out" 'd["objects_copied"]')" = 122
# (objects written by the target user are its own: the buckets' owner may not read their tags on RGW)
got=$(/usr/bin/aws --profile dst-rw --endpoint-url "$RGW_A_ENDPOINT" s3api get-object-tagging --bucket "$dst" \
  --key tagged.txt --query 'TagSet[0].Value' --output text)
check "tags arrived ($got)" test "$got" = b
rep nochange "${LP[@]}" --json "s3://$src" "s3://$dst"
expect_rc nochange 0 "a no-change run"
check "it copied nothing ($(jget "$T_TMP/nochange.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/nochange.out" 'd["objects_copied"]')" = 0
rep verify "${LP[@]}" --verify "s3://$src" "s3://$dst"
expect_rc verify 0 "--verify"
rep status --endpoint "$RGW_A_ENDPOINT" --profile dst-rw --status --max-age 1h "s3://$dst"
expect_rc status 0 "--status --max-age 1h with the target's rights"
rep drill --endpoint "$RGW_A_ENDPOINT" --profile dst-rw --restore-drill "s3://$dst"
expect_rc drill 0 "--restore-drill with the target's rights (its record is a PutObject)"
rep restore --endpoint "$RGW_A_ENDPOINT" --source-profile dst-rw --target-profile a --restore --json \
  "s3://$dst" "s3://$back"
expect_rc restore 0 "a restore reading the backup with the target's rights"
check "it restored all 122 objects ($(jget "$T_TMP/restore.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/restore.out" 'd["objects_copied"]')" = 122

# --retain with the same rights (s3:GetBucketObjectLockConfiguration, s3:PutObjectRetention), into a bucket
# created with Object Lock: every version locked. (RGW 16 refuses GetObjectLockConfiguration without its right,
# but lets an object's owner set its retention without s3:PutObjectRetention: that one is from AWS's docs.)
locked=$(bucket locked)
aws_on a s3api create-bucket --bucket "$locked" --object-lock-enabled-for-bucket >/dev/null || die "create-bucket"
require "the target policy is set on s3://$locked" grant scripts/iam/replicate-target-policy.json "$locked" TARGET-BUCKET "dst-rw-$T_RUN"
rep retain "${LP[@]}" --copy-threshold 10MiB --retain 1d "s3://$src" "s3://$locked"
expect_rc retain 0 "a --retain backup with only the documented rights (CopyObject, UploadPartCopy, PutObjectRetention)"
for k in big/twelve.bin tagged.txt; do
  got=$(/usr/bin/aws --profile dst-rw --endpoint-url "$RGW_A_ENDPOINT" s3api head-object --bucket "$locked" --key "$k" \
    --query ObjectLockMode --output text)
  check "$k is locked ($got)" test "$got" = GOVERNANCE
done

# a source credential that may write: still no write to the source
dst2=$(bucket dst2)
mkbucket a "$dst2" --versioned
mark=$(log_mark a)
rep writable "${SAME[@]}" "s3://$src" "s3://$dst2"
expect_rc writable 0 "a backup whose source credential may write"
log_sync a "$src"
writes=$(log_writes a "$mark" "$src")
if [ -z "$writes" ]; then ok "no PUT, POST or DELETE reached the source (RGW's log)"; else
  bad "the source was written to:"; head -n 5 <<<"$writes" | indent; fi
finish
