#!/usr/bin/env bash
# --metrics-file alerts when backups fail (issue 16):
#   1. a good run writes replicate_last_success_timestamp_seconds (the run's end) into a textfile that also
#      holds another target's and another exporter's samples: those are kept, and promtool check metrics
#      accepts the file;
#   2. a failed run after it (the source endpoint refuses connections) keeps the last success at the good
#      run's value and records its exit code; no temporary file is left beside the textfile;
#   3. with the textfile gone, a failed run takes the last success from the state folder's manifests;
#   4. a restore drill adds its samples beside the backup's;
#   5. promtool check rules / test rules on scripts/prometheus/replicate.rules.yml and its tests.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init promtool=prometheus

src=$(bucket src) dst=$(bucket dst)
mkbucket a "$src"
mkbucket a "$dst" --versioned
s3tool_on a fill "$src" m/ 5 100 400 5 || die "s3tool fill"
mkdir -p "$T_TMP/textfile"
M=$T_TMP/textfile/replicate.prom
cat >"$M" <<'EOF'
# HELP replicate_last_success_timestamp_seconds End of the last successful backup run (Unix time).
# TYPE replicate_last_success_timestamp_seconds gauge
replicate_last_success_timestamp_seconds{target="s3://another-backup"} 1700000000
# HELP other_exporter_value Someone else's sample in the same file.
# TYPE other_exporter_value gauge
other_exporter_value 42
EOF

metric() { s3check prom-sample "$M" "$1" "${2:-s3://$dst}"; } # NAME [TARGET]: the sample's value in $M, empty when absent

# ---- 1. a good run
t0=$(date +%s)
rep good "${SAME[@]}" --settle 0 --metrics-file "$M" "s3://$src" "s3://$dst"
t1=$(date +%s)
expect_rc good 0 "a good run s3://$src -> s3://$dst"
good=$(metric replicate_last_success_timestamp_seconds)
check "the good run's last success ($good) is its end, between $t0 and $t1" \
  test -n "$good" -a "${good:-0}" -ge "$t0" -a "${good:-0}" -le "$t1"
check "its exit code sample is 0" test "$(metric replicate_last_run_exit_code)" = 0
check "another target's sample in the file is kept" \
  test "$(metric replicate_last_success_timestamp_seconds s3://another-backup)" = 1700000000
check "another exporter's sample in the file is kept" grep -qx 'other_exporter_value 42' "$M"
if promtool check metrics <"$M" >"$T_TMP/check.out" 2>&1; then ok "promtool check metrics accepts the file"
else bad "promtool check metrics: $(head -c 600 "$T_TMP/check.out")"; indent <"$M"; fi

# ---- 2. a failed run keeps the last success
sleep 1 # the failed run ends in a later second than the good one
port=$(free_port)
rep failed --source-endpoint "http://127.0.0.1:$port" --target-endpoint "$RGW_A_ENDPOINT" --profile a \
  --retries 1 --settle 0 --metrics-file "$M" "s3://$src" "s3://$dst"
check "a run whose source refuses connections fails (exit $REP_RC)" test "$REP_RC" -eq 1
check "after the failed run the last success is still the good run's ($(metric replicate_last_success_timestamp_seconds) = $good)" \
  test "$(metric replicate_last_success_timestamp_seconds)" = "$good"
check "the exit code sample is the failed run's ($(metric replicate_last_run_exit_code))" \
  test "$(metric replicate_last_run_exit_code)" = "$REP_RC"
last=$(metric replicate_last_run_timestamp_seconds)
check "the last run timestamp ($last) is later than the good run's end" test "${last:-0}" -gt "$good"
check "the other target's sample survives the failed run too" \
  test "$(metric replicate_last_success_timestamp_seconds s3://another-backup)" = 1700000000
leftover=$(find "$T_TMP/textfile" -mindepth 1 ! -name replicate.prom)
check "nothing but replicate.prom in the textfile directory (no temporary file left: ${leftover:-none})" \
  test -z "$leftover"
check "the file is readable by the collector (mode $(stat -c %a "$M"))" test "$(stat -c %a "$M")" = 644
promtool check metrics <"$M" >"$T_TMP/check.out" 2>&1
check "promtool check metrics accepts the file after the failed run" test $? -eq 0

# ---- 3. without the textfile: the local manifests
rm -f "$M"
rep failed2 --source-endpoint "http://127.0.0.1:$port" --target-endpoint "$RGW_A_ENDPOINT" --profile a \
  --retries 1 --settle 0 --metrics-file "$M" "s3://$src" "s3://$dst"
check "a failed run with no textfile left (exit $REP_RC) takes the last success from the manifests ($(metric replicate_last_success_timestamp_seconds) = $good)" \
  test "$(metric replicate_last_success_timestamp_seconds)" = "$good"

# ---- 4. a restore drill's samples beside the backup's
rep drill "${SAME[@]}" --restore-drill --metrics-file "$M" "s3://$dst"
expect_rc drill 0 "a restore drill of s3://$dst"
clean=$(metric replicate_last_clean_drill_timestamp_seconds)
check "the drill wrote its last clean drill sample ($clean)" test -n "$clean" -a "${clean:-0}" -ge "$good"
check "the backup's last success is still there beside it" \
  test "$(metric replicate_last_success_timestamp_seconds)" = "$good"
promtool check metrics <"$M" >"$T_TMP/check.out" 2>&1
check "promtool check metrics accepts the merged file" test $? -eq 0

# ---- 5. the alert rules
rules=scripts/prometheus
if promtool check rules "$rules/replicate.rules.yml" >"$T_TMP/rules.out" 2>&1; then ok "promtool check rules $rules/replicate.rules.yml"
else bad "promtool check rules: $(head -c 1000 "$T_TMP/rules.out")"; fi
if promtool test rules "$rules/replicate.rules.test.yml" >"$T_TMP/rules.out" 2>&1; then ok "promtool test rules $rules/replicate.rules.test.yml"
else bad "promtool test rules:"; head -n 40 "$T_TMP/rules.out" | indent; fi
finish
