#!/usr/bin/env bash
# Runs cmocka unit-test binaries (`make unit`), shows their output, and ends with the line
#   unit: N passed, M failed
# summed from cmocka's "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)" lines. A binary that crashes,
# times out (UNIT_TIMEOUT, default 300 s) or exits non-zero without reporting a failed test counts as
# one failed test. Exit status: 0 only if nothing failed.
set -uo pipefail

if [ $# -eq 0 ]; then
  echo "unit: no test binaries given" >&2
  echo "unit: 0 passed, 0 failed"
  exit 1
fi

limit=${UNIT_TIMEOUT:-300}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
passed=0
failed=0

for bin in "$@"; do
  name=$(basename "$bin")
  if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
    echo "unit: $bin: not an executable file"
    failed=$((failed + 1))
    continue
  fi
  echo "--- $name"
  # Force cmocka's plain output whatever CMOCKA_MESSAGE_OUTPUT says; its summary lines are what we count.
  CMOCKA_MESSAGE_OUTPUT=stdout timeout -k 5 "$limit" "$bin" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
  f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    case $rc in
      124 | 137) why="timed out after ${limit}s" ;;
      *) if [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"; else why="exited $rc"; fi ;;
    esac
    echo "unit: $name $why without a cmocka failure report: counted as 1 failed"
    f=1
  elif [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    echo "unit: $name printed no cmocka summary: counted as 1 failed"
    f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
done

echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
