#!/usr/bin/env bash
# Manifests proportional to change (issue 17). A source of 2,500 small objects on A, backed up to a versioned
# bucket on B by runs with changes between them:
#   run 1 full; run 2 after adds, same-size overwrites and deletions; run 3 with no change; run 4 after more
#   deletions and adds; run 5 killed with -9 mid-way, run 6 resuming it; a run from a new host (an empty state
#   folder) after one more change.
# Checked: runs 2-4 and 6 store deltas (.replicate/manifests/RUN.jsonl.gz, "manifest_stored" in --json); the
# no-change delta holds no record and is small (bytes printed: under 16 KiB at any size, a few hundred bytes);
# --restore --run of EVERY run into a fresh bucket equals the source as it was at that run (awscli snapshots);
# --status and --verify pass over the chain; the new host's run starts from the target's run 6 (its manifest is
# a delta of one record on it) and restores exactly; with a link of the chain removed from the target (awscli), a
# restore of a run that needs it refuses and names it, a run before it still restores, and the next backup
# stores a full manifest that restores exactly. Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh disable=SC2317,SC2016
. "$(dirname "$0")/lib.sh"
lib_init b

src=$(bucket src) dst=$(bucket dst)
mkbucket a "$src"
mkbucket b "$dst" --versioned
s3tool_on a fill "$src" f/ 2500 100 600 1 || die "s3tool fill"
OPTS=(--settle 0 --json)
BSIDE=(--endpoint "$RGW_B_ENDPOINT" --profile b)
RCROSS=(--source-endpoint "$RGW_B_ENDPOINT" --target-endpoint "$RGW_A_ENDPOINT" --source-profile b --target-profile a)
declare -A RUN

stored() { jget "$T_TMP/$1.out" "d[\"manifest_stored\"][\"$2\"]"; } # RUN FIELD
backup() { # NAME: a run, its id in RUN[NAME], a snapshot of the source as it was then in $T_TMP/snap-NAME
  rep "$1" "${CROSS[@]}" "${OPTS[@]}" "s3://$src" "s3://$dst"
  expect_rc "$1" 0 "backup $1"
  RUN[$1]=$(jget "$T_TMP/$1.out" 'd["run_id"]')
  say "$1 = ${RUN[$1]}: stored $(stored "$1" key), $(stored "$1" bytes) bytes, delta $(stored "$1" delta), $(stored "$1" records) records for $(stored "$1" objects) objects, depth $(stored "$1" depth)"
  snapshot a "$src" "$T_TMP/snap-$1"
}
put_new() { # KEY...: 300-byte objects with new content (awscli's library, one process)
  local k i=0
  for k in "$@"; do
    i=$((i + 1))
    head -c 300 /dev/urandom >"$T_TMP/body$i"
    tsv put "$k" "$T_TMP/body$i"
  done | s3write a "$src" || die "put $*"
}
delete() { local k; for k in "$@"; do tsv delete "$k"; done | s3write a "$src" || die "delete $*"; }
key() { printf 'f/%06d' "$1"; } # as s3tool fill names them

backup r1
check "run 1 stores a full manifest" test "$(stored r1 delta)" = false
check "run 1's stored manifest names its 2500 objects" test "$(stored r1 objects)" = 2500

# adds, same-size overwrites, deletions
put_new n/a1 n/a2 "n/sp ace" "$(key 7)" "$(key 1200)" "$(key 2499)"
delete "$(key 3)" "$(key 1500)" "$(key 1501)"
backup r2
check "run 2 stores a delta" test "$(stored r2 delta)" = true
check "run 2's delta holds the 9 changes ($(stored r2 records))" test "$(stored r2 records)" = 9

backup r3
check "run 3 (no change) stores a delta of 0 records" test "$(stored r3 records)" = 0
b3=$(stored r3 bytes)
check "run 3's no-change manifest is small: $b3 bytes (0.$((b3 * 100 / 2500)) bytes per object; < 2048)" test "$b3" -lt 2048
b1=$(stored r1 bytes)
say "full manifest of run 1: $b1 bytes compressed for 2500 objects ($((b1 / 2500)) bytes per object)"

delete "$(key 10)" "$(key 11)" n/a1
put_new n/b1 "$(key 20)"
backup r4
check "run 4 stores a delta at depth 3" test "$(stored r4 depth)" = 3

# run 5 is killed with -9 while it copies 300 new objects; run 6 resumes
s3tool_on a fill "$src" g/ 300 20000 60000 2 || die "s3tool fill g/"
"$REPLICATE" --no-progress --state-dir "$STATE" "${CROSS[@]}" --jobs 2 "s3://$src" "s3://$dst" \
  >"$T_TMP/r5.out" 2>"$T_TMP/r5.err" &
pid=$!
sleep 1.5
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
say "run 5 killed with -9 after 1.5 s"
backup r6
check "run 6 (after the killed run) stores a delta" test "$(stored r6 delta)" = true
check "run 6's delta is on run 4's restore point: depth 4" test "$(stored r6 depth)" = 4

rep status "${BSIDE[@]}" --status --json "s3://$dst"
expect_rc status 0 "--status over the chain"
rep verify "${CROSS[@]}" --verify --json "s3://$src" "s3://$dst"
expect_rc verify 0 "--verify over the chain"
vc=$(jget "$T_TMP/verify.out" 'd["manifests"]["versions_checked"]') n6=$(stored r6 objects)
check "--verify checked the recorded version of every object of run 6's restore point ($vc >= $n6)" test "${vc:-0}" -ge "$n6"

restore_exact() { # NAME [TAG]: --restore --run RUN[NAME] into a fresh bucket equals snap-NAME
  local b
  b=$(bucket "rs-$1${2:-}")
  mkbucket a "$b"
  rep "rs-$1" "${RCROSS[@]}" --restore --run "${RUN[$1]}" --json "s3://$dst" "s3://$b"
  expect_rc "rs-$1" 0 "restore --run ${RUN[$1]} ($1) into s3://$b"
  snapshot a "$b" "$T_TMP/rsnap-$1"
  s3check_checks compare "$T_TMP/snap-$1" "$T_TMP/rsnap-$1" restored
}

# a new host (an empty state folder, as a pod's): the run starts from the target's run 6 and stores a delta on
# it holding just the one change (without that start it would store a full manifest)
put_new n/host1
saved_state=$STATE
STATE=$T_TMP/state-newhost
OPTS+=(-v)
backup r6h
OPTS=("${OPTS[@]:0:${#OPTS[@]}-1}")
STATE=$saved_state
check "a run from an empty state folder starts from the target's run 6 ($(grep -o 'the state folder is new[^"]*' "$T_TMP/r6h.err" | head -1))" \
  grep -q "starts from the target's run ${RUN[r6]}" "$T_TMP/r6h.err"
check "and stores a delta on it: depth 5, 1 record ($(stored r6h delta), $(stored r6h depth), $(stored r6h records))" \
  test "$(stored r6h delta) $(stored r6h depth) $(stored r6h records)" = "true 5 1"
restore_exact r6h
for r in r1 r2 r3 r4 r6; do restore_exact "$r"; done

# a link of the chain lost: run 2's stored manifest deleted from the target (a delete marker)
key2=$(stored r2 key)
aws_on b s3api delete-object --bucket "$dst" --key "$key2" >/dev/null || die "delete $key2"
b=$(bucket rs-broken)
mkbucket a "$b"
rep broken "${RCROSS[@]}" --restore --run "${RUN[r4]}" "s3://$dst" "s3://$b"
check "restore of run 4 with run 2's manifest gone refuses (exit $REP_RC)" test "$REP_RC" != 0
check "it names the missing manifest ($(grep -o "${RUN[r2]}[^ ]*" "$T_TMP/broken.err" | head -1))" \
  grep -q "${RUN[r2]}" "$T_TMP/broken.err"
check "and restored nothing" test "$(aws_on a s3api list-objects-v2 --bucket "$b" --query 'length(Contents || `[]`)' --output text)" = 0
restore_exact r1 again
rep verify2 "${CROSS[@]}" --verify --json "s3://$src" "s3://$dst"
check "--verify reports the broken chain (exit $REP_RC)" test "$REP_RC" != 0
put_new n/c1
backup r7
check "the next run stores a full manifest ($(grep -o 'stored full[^"]*' "$T_TMP/r7.err" | head -1))" test "$(stored r7 delta)" = false
restore_exact r7

finish
