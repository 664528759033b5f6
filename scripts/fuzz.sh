#!/usr/bin/env bash
# The body of `make fuzz`: runs each libFuzzer target (built by the Makefile from tests/fuzz/fuzz_NAME.c with
# clang -fsanitize=fuzzer,address,undefined) for FUZZ_SECONDS (default 60) with a scratch directory first, so
# new inputs land there, and the committed corpus tests/fuzz/corpus/NAME second; tests/fuzz/NAME.dict is used
# when present. TMPDIR is a fresh directory (on /dev/shm when possible: the manifest writer fsyncs).
#   scripts/fuzz.sh BUILD/fuzz/fuzz_NAME...
#   FUZZ_SECONDS=600 make fuzz        longer runs
#   FUZZ_MERGE=1 make fuzz            afterwards, add the scratch inputs that bring new coverage to the corpus
#   FUZZ_ARGS='-jobs=4' make fuzz     extra libFuzzer options
# A crash leaves its input in BUILD/fuzz/artifacts/ and fails the run. Once it is fixed, keep the input as a
# regression test: copy it into tests/fuzz/corpus/NAME/ (make unit / make check replay every file there).
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD/fuzz/fuzz_NAME..." >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
secs=${FUZZ_SECONDS:-60}
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
tmp=$(mktemp -d "$shm/replicate-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=()
for bin in "$@"; do
  name=$(basename "$bin")
  short=${name#fuzz_}
  corpus=tests/fuzz/corpus/$short
  out=$(dirname "$bin")
  scratch=$out/scratch/$short
  art=$out/artifacts
  mkdir -p "$scratch" "$art" "$corpus" "$tmp/$short"
  opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art/$name-")
  [ -f "tests/fuzz/$short.dict" ] && opts+=(-dict="tests/fuzz/$short.dict")
  # shellcheck disable=SC2206
  [ -n "${FUZZ_ARGS:-}" ] && opts+=($FUZZ_ARGS)
  echo "=== $name: ${secs}s, corpus $corpus ($(find "$corpus" -type f | wc -l) files), new inputs in $scratch"
  TMPDIR=$tmp/$short "$bin" "${opts[@]}" "$scratch" "$corpus" >"$out/$name.log" 2>&1
  rc=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' "$out/$name.log" | sed 's/^/    /'
  if [ "$rc" -ne 0 ]; then
    echo "--- FAIL $name (exit $rc): $(grep -m1 -E 'ERROR: |SUMMARY: |check failed' "$out/$name.log")"
    grep -E '^(artifact_prefix|Test unit written to)' "$out/$name.log" | sed 's/^/    /'
    echo "    full log: $out/$name.log; reproduce: $bin <artifact>; keep the input in $corpus/ once fixed"
    failed+=("$name")
    continue
  fi
  echo "--- PASS $name: $(find "$scratch" -type f | wc -l) inputs in the scratch corpus"
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    before=$(find "$corpus" -type f | wc -l)
    TMPDIR=$tmp/$short "$bin" -merge=1 "$corpus" "$scratch" >"$out/$name.merge.log" 2>&1 \
      || { echo "    merge failed: $out/$name.merge.log"; failed+=("$name (merge)"); continue; }
    echo "    merged: $corpus has $(find "$corpus" -type f | wc -l) files (was $before)"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
echo "fuzz: $# target(s) ran ${secs}s each without a crash"
