#!/usr/bin/env bash
# Balanced shards as a Kubernetes Indexed Job runs them (issue 17): 3,000 objects whose keys all share one
# long prefix (uploads/2024/11/<uuid>.jpg), backed up A -> B by 4 processes given the environment a Job gives
# its pods (JOB_COMPLETION_INDEX=0..3, one run id, a state directory each). Each shard copies between 15% and
# 35% of the objects, together exactly the source (awscli); the shards' ranges chain without gap or overlap;
# --status and --verify read the 4 shard manifests as one run and pass. Then a second run in which shard 2
# is killed with SIGKILL mid-way: --status (exit 1) and --verify (exit 5) name it; its retry, in a fresh pod,
# cuts the key space at the same keys, and the run then passes both. A restore passes over the incomplete run
# and, once it is whole, gives back the source from its 4 shard manifests. Plain --shard 0/2 and 1/2 (no run id,
# one after the other) into a second backup split it in halves, the second from the sample the first stored.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b
tag=s$(date +%s)$$
src=$tag-src dst=$tag-dst
total=3000
mkbucket a "$src"
mkbucket b "$dst" --versioned
s3tool_on a fill "$src" 'uploads/2024/11/{uuid}.jpg' "$total" 100 2000 17 || die "s3tool fill"
args=(--no-progress --source-profile a --target-profile b
  --source-endpoint "$RGW_A_ENDPOINT" --target-endpoint "$RGW_B_ENDPOINT" --jobs 16)

# pod I of run RUN: a fresh state directory per pod (an emptyDir), JOB_COMPLETION_INDEX set as a Job sets it.
# It execs replicate: run it in the background or in ( ), so that $! is replicate's own pid
pod() { # NAME INDEX RUN ARGS...
  local n=$1 i=$2 run=$3
  shift 3
  JOB_COMPLETION_INDEX=$i exec "$REPLICATE" "${args[@]}" --state-dir "$T_TMP/$n.state" --shards 4 --run-id "$run" \
    --json "$@" "s3://$src" "s3://$dst" >"$T_TMP/$n.json" 2>"$T_TMP/$n.err"
}
# the "shard I of N (from ...): keys ..." line of a pod, without where the split came from
range_of() { sed -n 's/^shard \([0-9]*\) of 4 (from [^)]*): /\1: /p' "$T_TMP/$1.err"; }

# ---- run 1: four pods at once
run1=backup-$tag-1
pids=()
for i in 0 1 2 3; do
  pod "r1-$i" "$i" "$run1" &
  pids+=($!)
done
lib_kill_at_exit "${pids[@]}"
sum=0
for i in 0 1 2 3; do
  wait "${pids[$i]}"
  rc=$?
  n=$(jget "$T_TMP/r1-$i.json" 'd["objects_copied"]')
  [ "$rc" = 0 ] || { bad "run 1, shard $i: exit $rc"; tail -n 20 "$T_TMP/r1-$i.err" | indent; continue; }
  lo=$((total * 15 / 100)) hi=$((total * 35 / 100))
  if [ "${n:-0}" -ge "$lo" ] && [ "${n:-0}" -le "$hi" ]; then
    ok "run 1, shard $i copied $n of $total objects (15-35%): $(range_of "r1-$i")"
  else
    bad "run 1, shard $i copied ${n:-?} of $total objects, not 15-35%: $(range_of "r1-$i")"
  fi
  sum=$((sum + ${n:-0}))
done
[ "$sum" = "$total" ] && ok "the 4 shards copied $sum objects together: each object once" \
  || bad "the 4 shards copied $sum objects together, not $total"
grep -q 'from a sampling listing of the source' "$T_TMP"/r1-*.err && ok "the first run sampled the source (no sample yet)" \
  || bad "the first run did not say it sampled the source"

# the target equals the source (awscli: keys, sizes, ETags as content MD5s)
snapshot a "$src" "$T_TMP/src.snap" >/dev/null || die "snapshot of the source"
snapshot b "$dst" "$T_TMP/dst.snap" >/dev/null || die "snapshot of the target"
s3check_checks compare "$T_TMP/src.snap" "$T_TMP/dst.snap"

# the shard manifests in the target: their ranges chain (shard i+1 starts after the key shard i ends at)
mkdir -p "$T_TMP/m"
aws_on b s3 cp --recursive --quiet "s3://$dst/.replicate/manifests/" "$T_TMP/m/" || die "aws s3 cp manifests"
python3 - "$T_TMP/m" "$run1" <<'EOF' && ok "the 4 shard manifests record ranges that chain from the first key to the last" || bad "the shards' ranges do not chain"
import json, sys
d, run = sys.argv[1], sys.argv[2]
h = [json.loads(open(f"{d}/{run}.shard-{i:04d}-of-0004.jsonl").readline())["shard"] for i in range(4)]
for i, s in enumerate(h):
    print("    | shard %d: %r .. %r" % (s["index"], s.get("start_after"), s.get("end_before")))
assert [s["index"] for s in h] == [0, 1, 2, 3] and all(s["count"] == 4 for s in h)
assert "start_after" not in h[0] and "end_before" not in h[3]
for a, b in zip(h, h[1:]):
    assert a["end_before"] == b["start_after"] + "\x01", (a, b)
    assert b["start_after"].startswith("uploads/2024/11/")
EOF
for k in .replicate/ranges.json ".replicate/shards/$run1.json"; do
  aws_on b s3api head-object --bucket "$dst" --key "$k" >/dev/null 2>&1 && ok "the target holds $k" \
    || bad "the target has no $k"
done

rep status1 --status --json --target-profile b --target-endpoint "$RGW_B_ENDPOINT" "s3://$dst"
expect_rc status1 0 "--status over the sharded run"
[ "$(jget "$T_TMP/status1.out" 'd["last_run"]["shards"]["ok"]')" = 4 ] && \
  [ "$(jget "$T_TMP/status1.out" 'd["last_run"]["run_id"]')" = "$run1" ] && \
  [ "$(jget "$T_TMP/status1.out" 'd["last_run"]["objects_copied"]')" = "$total" ] && \
  ok "--status: run $run1, 4 of 4 shards ok, $total objects copied" || { bad "--status's last run"; show_run status1; }
rep verify1 --verify "${args[@]}" "s3://$src" "s3://$dst"
expect_rc verify1 0 "--verify over the sharded run"
grep -q "the newest run, $run1, has 4 shards, 0 of them" "$T_TMP/verify1.out" && ok "--verify read the 4 shard manifests" \
  || { bad "--verify did not read the run's shards"; show_run verify1; }

# ---- run 2: new objects; shard 2 is killed mid-way (SIGKILL: no cleanup, no trailer)
s3tool_on a fill "$src" 'uploads/2024/11/{uuid}.jpg' 1200 100 2000 18 || die "s3tool fill"
total=$((total + 1200))
run2=backup-$tag-2
pids=()
for i in 0 1 3; do
  pod "r2-$i" "$i" "$run2" &
  pids+=($!)
done
pod r2-2 2 "$run2" --jobs 1 & # slow, so that it is still copying when it is killed
kp=$!
lib_kill_at_exit "${pids[@]}" "$kp"
for ((t = 0; t < 600; t++)); do # until it has recorded copies (its manifest is synced about once a second)
  n=$(cat "$T_TMP"/r2-2.state/*/manifests/*.jsonl 2>/dev/null | grep -c '"t":"object"')
  [ "${n:-0}" -ge 5 ] && break
  sleep 0.05
done
kill -KILL "$kp"
wait "$kp" 2>/dev/null
n=$(cat "$T_TMP"/r2-2.state/*/manifests/*.jsonl 2>/dev/null | grep -c '"t":"object"')
if cat "$T_TMP"/r2-2.state/*/manifests/*.jsonl 2>/dev/null | grep -q '"t":"trailer"'; then
  bad "shard 2 finished before it was killed"
elif pgrep -f -- "--state-dir $T_TMP/r2-2.state" >/dev/null; then
  bad "shard 2's replicate still runs after kill -9"
else
  ok "shard 2 was killed mid-way (${n:-0} copies recorded)"
fi
shards=(0 1 3)
for j in 0 1 2; do
  wait "${pids[$j]}" || { bad "run 2, shard ${shards[$j]} failed"; tail "$T_TMP/r2-${shards[$j]}.err" | indent; }
done
grep -q 'from the key sample stored in the target\|from the run.s split' "$T_TMP/r2-0.err" \
  && ok "run 2 split the key space from the sample stored in the target" || bad "run 2 did not use the stored sample"

rep status2 --status --json --target-profile b --target-endpoint "$RGW_B_ENDPOINT" "s3://$dst"
expect_rc status2 1 "--status with shard 2 killed fails"
jget "$T_TMP/status2.out" 'd["last_run"]["shards"]["problems"]' | grep -q 'shard 2 of 4: unfinished' && \
  [ "$(jget "$T_TMP/status2.out" 'd["last_run"]["result"]')" = incomplete ] && \
  ok "--status names shard 2 of 4 as unfinished, the run as incomplete" || { bad "--status's report"; show_run status2; }
rep status2h --status --target-profile b --target-endpoint "$RGW_B_ENDPOINT" "s3://$dst"
grep -q "shard 2 of 4: unfinished" "$T_TMP/status2h.out" && grep -q "status: FAILED" "$T_TMP/status2h.out" \
  && ok "--status says so in its human report" || { bad "--status's human report"; show_run status2h; }
rep verify2 --verify --json "${args[@]}" "s3://$src" "s3://$dst"
expect_rc verify2 5 "--verify with shard 2 killed finds discrepancies"
python3 - "$T_TMP/verify2.out" <<'EOF' && ok "--verify reports shard 2 of 4 and the objects it did not copy" || { bad "--verify's report"; show_run verify2; }
import json, sys
d = json.load(open(sys.argv[1]))
shard = [x for x in d["discrepancies"] if x["kind"] == "shard"]
print("    | shard discrepancies: %r; missing objects: %d" % ([x["detail"] for x in shard], d["missing"]))
assert len(shard) == 1 and "shard 2 of 4: unfinished" in shard[0]["detail"], shard
assert d["shards"]["not_ok"] == 1 and d["missing"] > 0
EOF

# a restore passes over the incomplete run: the latest whole one is run 1
rest=(--source-profile b --source-endpoint "$RGW_B_ENDPOINT" --target-profile a --target-endpoint "$RGW_A_ENDPOINT")
mkbucket a "$tag-rest"
rep restore0 --restore --dry-run --json "${rest[@]}" "s3://$dst" "s3://$tag-rest"
expect_rc restore0 0 "--restore --dry-run with run 2 incomplete"
[ "$(jget "$T_TMP/restore0.out" 'd["run_id"]')" = "$run1" ] &&   [ "$(jget "$T_TMP/restore0.out" 'd["objects_in_restore_point"]')" = 3000 ] && grep -q "run $run2 passed over" "$T_TMP/restore0.err"   && ok "it passes over run 2 (a shard unfinished) and takes run 1, all 3000 objects of its 4 shards"   || { bad "the restore's choice"; show_run restore0; }

# ---- the retry of shard 2 (what backoffLimitPerIndex does: a new pod, the same index and run id)
cat "$T_TMP"/r2-2.state/*/manifests/*.jsonl | grep -q '"t":"trailer"' && bad "the killed shard 2 wrote a trailer since"
(pod r2-2b 2 "$run2")
rc=$?
[ "$rc" = 0 ] && ok "the retried shard 2 completed" || { bad "the retried shard 2: exit $rc"; tail "$T_TMP/r2-2b.err" | indent; }
grep -q "taking over the lease of an earlier attempt of this shard" "$T_TMP/r2-2b.err" \
  && ok "it took over the lease the killed pod held (same run, same shard), without waiting for it to expire" \
  || bad "the retry did not say it took over the killed pod's lease"
[ -n "$(range_of r2-2)" ] && [ "$(range_of r2-2)" = "$(range_of r2-2b)" ] && grep -q "from the run's split" "$T_TMP/r2-2b.err" \
  && ok "the retry cut the key space where the killed pod did (the run's pinned split): $(range_of r2-2b)" \
  || bad "the retry's range $(range_of r2-2b) is not the killed pod's $(range_of r2-2)"
rep status3 --status --json --target-profile b --target-endpoint "$RGW_B_ENDPOINT" "s3://$dst"
expect_rc status3 0 "--status after the retry"
rep verify3 --verify "${args[@]}" "s3://$src" "s3://$dst"
expect_rc verify3 0 "--verify after the retry"
snapshot a "$src" "$T_TMP/src2.snap" >/dev/null || die "snapshot of the source"
snapshot b "$dst" "$T_TMP/dst2.snap" >/dev/null || die "snapshot of the target"
s3check_checks compare "$T_TMP/src2.snap" "$T_TMP/dst2.snap"

# ---- plain --shard I/N (no run id, e.g. cron on two hosts, one after the other) into another backup: the
# first lists the source to sample it and stores the sample, the second cuts at the same keys from it
mkbucket b "$tag-dst2" --versioned
sum=0
for i in 0 1; do
  rep "plain$i" "${args[@]}" --state-dir "$T_TMP/plain$i.state" --shard "$i/2" --json "s3://$src" "s3://$tag-dst2"
  expect_rc "plain$i" 0 "--shard $i/2 without a run id"
  n=$(jget "$T_TMP/plain$i.out" 'd["objects_copied"]')
  [ "${n:-0}" -ge $((total * 40 / 100)) ] && [ "${n:-0}" -le $((total * 60 / 100)) ] \
    && ok "--shard $i/2 copied $n of $total objects (40-60%)" || bad "--shard $i/2 copied ${n:-?} of $total objects"
  sum=$((sum + ${n:-0}))
done
[ "$sum" = "$total" ] && ok "the two plain shards copied $sum objects together" || bad "the plain shards copied $sum, not $total"
grep -q 'from a sampling listing' "$T_TMP/plain0.err" && grep -q 'from the key sample stored in the target' "$T_TMP/plain1.err" \
  && ok "the first sampled the source, the second used the stored sample" || bad "where the plain shards' split came from"

# ---- restoring the sharded run gives the source back: the union of its 4 shards' restore points
rep restore2 --restore --run "$run2" --json "${rest[@]}" "s3://$dst" "s3://$tag-rest"
expect_rc restore2 0 "--restore --run $run2 (a run of 4 shards)"
snapshot a "$tag-rest" "$T_TMP/rest.snap" >/dev/null || die "snapshot of the restored bucket"
s3check_checks compare "$T_TMP/src2.snap" "$T_TMP/rest.snap" restored
finish
