#!/usr/bin/env bash
# Immutable backups (issue 14, --retain): on target buckets created with Object Lock, checked with awscli
# (s3check locks: a HEAD of every version; awscli 2.9 cannot parse RGW's get-object-retention dates):
#   - same endpoint (CopyObject, UploadPartCopy above --copy-threshold) and cross (PutObject, piped multipart):
#     every version written, and the run's manifest, has mode GOVERNANCE and a retain-until date DURATION after
#     the write; the lease's versions have none (it is overwritten by every renewal)
#   - a locked version cannot be deleted with the backup's credentials; a second run (the lease taken again on a
#     locked bucket, a changed object written as a new version) works and locks the new version too
#   - --retain-mode compliance sets COMPLIANCE, which not even a governance bypass lifts
#   - a target without Object Lock is refused (exit 3) before anything is written, dry runs too; a bad DURATION
#     or mode, and --retain with --restore, are usage errors (exit 2)
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b

src=$(bucket src)
aws_on a s3api create-bucket --bucket "$src" >/dev/null || die "create-bucket"
s3tool_on a fill "$src" small/ 5 0 2048 7 || die "fill"
s3tool_on a put "$src" big/twelve.bin $((12 * MiB)) 8 || die "put"
printf 'tagged\n' >"$T_TMP/t"
aws_on a s3api put-object --bucket "$src" --key tagged.txt --body "$T_TMP/t" --tagging 'a=b' >/dev/null || die "put"
NOBJ=7

locked_bucket() { # SIDE NAME: a bucket created with Object Lock (and so versioned)
  aws_on "$1" s3api create-bucket --bucket "$2" --object-lock-enabled-for-bucket >/dev/null ||
    die "cannot create the Object Lock bucket $2 on $1"
}
# lock_of SIDE BUCKET KEY VERSION: "MODE UNTIL" (unix seconds), "none 0" without retention
lock_of() {
  aws_on "$1" s3api head-object --bucket "$2" --key "$3" --version-id="$4" --output json >"$T_TMP/head.json" ||
    { echo "error 0"; return; }
  jget "$T_TMP/head.json" '(d.get("ObjectLockMode") or "none") + " " + str(int(__import__("datetime").datetime.fromisoformat(d["ObjectLockRetainUntilDate"]).timestamp()) if d.get("ObjectLockRetainUntilDate") else "0")'
}
# check_locked NAME SIDE BUCKET MODE SECONDS T0 T1: every data and manifest version is locked in MODE until
# between T0 + SECONDS and T1 + SECONDS (T0, T1: before and after the run); the lease's versions are not locked
check_locked() {
  local n=$1 side=$2 b=$3 mode=$4 secs=$5 t0=$6 t1=$7 key vid got m u data=0 manifests=0 leases=0 wrong=()
  s3check locks "$side" "$(side_endpoint "$side")" "$b" >"$T_TMP/locks-$n.tsv" ||
    { bad "$n: listing the versions and their locks failed"; return; }
  while IFS=$'\t' read -r key vid m u; do
    got="$m $u"
    case $key in
      .replicate/lease*)
        leases=$((leases + 1))
        [ "$m" = none ] || wrong+=("$key $vid: $got (the lease must not be locked)")
        ;;
      .replicate/manifests/* | [!.]*)
        case $key in .replicate/*) manifests=$((manifests + 1)) ;; *) data=$((data + 1)) ;; esac
        if [ "$m" != "$mode" ] || [ "$u" -lt $((t0 + secs)) ] || [ "$u" -gt $((t1 + secs + 2)) ]; then
          wrong+=("$key $vid: $got, expected $mode until $((t0 + secs))..$((t1 + secs + 2))")
        fi
        ;;
    esac
  done <"$T_TMP/locks-$n.tsv"
  if [ ${#wrong[@]} -eq 0 ] && [ "$data" -ge "$NOBJ" ] && [ "$manifests" -ge 1 ] && [ "$leases" -ge 1 ]; then
    ok "$n: all $data object versions and $manifests manifest(s) are locked ($mode, until now + ${secs}s); the $leases lease versions are not"
  else
    bad "$n: $data object versions, $manifests manifests, $leases lease versions; wrong:"
    printf '%s\n' "${wrong[@]}" | head -n 12 | indent
  fi
}
version_of() { aws_on "$1" s3api head-object --bucket "$2" --key "$3" --query VersionId --output text; }

# ---- same endpoint: CopyObject, UploadPartCopy for the 12 MiB object
same=$(bucket same)
locked_bucket a "$same"
t0=$(date +%s)
rep same "${SAME[@]}" --copy-threshold 10MiB --retain 1d "s3://$src" "s3://$same"
t1=$(date +%s)
expect_rc same 0 "same endpoint, --retain 1d (CopyObject; UploadPartCopy above 10 MiB)"
check_locked same a "$same" GOVERNANCE 86400 "$t0" "$t1"
got=$(aws_on a s3api get-object-tagging --bucket "$same" --key tagged.txt --query 'TagSet[0].Value' --output text)
check "same: the tags arrived too ($got)" test "$got" = b

# ---- cross endpoint: PutObject, piped multipart
cross=$(bucket cross)
locked_bucket b "$cross"
t0=$(date +%s)
rep cross "${CROSS[@]}" --retain 1d --retain-mode governance "s3://$src" "s3://$cross"
t1=$(date +%s)
expect_rc cross 0 "cross endpoint, --retain 1d --retain-mode governance (PutObject; piped multipart)"
check_locked cross b "$cross" GOVERNANCE 86400 "$t0" "$t1"

# ---- the backup's own credentials cannot destroy a locked version
for k in small/000003 big/twelve.bin; do
  v=$(version_of b "$cross" "$k")
  aws_on b s3api delete-object --bucket "$cross" --key "$k" --version-id="$v" >"$T_TMP/del.out" 2>&1
  check "cross: deleting $k version $v with the backup's credentials fails with AccessDenied" \
    grep -q AccessDenied "$T_TMP/del.out"
  check "cross: $k version $v is still there" test "$(lock_of b "$cross" "$k" "$v")" != "error 0"
done

# ---- a second run: the lease on a locked bucket is taken again; a changed object becomes a new locked version
printf 'changed\n' >"$T_TMP/c"
aws_on a s3api put-object --bucket "$src" --key small/000001 --body "$T_TMP/c" >/dev/null || die "put"
t0=$(date +%s)
rep again "${CROSS[@]}" --retain 2h --json "s3://$src" "s3://$cross"
t1=$(date +%s)
expect_rc again 0 "a second run into the locked bucket (lease taken again)"
check "it copied the one changed object ($(jget "$T_TMP/again.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/again.out" 'd["objects_copied"]')" = 1
got=$(jget "$T_TMP/again.out" 'd["retain"]["mode"] + " " + str(d["retain"]["seconds"])')
check "its --json summary says how versions are locked ($got)" test "$got" = "GOVERNANCE 7200"
got=$(lock_of b "$cross" small/000001 "$(version_of b "$cross" small/000001)")
u=${got#* }
check "the new version of small/000001 is locked for 2h ($got)" \
  test "${got% *}" = GOVERNANCE -a "$u" -ge $((t0 + 7200)) -a "$u" -le $((t1 + 7202))
n=$(aws_on b s3api list-object-versions --bucket "$cross" --prefix small/000001 --query 'length(Versions)' --output text)
check "small/000001 now has 2 versions ($n)" test "$n" = 2

# ---- compliance
comp=$(bucket comp)
locked_bucket b "$comp"
t0=$(date +%s)
rep comp "${CROSS[@]}" --retain 2m --retain-mode compliance "s3://$src" "s3://$comp"
t1=$(date +%s)
expect_rc comp 0 "cross endpoint, --retain 2m --retain-mode compliance"
check_locked comp b "$comp" COMPLIANCE 120 "$t0" "$t1"
v=$(version_of b "$comp" small/000002)
aws_on b s3api delete-object --bucket "$comp" --key small/000002 --version-id="$v" --bypass-governance-retention \
  >"$T_TMP/del.out" 2>&1
check "comp: not even a governance bypass deletes a COMPLIANCE version (AccessDenied)" grep -q AccessDenied "$T_TMP/del.out"

# ---- a target without Object Lock: refused before anything is written
plain=$(bucket plain)
mkbucket b "$plain" --versioned
rep plain "${CROSS[@]}" --retain 1d "s3://$src" "s3://$plain"
expect_rc plain 3 "a versioned target without Object Lock is refused"
check "the refusal says what to do" grep -q 'Object Lock is not enabled on the target.*--object-lock-enabled-for-bucket' \
  <(tr '\n' ' ' <"$T_TMP/plain.err")
# shellcheck disable=SC2016 # a JMESPath literal, not a shell expansion
n=$(aws_on b s3api list-object-versions --bucket "$plain" --query 'length(Versions || `[]`)' --output text)
check "nothing was written to it, not even the marker or the lease ($n versions)" test "$n" = 0
rep plaindry "${CROSS[@]}" --retain 1d --dry-run "s3://$src" "s3://$plain"
expect_rc plaindry 3 "a dry run with --retain is refused there too"

# ---- usage errors
for bad_args in "--retain 30" "--retain 1x" "--retain 30s" "--retain 1d --retain-mode legal-hold" "--retain-mode compliance"; do
  # shellcheck disable=SC2086 # the options are split on purpose
  rep usage "${CROSS[@]}" $bad_args "s3://$src" "s3://$cross"
  expect_rc usage 2 "$bad_args is a usage error"
done
rep restore --restore --retain 1d "${CROSS[@]}" "s3://$cross" "s3://$plain"
expect_rc restore 2 "--retain with --restore is a usage error (a restore must not lock a live bucket)"
check "and says why" grep -q 'must not lock' "$T_TMP/restore.err"
finish
