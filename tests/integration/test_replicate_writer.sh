#!/usr/bin/env bash
# Delta passes while the source keeps changing. 2,000 objects on A; `s3tool writer` adds small objects under
# live/ every 5 ms for the whole run (its log: "KEY MD5" for every write RGW confirmed; keys are
# live/<unix second>-<n>). replicate --settle 0.5 --max-passes 6 --json (same endpoint) must:
#   - make at least two passes;
#   - copy in its final pass only what arrived during the previous one: few objects compared with pass 1, all
#     of them writer keys, none written (by its second) before the previous pass started;
#   - leave in the target every object the writer wrote before the last pass started, with the same MD5 (the
#     comparison is conservative: keys whose second is < floor(start of the last pass) - 1).
# Pass start times come from the run's manifest (the JSON summary's "manifest": local JSON Lines; "pass" lines
# carry "started", "object" lines the pass that copied them).
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init test_replicate_writer

src=$(bucket src) dst=$(bucket dst)
mkbucket a "$src"
s3tool_on a fill "$src" bulk/ 2000 100 2000 21 || die "s3tool fill"
mkbucket a "$dst" --versioned
say "source filled with 2,000 objects after ${SECONDS}s"

WLOG=$T_TMP/writer.log
: >"$WLOG"
# started directly (not through a shell function) so that $! is the writer itself and TERM reaches it
AWS_ACCESS_KEY_ID=$RGW_A_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_A_SECRET_KEY AWS_ENDPOINT_URL=$RGW_A_ENDPOINT \
  AWS_SHARED_CREDENTIALS_FILE=/dev/null "$TOOLS/s3tool" writer "$src" live/ "$WLOG" --interval 5 2>"$T_TMP/writer.err" &
WPID=$!
# shellcheck disable=SC2016 # (expanded when the hook runs)
lib_on_exit 'kill -TERM "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null'
for ((i = 0; i < 100; i++)); do [ "$(wc -l <"$WLOG")" -ge 5 ] && break; sleep 0.1; done
[ "$(wc -l <"$WLOG")" -ge 5 ] || { cat "$T_TMP/writer.err"; die "the writer did not start writing"; }
say "writer running (pid $WPID)"

rep run "${SAME[@]}" --settle 0.5 --max-passes 6 --json "s3://$src" "s3://$dst"
kill -TERM "$WPID" 2>/dev/null
wait "$WPID" 2>/dev/null
say "writer stopped: $(wc -l <"$WLOG") objects written; $(tail -n 1 "$T_TMP/writer.err")"

case $REP_RC in
  0) ok "replicate with the writer running converged (exit 0, ${REP_SECS}s)" ;;
  4) ok "replicate with the writer running stopped at --max-passes 6 without converging (exit 4, ${REP_SECS}s)" ;;
  *) bad "replicate with the writer running: exit $REP_RC"; show_run run ;;
esac
M=$(jget "$T_TMP/run.out" 'd["manifest"]')
if [ -z "$M" ] || [ ! -f "$M" ]; then show_run run; die "the JSON summary names no readable manifest ('$M')"; fi
aws_on a s3api list-objects-v2 --bucket "$dst" --prefix live/ --output json >"$T_TMP/target-live.json" ||
  die "awscli could not list the target"

python3 - "$T_TMP/run.out" "$M" "$WLOG" "$T_TMP/target-live.json" >"$T_TMP/analysis" <<'PY'
import json, math, sys
summary = json.load(open(sys.argv[1]))
passes, copied_in = {}, {}
for line in open(sys.argv[2]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("t") == "pass":
        passes[r["pass"]] = r
    elif r.get("t") == "object":
        copied_in.setdefault(r["pass"], []).append(r["key"])
writes = [l.split() for l in open(sys.argv[3]) if len(l.split()) == 2]
target = {c["Key"]: c["ETag"].strip('"') for c in (json.load(open(sys.argv[4])) or {}).get("Contents") or []}

def sec(key):  # live/<second>-<n>
    return int(key[len("live/"):].split("-")[0])

def out(ok, msg, evidence=()):
    print(("ok   - " if ok else "FAIL - ") + msg)
    for e in list(evidence)[:10]:
        print("    | " + str(e))

details = summary.get("pass_details") or []
for p in details:
    n = p["pass"]
    st = passes.get(n, {}).get("started")
    print(f"    pass {n}: started {st}, {p['duration_seconds']}s, listed {p['listed']}, copied {p['copied']}, "
          f"unchanged {p['unchanged']}")
n = summary.get("passes", 0)
out(n >= 2 and len(details) == n and sorted(passes) == list(range(1, n + 1)),
    f"the run made at least two passes ({n}; {len(passes)} pass lines in the manifest)")
if n >= 2 and len(details) == n and n in passes and n - 1 in passes:
    first, last = details[0]["copied"], details[-1]["copied"]
    out(first >= 2000, f"pass 1 copied the 2,000 objects and what the writer had added ({first})")
    out(last * 4 < first, f"the final pass {n} copied few objects compared with pass 1 ({last} vs {first})")
    mine = copied_in.get(n, [])
    out(len(mine) == last, f"the manifest records {len(mine)} copies in pass {n}, the summary {last}")
    nonwriter = [k for k in mine if not k.startswith("live/")]
    out(not nonwriter, f"every key the final pass copied is a writer key (live/...): {len(mine) - len(nonwriter)} "
        f"of {len(mine)}", nonwriter)
    prev_start = passes[n - 1]["started"]
    early = [k for k in mine if k.startswith("live/") and sec(k) < math.floor(prev_start) - 1]
    out(not early, f"no key the final pass copied was written before pass {n - 1} started (at {prev_start:.1f}; "
        f"keys' seconds >= {math.floor(prev_start) - 1})", early)
    last_start = passes[n]["started"]
    cutoff = math.floor(last_start) - 1
    before = [(k, m) for k, m in writes if sec(k) < cutoff]
    missing = [k for k, m in before if k not in target]
    differ = [f"{k}: wrote MD5 {m}, target ETag {target[k]}" for k, m in before if k in target and target[k] != m]
    out(len(before) > 0 and not missing and not differ,
        f"all {len(before)} objects the writer wrote before the last pass started (second < {cutoff}; it wrote "
        f"{len(writes)} in all) are in the target with their MD5: {len(missing)} missing, {len(differ)} different",
        missing + differ)
PY
cat "$T_TMP/analysis"
T_CHECKS=$((T_CHECKS + $(grep -c '^ok   - \|^FAIL - ' "$T_TMP/analysis")))
T_FAILS=$((T_FAILS + $(grep -c '^FAIL - ' "$T_TMP/analysis")))
grep -q '^FAIL - ' "$T_TMP/analysis" && show_run run 15

finish
