#!/usr/bin/env bash
# Restore and restore drills (issue 13) against real RGW servers, checked with /usr/bin/aws.
#   run 1 backs up the standard source (awkward keys, headers and metadata, a 20 MiB multipart object); the
#   source then changes (the multipart object and a metadata object overwritten, keys deleted, keys added) and
#   run 2 backs it up again. Then:
#   - --restore --run R1 into a fresh bucket (same endpoint, empty state dir) gives exactly run 1's source:
#     keys, sizes, content, headers, metadata, the multipart object's old version, none of the deleted-later
#     keys missing and none of the added-later ones present; no bookkeeping metadata; the backup gets no write
#   - --at between the runs picks run 1; the latest run restored cross-endpoint equals run 2's source
#   - --dry-run writes nothing; a DEST with other content is refused with nothing written (exit 3);
#     --only-missing into the changed source brings back only the deleted keys; a DEST with the marker and
#     DEST == BACKUP are refused (exit 3)
#   - kill -9 mid-restore, then the same command finishes without copying again what was done
#   - --restore-drill passes, names a recorded version deleted from the backup (exit 5); --status
#     --max-drill-age passes and fails as it should
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b

src=$(bucket src) bk=$(bucket backup)
build_source a "$src"
mkbucket a "$bk" --versioned
snapshot_bg a "$src" "$T_TMP/src1.json" "${DETAIL_KEYS[@]}"

# ---- run 1, then the source changes, then run 2
rep run1 "${SAME[@]}" --json "s3://$src" "s3://$bk"
expect_rc run1 0 "run 1 backs up s3://$src"
R1=$(jget "$T_TMP/run1.out" 'd["run_id"]')
snapshot_wait "$T_TMP/src1.json" || die "cannot snapshot the source"
sleep 1.2
AT_BETWEEN=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.2
head -c $((20 * 1024 * 1024)) /dev/urandom >"$T_TMP/big2-new"
printf '{"user": "changed"}\n' >"$T_TMP/meta2-new"
DELETED=("$KEY_SPACE" "$KEY_UNICODE" bulk/000001 bulk/000002 bulk/000003)
for i in 1 2 3; do printf 'added %s\n' "$i" >"$T_TMP/add$i"; done
{ # overwrites (a multipart one in aws s3 cp's 8 MiB parts), deletions, additions: awscli's library, one process
  tsv put "$KEY_BIG2" "$T_TMP/big2-new" PartSize=$((8 * MiB)) ContentType=application/x-new
  tsv put "$KEY_META2" "$T_TMP/meta2-new" ContentType=text/plain meta-colour=red
  for k in "${DELETED[@]}"; do tsv delete "$k"; done
  for i in 1 2 3; do tsv put "added/$i.txt" "$T_TMP/add$i" ContentType=guess; done
} | s3write a "$src" || die "changing the source"
rep run2 "${SAME[@]}" --json "s3://$src" "s3://$bk"
expect_rc run2 0 "run 2 backs up the changed source"
R2=$(jget "$T_TMP/run2.out" 'd["run_id"]')
snapshot_bg a "$src" "$T_TMP/src2.json" "${DETAIL_KEYS[@]}"
check "run 2's manifest names a version for every object (no-change objects too)" s3check manifest-versions "$STATE" "$R2"

# ---- restore run 1 into a fresh bucket, same endpoint, empty state dir
d1=$(bucket restore1)
mkbucket a "$d1"
mark=$(log_mark a)
STATE_SAVED=$STATE STATE=$T_TMP/state-fresh
rep restore1 "${SAME[@]}" --restore --run "$R1" --json "s3://$bk" "s3://$d1"
STATE=$STATE_SAVED
expect_rc restore1 0 "restore --run $R1 into s3://$d1 (fresh state dir)"
log_sync a "$bk"
writes=$(log_writes a "$mark" "$bk")
if [ -z "$writes" ]; then ok "the backup received no write during the restore (RGW's log)"; else
  bad "the restore wrote to the backup:"; head -n 5 <<<"$writes" | indent; fi
check "restore 1 copied every object of run 1 ($(jget "$T_TMP/restore1.out" 'd["objects_copied"]'))" \
  test "$(jget "$T_TMP/restore1.out" 'd["objects_copied"]')" = "$SRC_COUNT"
snapshot a "$d1" "$T_TMP/d1.json" "${DETAIL_KEYS[@]}" >/dev/null || die "snapshot d1"
check "the restore of run 1 equals the source as it was at run 1 (keys, sizes, content, headers, metadata, no bookkeeping metadata)" \
  compare_snapshots "$T_TMP/src1.json" "$T_TMP/d1.json" restored

# ---- --at between the runs picks run 1 (dry run); the latest restored cross-endpoint equals run 2's source
rep at "${SAME[@]}" --restore --at "$AT_BETWEEN" --dry-run --json "s3://$bk" "s3://$d1"
expect_rc at 0 "--restore --at $AT_BETWEEN --dry-run"
check "--at between the runs picks run 1 ($(jget "$T_TMP/at.out" 'd["run_id"]'))" test "$(jget "$T_TMP/at.out" 'd["run_id"]')" = "$R1"
check "a restore into a bucket that already holds it has nothing to copy" \
  test "$(jget "$T_TMP/at.out" '(d["objects_to_copy"], d["conflicts"])')" = "(0, 0)"
d2=$(bucket restore2)
mkbucket b "$d2"
rep restore2 "${CROSS[@]}" --restore --json "s3://$bk" "s3://$d2"
expect_rc restore2 0 "restore of the latest run, cross-endpoint (A -> B)"
check "the latest restore point is run 2 ($(jget "$T_TMP/restore2.out" 'd["run_id"]'))" \
  test "$(jget "$T_TMP/restore2.out" 'd["run_id"]')" = "$R2"
snapshot_wait "$T_TMP/src2.json" || die "snapshot src2"
snapshot b "$d2" "$T_TMP/d2.json" "${DETAIL_KEYS[@]}" >/dev/null || die "snapshot d2"
check "the cross-endpoint restore of run 2 equals run 2's source (deleted keys absent, added keys present)" \
  compare_snapshots "$T_TMP/src2.json" "$T_TMP/d2.json" restored

# ---- dry run writes nothing; conflicts refuse; --only-missing
d3=$(bucket restore3)
mkbucket a "$d3"
rep dry "${SAME[@]}" --restore --run "$R1" --dry-run --json "s3://$bk" "s3://$d3"
expect_rc dry 0 "--dry-run"
n3=$(aws_on a s3api list-objects-v2 --bucket "$d3" --query 'length(Contents || `[]`)' --output text)
check "--dry-run wrote nothing ($n3 objects in s3://$d3) and planned $SRC_COUNT copies" \
  test "$n3/$(jget "$T_TMP/dry.out" 'd["objects_to_copy"]')" = "0/$SRC_COUNT"
printf 'something else\n' >"$T_TMP/other"
aws_on a s3 cp --quiet "$T_TMP/other" "s3://$d3/$KEY_META" || die "put conflict"
rep conflict "${SAME[@]}" --restore --run "$R1" --json "s3://$bk" "s3://$d3"
expect_rc conflict 3 "a destination holding other content is refused"
n3=$(aws_on a s3api list-objects-v2 --bucket "$d3" --query 'length(Contents || `[]`)' --output text)
check "nothing was written to it ($n3 object: the conflicting one)" test "$n3" = 1
check "the conflict is named" grep -qF "$KEY_META" "$T_TMP/conflict.out"
rep onlymissing "${SAME[@]}" --restore --run "$R1" --only-missing --json "s3://$bk" "s3://$src"
expect_rc onlymissing 0 "--only-missing of run 1 into the changed source"
check "--only-missing copied exactly the ${#DELETED[@]} deleted keys ($(jget "$T_TMP/onlymissing.out" 'd["objects_copied"]')), the overwritten ones left alone" \
  test "$(jget "$T_TMP/onlymissing.out" '(d["objects_copied"], d["conflicts"])')" = "(${#DELETED[@]}, 2)"
for k in "$KEY_SPACE" "$KEY_UNICODE"; do
  check "deleted key back: $k" aws_on a s3api head-object --bucket "$src" --key "$k"
done
got=$(aws_on a s3api head-object --bucket "$src" --key "$KEY_META2" --query ContentType --output text)
check "the overwritten $KEY_META2 kept its new content ($got)" test "$got" = text/plain

# ---- refusals: a backup as destination, the backup itself
bk2=$(bucket backup2)
mkbucket a "$bk2" --versioned
rep bk2 "${SAME[@]}" "s3://$d3" "s3://$bk2"
rep marker "${SAME[@]}" --restore --run "$R1" "s3://$bk" "s3://$bk2"
expect_rc marker 3 "a destination with the replica marker (a backup) is refused"
rep self "${SAME[@]}" --restore "s3://$bk" "s3://$bk/elsewhere"
expect_rc self 3 "restoring the backup into itself is refused"

# ---- kill -9 mid-restore, then the same command completes without copying again what was done
d4=$(bucket restore4)
mkbucket b "$d4"
"$REPLICATE" --no-progress --state-dir "$STATE" "${CROSS[@]}" --restore --run "$R1" -j 1 "s3://$bk" "s3://$d4" \
  >"$T_TMP/killed.out" 2>&1 &
kpid=$!
for _ in $(seq 1 100); do
  n=$(aws_on b s3api list-objects-v2 --bucket "$d4" --no-paginate --max-keys 1000 --query 'length(Contents || `[]`)' --output text 2>/dev/null)
  [ "${n:-0}" -ge 100 ] && break
  sleep 0.2
done
kill -9 "$kpid" 2>/dev/null
wait "$kpid" 2>/dev/null
rep resumed "${CROSS[@]}" --restore --run "$R1" --json "s3://$bk" "s3://$d4"
expect_rc resumed 0 "the same restore again after kill -9"
read -r copied there < <(jget "$T_TMP/resumed.out" '"%d %d" % (d["objects_copied"], d["objects_already_there"])')
check "the second run copied only what was left ($copied copied, $there already there, $SRC_COUNT in all)" \
  test "$((copied + there))/$([ "$there" -ge 100 ] && [ "$copied" -gt 0 ] && echo y)" = "$SRC_COUNT/y"
snapshot b "$d4" "$T_TMP/d4.json" "${DETAIL_KEYS[@]}" >/dev/null || die "snapshot d4"
check "the resumed restore equals run 1's source" compare_snapshots "$T_TMP/src1.json" "$T_TMP/d4.json" restored

# ---- drills and their age
rep nodrill "${SAME[@]}" --status --max-drill-age 30d "s3://$bk"
expect_rc nodrill 6 "--status --max-drill-age before any drill"
rep drill1 "${SAME[@]}" --restore-drill --json "s3://$bk"
expect_rc drill1 0 "a drill of the latest run passes on a good backup"
check "the drill read every recorded version ($(jget "$T_TMP/drill1.out" 'd["objects_read"]'))" \
  test "$(jget "$T_TMP/drill1.out" 'd["objects_read"]')" = "$(jget "$T_TMP/restore2.out" 'd["objects_in_restore_point"]')"
rep drillage "${SAME[@]}" --status --max-drill-age 30d "s3://$bk"
expect_rc drillage 0 "--status --max-drill-age 30d after a clean drill"
check "--status shows the last drill and lists the runs" grep -q "$R1" "$T_TMP/drillage.out"
ver=$(s3check manifest-version "$STATE" "$R2" bulk/000010)
[ -n "$ver" ] || die "no recorded version of bulk/000010 in run 2's manifest"
aws_on a s3api delete-object --bucket "$bk" --key bulk/000010 --version-id="$ver" >/dev/null || die "delete a version"
rep drill2 "${SAME[@]}" --restore-drill --json "s3://$bk"
expect_rc drill2 5 "a drill after a recorded version was deleted from the backup"
check "the drill names it" grep -q "bulk/000010" "$T_TMP/drill2.out"
rep drill3 "${SAME[@]}" --restore-drill --sample 10 --json "s3://$bk"
check "a 10% sample reads fewer versions ($(jget "$T_TMP/drill3.out" 'd["objects_read"]'))" \
  test "$(jget "$T_TMP/drill3.out" 'd["objects_read"]')" -lt 500
sleep 2
rep drillold "${SAME[@]}" --status --max-drill-age 1s "s3://$bk"
expect_rc drillold 6 "--status --max-drill-age 1s when the last clean drill is older"
finish
