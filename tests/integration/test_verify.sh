#!/usr/bin/env bash
# --verify and --status against real RGW servers (run by scripts/check.sh, which sets RGW_A_*, RGW_B_*,
# RGW_REGION and REPLICATE). Replicates a 30-object bucket, then:
#   - --verify exits 0 on a faithful replica;
#   - after tampering with the target through awscli (one object overwritten with other bytes of the same size,
#     one deleted, one added) --verify exits 5 and names exactly those three: missing, different, extra;
#     it shows whether the plain audit catches the same-size edit by ETag and that --deep catches it by content;
#   - --status reports the run, --max-age passes for a fresh run and fails (6) for an old one, a target without
#     manifests gives 6, and corrupt or truncated manifests are named and skipped;
#   - a cross-endpoint replica (A -> B, separate profiles) verifies clean although the multipart object's ETag
#     differs between the sides: from the local state, from the target's own manifests (empty state dir), and
#     from the source ETag recorded on the object when no manifest is left; and a recorded version removed
#     from that target is reported as a lost version.
# Exit 0 pass, 77 skip, anything else fail. Buckets get unique names and are left in place (the servers are
# throwaway); local files live in a temporary directory removed at exit.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init jq

# replicate on endpoint A with profile a (rep_a), or source on A and target on B with separate profiles
# (rep_x): output in $T_TMP/v.out and v.err, exit code in $REP_RC
rep_a() { run_rep v --endpoint "$RGW_A_ENDPOINT" --profile a --no-progress "$@"; }
rep_x() {
  run_rep v --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$RGW_B_ENDPOINT" \
    --source-profile a --target-profile b --no-progress "$@"
}
jqo() { jq -r "$@" "$T_TMP/v.out"; }

id=$$-$(date +%s)
src=rv-src-$id dst=rv-dst-$id empty=rv-empty-$id dstx=rv-dstx-$id
state=$STATE

# ---- the source: 29 small objects and one of 9 MiB written with a single PUT (a plain MD5 ETag)
mkdir -p "$T_TMP/data/data" "$T_TMP/data/photos"
for i in $(seq -w 1 24); do printf 'object %s of the verify test\n' "$i" >"$T_TMP/data/data/obj-$i.txt"; done
for i in 1 2 3 4; do head -c $((1000 + i * 777)) /dev/urandom >"$T_TMP/data/photos/p $i.bin"; done
printf 'unicode key\n' >"$T_TMP/data/data/caf$(printf '\xc3\xa9')-+%.txt"
head -c $((9 * 1024 * 1024)) /dev/urandom >"$T_TMP/big.bin"
aws_on a s3api create-bucket --bucket "$src" >/dev/null || die "cannot create bucket $src on A"
aws_on a s3 cp --recursive --quiet "$T_TMP/data" "s3://$src/" || die "uploading the source"
aws_on a s3api put-object --bucket "$src" --key big/large.bin --body "$T_TMP/big.bin" >/dev/null ||
  die "uploading the large object"
n_src=$(aws_on a s3api list-objects-v2 --bucket "$src" --query 'length(Contents)' --output text)
check "source holds 30 objects (has $n_src)" test "$n_src" = 30

aws_on a s3api create-bucket --bucket "$dst" >/dev/null &&
  aws_on a s3api put-bucket-versioning --bucket "$dst" --versioning-configuration Status=Enabled ||
  die "cannot create the versioned target $dst"

# ---- replicate, then a clean audit
rep_a --settle 0 --state-dir "$state" "s3://$src" "s3://$dst"
expect_rc v 0 "replicate s3://$src -> s3://$dst"

rep_a --verify --state-dir "$state" "s3://$src" "s3://$dst"
expect_rc v 0 "--verify after the replication"
check "--verify says ok" grep -q '^verify: ok' "$T_TMP/v.out"

rep_a --verify --json --state-dir "$T_TMP/empty-state-1" "s3://$src" "s3://$dst"
expect_rc v 0 "--verify --json with an empty state dir (manifests read from the target)"
check "JSON: 30 objects on both sides, none missing/different" \
  test "$(jqo '[.source_objects,.target_objects,.compared,.missing,.different,.extra,.lost_versions]|join(" ")')" = "30 30 30 0 0 0 0"
check "JSON: target versioning Enabled" test "$(jqo .target_versioning)" = Enabled
check "JSON: a manifest from the target was loaded" test "$(jqo '[.manifests.loaded[]|select(.from=="target")]|length')" -ge 1
# the versions the run recorded (RGW 16.2 names no version in its CopyObject reply, so a server-side run may
# record none; the check must then cover exactly the records that have one)
recorded_versions() { jq -r 'select(.t=="object" and .version_id != null)|.version_id' "$@" | wc -l; }
vrec=$(recorded_versions "$state"/*/manifests/*.jsonl)
vchecked=$(jqo .manifests.versions_checked)
check "JSON: every recorded version exists (recorded $vrec, checked $vchecked)" test "$vchecked" = "$vrec"
check "JSON: versions lost 0, records without a version id reported ($(jqo .manifests.records_without_version))" \
  test "$(jqo '.manifests.records_without_version + .manifests.versions_checked')" -ge 30

# ---- --status right after the run
rep_a --status "s3://$dst"
expect_rc v 0 "--status"
run_id=$(ls "$state"/*/manifests/ | sed -n 's/\.jsonl$//p' | head -n 1)
check "--status names the run $run_id" grep -q "last run: $run_id" "$T_TMP/v.out"
check "--status shows result ok" grep -Eq '^  result: +ok' "$T_TMP/v.out"
check "--status shows when it ended" grep -Eq '^  ended: .* UTC \(.* ago\)' "$T_TMP/v.out"
check "--status shows 30 objects copied" grep -Eq '^  copied: +30 objects' "$T_TMP/v.out"
rep_a --status --max-age 1h "s3://$dst"
expect_rc v 0 "--status --max-age 1h on a fresh backup"
rep_a --status --json "s3://$dst"
expect_rc v 0 "--status --json"
check "--status --json: last run ok, 30 objects copied" \
  test "$(jqo '[.last_run.run_id,.last_run.result,.last_run.objects_copied]|join(" ")')" = "$run_id ok 30"
check "--status --json: passes and gap reported" test "$(jqo '.last_run.passes >= 1 and .last_run.gap_seconds >= 0')" = true
check "--status --json: bytes copied = 9 MiB + the small objects" test "$(jqo .last_run.bytes_copied)" -gt $((9 * 1024 * 1024))
sleep 2
rep_a --status --max-age 1s "s3://$dst"
expect_rc v 6 "--status --max-age 1s two seconds after the run"
check "--status says STALE" grep -q 'STALE' "$T_TMP/v.out"

aws_on a s3api create-bucket --bucket "$empty" >/dev/null
rep_a --status "s3://$empty"
expect_rc v 6 "--status on a target with no manifests"
rep_a --status --max-age 1h --json "s3://$empty"
expect_rc v 6 "--status --max-age 1h --json on a target with no manifests"
check "--status --json: no last run" test "$(jqo .last_run)" = null

# ---- tamper with the target (the test harness does this with awscli, not the tool)
size05=$(stat -c %s "$T_TMP/data/data/obj-05.txt")
printf 'OBJECT 05 OF THE VERIFY TEST\n' >"$T_TMP/tampered"
check "the tampered body has the same size" test "$(stat -c %s "$T_TMP/tampered")" = "$size05"
aws_on a s3api put-object --bucket "$dst" --key data/obj-05.txt --body "$T_TMP/tampered" >/dev/null
aws_on a s3api delete-object --bucket "$dst" --key data/obj-10.txt >/dev/null # a delete marker: versioned target
printf 'not from the source\n' >"$T_TMP/extra"
aws_on a s3api put-object --bucket "$dst" --key data/extra-added.txt --body "$T_TMP/extra" >/dev/null

rep_a --verify --json --state-dir "$state" "s3://$src" "s3://$dst"
expect_rc v 5 "--verify after tampering"
check "names exactly one missing: data/obj-10.txt" \
  test "$(jqo '[.discrepancies[]|select(.kind=="missing")|.source_key]|join(",")')" = data/obj-10.txt
check "names exactly one different: data/obj-05.txt" \
  test "$(jqo '[.discrepancies[]|select(.kind=="different")|.target_key]|join(",")')" = data/obj-05.txt
check "no other discrepancy" test "$(jqo '.discrepancies|length')" = 2
check "names exactly one extra (informational): data/extra-added.txt" \
  test "$(jqo '[.extra_in_target[]|.target_key]|join(",")')" = data/extra-added.txt
how=$(jqo '.discrepancies[]|select(.kind=="different")|.detail')
if [[ $how == *"ETag differs"* ]]; then
  ok "plain --verify catches the same-size edit by its ETag: $how"
else
  bad "plain --verify: unexpected reason for data/obj-05.txt: $how"
fi
rep_a --verify --state-dir "$state" "s3://$src" "s3://$dst"
expect_rc v 5 "--verify (human summary) after tampering"
check "summary lists the missing object" grep -Eq '^  missing +data/obj-10.txt' "$T_TMP/v.out"
check "summary lists the different object" grep -Eq '^  different +data/obj-05.txt: ETag differs' "$T_TMP/v.out"
check "summary lists the extra object" grep -Eq '^  extra +data/extra-added.txt' "$T_TMP/v.out"
check "summary says DISCREPANCIES" grep -q '^verify: DISCREPANCIES' "$T_TMP/v.out"

rep_a --verify --deep --json --state-dir "$state" "s3://$src" "s3://$dst"
expect_rc v 5 "--verify --deep after tampering"
how=$(jqo '.discrepancies[]|select(.kind=="different" and .target_key=="data/obj-05.txt")|.detail')
if [[ $how == *"content differs"* ]]; then
  ok "--deep catches the same-size edit by content: $how"
else
  bad "--deep: unexpected reason for data/obj-05.txt: $how"
fi
check "--deep: the same three findings" \
  test "$(jqo '[(.discrepancies[]|.kind+":"+(.source_key//.target_key)),(.extra_in_target[]|"extra:"+.target_key)]|sort|join(" ")')" \
  = "different:data/obj-05.txt extra:data/extra-added.txt missing:data/obj-10.txt"
check "--deep read the 29 objects present on both sides" test "$(jqo .deep.objects_read)" = 29
check "--deep: 28 with identical content" test "$(jqo .deep.identical)" = 28

rep_a --verify --deep --sample 30 --json --state-dir "$state" "s3://$src" "s3://$dst"
expect_rc v 5 "--verify --deep --sample 30"
n=$(jqo .deep.objects_read)
check "--sample 30 read fewer objects than all 29 (read $n)" test "$n" -lt 29

# ---- corrupt and truncated manifests in the target are named and skipped
printf '{"t":"header", this is not json\n\x00\x01garbage' >"$T_TMP/corrupt.jsonl"
aws_on a s3api put-object --bucket "$dst" --key .replicate/manifests/29991231T235958Z-dead.jsonl \
  --body "$T_TMP/corrupt.jsonl" >/dev/null
full=$(ls "$state"/*/manifests/"$run_id".jsonl)
head -c $(($(stat -c %s "$full") - 20)) "$full" | sed "s/$run_id/29991231T235959Z-cut0/" >"$T_TMP/truncated.jsonl"
aws_on a s3api put-object --bucket "$dst" --key .replicate/manifests/29991231T235959Z-cut0.jsonl \
  --body "$T_TMP/truncated.jsonl" >/dev/null
rep_a --status --max-age 1h "s3://$dst"
expect_rc v 0 "--status --max-age 1h with a corrupt and a truncated manifest newer than the good one"
check "--status names the corrupt manifest" grep -q '29991231T235958Z-dead.jsonl is corrupt or truncated' "$T_TMP/v.err"
check "--status reports the truncated run as unfinished" grep -Eq '^  result: +unfinished' "$T_TMP/v.out"
check "--status still finds the last successful run $run_id" grep -q "last successful run: $run_id" "$T_TMP/v.out"
rep_a --verify --json --state-dir "$T_TMP/empty-state-2" "s3://$src" "s3://$dst"
expect_rc v 5 "--verify with corrupt manifests in the target (same findings)"
check "--verify names the corrupt manifest" grep -q '29991231T235958Z-dead.jsonl is corrupt or truncated' "$T_TMP/v.err"
check "--verify: still exactly missing and different" \
  test "$(jqo '[.discrepancies[]|.kind+":"+(.source_key//.target_key)]|sort|join(" ")')" \
  = "different:data/obj-05.txt missing:data/obj-10.txt"

# ---- cross-endpoint: A -> B with separate profiles; the 9 MiB object becomes multipart in the target
if [ -z "${RGW_B_ENDPOINT:-}" ]; then
  say "note: RGW_B_ENDPOINT is not set: the cross-endpoint part is skipped"
else
  aws_on b s3api create-bucket --bucket "$dstx" >/dev/null &&
    aws_on b s3api put-bucket-versioning --bucket "$dstx" --versioning-configuration Status=Enabled ||
    die "cannot create the versioned target $dstx on B"
  rep_x --settle 0 --state-dir "$T_TMP/state-x" "s3://$src" "s3://$dstx"
  expect_rc v 0 "cross-endpoint replicate A:s3://$src -> B:s3://$dstx"
  e_src=$(aws_on a s3api head-object --bucket "$src" --key big/large.bin --query ETag --output text)
  e_dst=$(aws_on b s3api head-object --bucket "$dstx" --key big/large.bin --query ETag --output text)
  check "the large object's ETag differs between the sides ($e_src vs $e_dst)" test "$e_src" != "$e_dst"

  rep_x --verify --json --state-dir "$T_TMP/state-x" "s3://$src" "s3://$dstx"
  expect_rc v 0 "cross-endpoint --verify (local state)"
  check "the ETag difference is explained by the manifest" test "$(jqo .etag_check.explained_by_manifest)" -ge 1
  rep_x --verify --json --state-dir "$T_TMP/empty-state-3" "s3://$src" "s3://$dstx"
  expect_rc v 0 "cross-endpoint --verify (no local state: manifests from the target)"
  check "explained by the target's manifest" test "$(jqo .etag_check.explained_by_manifest)" -ge 1
  vrec=$(recorded_versions "$T_TMP"/state-x/*/manifests/*.jsonl)
  check "the streamed copies recorded their versions ($vrec)" test "$vrec" = 30
  check "all $vrec recorded versions exist in the target" test "$(jqo .manifests.versions_checked)" = "$vrec"
  rep_x --verify --deep --state-dir "$T_TMP/empty-state-3" "s3://$src" "s3://$dstx"
  expect_rc v 0 "cross-endpoint --verify --deep"

  # a recorded version removed (the harness overwrites data/obj-07.txt, then deletes the version the run wrote)
  ver07=$(jq -r 'select(.t=="object" and .key=="data/obj-07.txt")|.version_id // empty' \
    "$T_TMP"/state-x/*/manifests/*.jsonl)
  if [ -z "$ver07" ]; then
    bad "the cross-endpoint manifest records no version id for data/obj-07.txt"
  else
    printf 'replaced on the target by the test\n' >"$T_TMP/new07"
    aws_on b s3api put-object --bucket "$dstx" --key data/obj-07.txt --body "$T_TMP/new07" >/dev/null
    aws_on b s3api delete-object --bucket "$dstx" --key data/obj-07.txt --version-id="$ver07" >/dev/null
    rep_x --verify --json --state-dir "$T_TMP/empty-state-5" "s3://$src" "s3://$dstx"
    expect_rc v 5 "--verify after a recorded version was removed from the target"
    check "names data/obj-07.txt as different and its recorded version as lost" \
      test "$(jqo '[.discrepancies[]|.kind+":"+.target_key]|sort|join(" ")')" \
      = "different:data/obj-07.txt lost-version:data/obj-07.txt"
    check "the lost version's detail names the version" \
      grep -q -- "$ver07" <(jqo '.discrepancies[]|select(.kind=="lost-version")|.detail')
  fi

  # no manifest left at all: the source ETag recorded on the object itself explains the difference
  for k in $(aws_on b s3api list-objects-v2 --bucket "$dstx" --prefix .replicate/manifests/ \
    --query 'Contents[].Key' --output text); do
    aws_on b s3api delete-object --bucket "$dstx" --key "$k" >/dev/null
  done
  rep_x --verify --json --state-dir "$T_TMP/empty-state-4" "s3://$src" "s3://$dstx"
  expect_rc v 5 "cross-endpoint --verify with no manifest anywhere (data/obj-07.txt is still different)"
  check "only data/obj-07.txt is reported" \
    test "$(jqo '[.discrepancies[]|.kind+":"+.target_key]|join(" ")')" = "different:data/obj-07.txt"
  check "the large object's ETag is explained by its x-amz-meta-replicate-source-etag" \
    test "$(jqo .etag_check.explained_by_target_metadata)" -ge 1
  rep_x --status "s3://$dstx"
  expect_rc v 6 "--status on a target whose manifests were removed"
fi

finish
