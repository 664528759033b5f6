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
lib_init

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
lib_kill_at_exit "$WPID"
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

s3check_checks writer-passes "$T_TMP/run.out" "$M" "$WLOG" "$T_TMP/target-live.json" || show_run run 15

finish
