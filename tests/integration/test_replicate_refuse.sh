#!/usr/bin/env bash
# Target safety, checked against RGW A's request log (every request line after the run started; a sync
# request makes sure RGW has written them out):
#   - swapped arguments after a good run SRC -> DST (DST -> SRC; also with --allow-unversioned and with
#     --enable-versioning): exit 3, and not one PUT/POST/DELETE to either bucket;
#   - an unversioned target: exit 3 and no write to it; with --enable-versioning the run works and the
#     bucket's versioning is Enabled;
#   - a non-empty versioned target without .replicate/marker: exit 3 and no write; with --init-target it works;
#   - the same bucket and prefix on both sides, or a target inside the source: exit 3, no write;
#   - --dry-run: exit 0, no write at all (not even the marker), and it prints every key it would copy.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init log

src=$(bucket src) dst=$(bucket dst) unv=$(bucket unversioned) nm=$(bucket nomarker) dry=$(bucket dry)
mkbucket a "$src"
s3tool_on a fill "$src" f/ 20 10 500 3 || die "s3tool fill"
mkbucket a "$dst" --versioned
mkbucket a "$unv"
mkbucket a "$nm" --versioned
mkbucket a "$dry" --versioned
printf 'already here\n' >"$T_TMP/existing"
aws_on a s3api put-object --bucket "$nm" --key existing.txt --body "$T_TMP/existing" >/dev/null ||
  die "awscli could not write to $nm"

no_writes() { # DESCRIPTION FROM BUCKET...: no PUT/POST/DELETE to the buckets in RGW A's log after line FROM
  local d=$1 from=$2 b w
  shift 2
  for b in "$@"; do log_sync a "$b"; done
  w=$(log_writes a "$from" "$@")
  if [ -z "$w" ]; then
    ok "$d: no PUT/POST/DELETE to $* in RGW's log ($(($(log_mark a) - from)) new log lines inspected)"
  else
    bad "$d: write requests reached the buckets:"
    head -n 10 <<<"$w" | sed -E 's/^.*beast: [^ ]+ //' | indent
  fi
}
refused() { # NAME DESCRIPTION BUCKETS-THAT-MUST-NOT-BE-WRITTEN -- replicate ARGS...
  local n=$1 d=$2 buckets=() mark
  shift 2
  while [ "$1" != -- ]; do buckets+=("$1"); shift; done
  shift
  mark=$(log_mark a)
  rep "$n" "$@"
  expect_rc "$n" 3 "$d is refused"
  [ "$REP_RC" -eq 3 ] && say "    says: $(grep -v '^$' "$T_TMP/$n.err" "$T_TMP/$n.out" -h | head -n 2 | tr '\n' ' ')"
  no_writes "$d" "$mark" "${buckets[@]}"
}

rep good "${SAME[@]}" --settle 0 --json "s3://$src" "s3://$dst"
expect_rc good 0 "the good run s3://$src -> s3://$dst"
check "the good run copied 20 objects ($(jget "$T_TMP/good.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/good.out" 'd["objects_copied"]')" = 20

# ---- swapped arguments
refused swap1 "swapped arguments (s3://$dst -> s3://$src)" "$src" "$dst" -- \
  "${SAME[@]}" --settle 0 "s3://$dst" "s3://$src"
refused swap2 "swapped arguments with --allow-unversioned" "$src" "$dst" -- \
  "${SAME[@]}" --settle 0 --allow-unversioned "s3://$dst" "s3://$src"
refused swap3 "swapped arguments with --enable-versioning" "$src" "$dst" -- \
  "${SAME[@]}" --settle 0 --enable-versioning "s3://$dst" "s3://$src"

# ---- an unversioned target
refused unv1 "an unversioned target (s3://$unv)" "$unv" "$src" -- "${SAME[@]}" --settle 0 "s3://$src" "s3://$unv"
rep unv2 "${SAME[@]}" --settle 0 --enable-versioning --json "s3://$src" "s3://$unv"
expect_rc unv2 0 "the unversioned target with --enable-versioning"
check "with --enable-versioning it copied 20 objects ($(jget "$T_TMP/unv2.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/unv2.out" 'd["objects_copied"]')" = 20
v=$(aws_on a s3api get-bucket-versioning --bucket "$unv" --query Status --output text)
check "awscli: versioning of s3://$unv is now Enabled ($v)" test "$v" = Enabled

# ---- a non-empty target without the marker
refused nm1 "a non-empty versioned target without .replicate/marker (s3://$nm)" "$nm" "$src" -- \
  "${SAME[@]}" --settle 0 "s3://$src" "s3://$nm"
rep nm2 "${SAME[@]}" --settle 0 --init-target --json "s3://$src" "s3://$nm"
expect_rc nm2 0 "the non-empty target with --init-target"
aws_on a s3api list-objects-v2 --bucket "$nm" --output json >"$T_TMP/nm.json"
check "awscli: s3://$nm now has .replicate/marker, existing.txt and the 20 copies" \
  python3 -c 'import json,sys
k={c["Key"] for c in json.load(open(sys.argv[1])).get("Contents") or []}
ok=".replicate/marker" in k and "existing.txt" in k and len([x for x in k if x.startswith("f/")])==20
print("    keys:", len(k), sorted(x for x in k if not x.startswith("f/"))); sys.exit(0 if ok else 1)' "$T_TMP/nm.json"

# ---- the same bucket and prefix on both sides, or overlapping
refused same1 "the same bucket on both sides (s3://$src -> s3://$src)" "$src" -- \
  "${SAME[@]}" --settle 0 --allow-unversioned "s3://$src" "s3://$src"
refused same2 "the same bucket and prefix on both sides (s3://$src/f/ -> s3://$src/f/)" "$src" -- \
  "${SAME[@]}" --settle 0 --allow-unversioned "s3://$src/f/" "s3://$src/f/"
refused same3 "a target inside the source (s3://$src -> s3://$src/backup/)" "$src" -- \
  "${SAME[@]}" --settle 0 --allow-unversioned "s3://$src" "s3://$src/backup/"

# ---- --dry-run
mark=$(log_mark a)
rep dry1 "${SAME[@]}" --settle 0 --dry-run "s3://$src" "s3://$dry"
# (--settle 0: a listing pass takes longer than that; a dry run changes nothing, so one pass is all there is)
expect_rc dry1 0 "--dry-run --settle 0 into the empty versioned s3://$dry"
no_writes "--dry-run" "$mark" "$dry" "$src"
missing=()
for i in $(seq -w 0 19); do
  grep -qF "f/0000$i" "$T_TMP/dry1.out" "$T_TMP/dry1.err" || missing+=("f/0000$i")
done
if [ ${#missing[@]} -eq 0 ]; then
  ok "--dry-run printed all 20 keys it would copy"
else
  bad "--dry-run did not print ${#missing[@]} of the 20 keys it would copy: ${missing[*]}"
  show_run dry1 20
fi
grep -hF 'f/000000' "$T_TMP/dry1.out" "$T_TMP/dry1.err" | head -n 1 | indent
# shellcheck disable=SC2016 # (a JMESPath literal)
n=$(aws_on a s3api list-objects-v2 --bucket "$dry" --query 'length(Contents || `[]`)' --output text)
check "awscli: s3://$dry is still empty after --dry-run ($n objects)" test "$n" = 0

# a target bucket that does not exist is a usage error (exit 2) for every command, with what to do
gone=$(bucket no-such-target)
rep gone "${SAME[@]}" --settle 0 "s3://$src" "s3://$gone"
expect_rc gone 2 "a backup into a missing bucket"
check "it says to create the bucket" grep -q "Create the target bucket first" "$T_TMP/gone.err"
rep gonev "${SAME[@]}" --verify "s3://$src" "s3://$gone"
expect_rc gonev 2 "--verify of a missing bucket"
rep gones "${SAME[@]}" --status "s3://$gone"
expect_rc gones 2 "--status of a missing bucket"

finish
