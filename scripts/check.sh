#!/usr/bin/env bash
# The body of `make check`: unit tests, then integration tests against two local Ceph RGW servers.
#   scripts/check.sh BUILD_DIR               unit + integration
#   scripts/check.sh BUILD_DIR integration   integration only (`make integration`)
#
# Unit tests: every executable in BUILD_DIR/tests, run by scripts/run-unit.sh.
# Integration tests: every executable in BUILD_DIR/itests and every executable tests/integration/test_*.sh,
# in sorted order of their names, run from the repository root with stdin closed and these variables set:
#   REPLICATE, BUILD, TOOLS            the binary, the build dir and BUILD/tools (absolute paths)
#   RGW_A_ENDPOINT RGW_A_ACCESS_KEY RGW_A_SECRET_KEY RGW_A_LOG, the same for B, RGW_REGION, RGW_STATE_DIR
#                                      (from scripts/rgw.sh; RGW_*_LOG logs every HTTP request line)
# ITEST_JOBS (default 2) tests run at once; test_zz_* alone at the end.
# Exit 0 = pass, 77 = skipped, anything else = fail. A test running longer than ITEST_TIMEOUT seconds
# (default 600) is killed with its process group and fails. If this script started the RGW servers it
# stops them on every exit (success, failure, Ctrl-C); servers that were already running are left alone.
set -uo pipefail
# Debian's tools first (/usr/bin/aws, python3, ...): a pip or pyenv copy earlier on PATH is not what we install.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}

usage() { echo "usage: $0 BUILD_DIR [integration]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
mode=${2:-all}
case $mode in all | integration) ;; *) usage ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
[ -d "$1" ] || { echo "check: build dir '$1' does not exist (run make first)" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
limit=${ITEST_TIMEOUT:-600}

unit_pass=0 unit_fail=0
it_pass=0 it_fail=0 it_skip=0
failed_names=()
tmp=$(mktemp -d)
started_rgw=0
running=()

cleanup() {
  stop_running 2>/dev/null
  if [ "$started_rgw" = 1 ]; then
    echo "check: stopping the RGW servers it started"
    scripts/rgw.sh stop || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "check: interrupted"; exit 130' INT
trap 'echo "check: terminated"; exit 143' TERM

executables() { # DIR-or-GLOB...: the executable regular files among the arguments
  local f
  for f in "$@"; do [ -f "$f" ] && [ -x "$f" ] && printf '%s\n' "$f"; done
}

# ---- unit tests
if [ "$mode" = all ]; then
  mapfile -t units < <(executables "$BUILD"/tests/*)
  if [ ${#units[@]} -eq 0 ]; then
    echo "unit: no test binaries in $1/tests (a check that tests nothing does not pass)"
    unit_fail=1
  else
    scripts/run-unit.sh "${units[@]}" | tee "$tmp/unit.out"
    line=$(grep -E '^unit: [0-9]+ passed, [0-9]+ failed$' "$tmp/unit.out" | tail -n 1)
    if [ -n "$line" ]; then
      read -r unit_pass unit_fail < <(sed -E 's/^unit: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"$line")
    else
      echo "unit: scripts/run-unit.sh gave no summary line"
      unit_fail=1
    fi
  fi
fi

# ---- integration tests
mapfile -t itests < <(
  {
    executables "$BUILD"/itests/*
    executables "$root"/tests/integration/test_*.sh
  } | awk -F/ '{ print $NF "\t" $0 }' | LC_ALL=C sort | cut -f2-
)
for f in tests/integration/test_*.sh; do
  [ -f "$f" ] && [ ! -x "$f" ] && echo "integration: warning: $f is not executable (chmod +x), not run"
done

run_test() { # PATH: runs one test, its output prefixed by its name into $tmp/NAME.log; NAME.rc and NAME.secs
  local t=$1 name spid t0 pgid i rc secs tpid
  name=$(basename "$t")
  rm -f "$tmp/$name.fifo" && mkfifo "$tmp/$name.fifo"
  sed -u "s|^|[$(printf '%s' "$name" | sed 's/[\\|&]/\\&/g')] |" <"$tmp/$name.fifo" >"$tmp/$name.log" &
  spid=$!
  t0=$SECONDS
  # timeout puts the test in its own process group (id = its pid) and kills the whole group when time is up.
  timeout -k 10 "$limit" "$t" </dev/null >"$tmp/$name.fifo" 2>&1 &
  tpid=$!
  echo "$tpid" >"$tmp/$name.pid"
  wait "$tpid"
  rc=$?
  pgid=$tpid
  secs=$((SECONDS - t0))
  # Processes the test left running in its group would disturb the next tests (and hold its output open).
  if kill -TERM -- "-$pgid" 2>/dev/null; then
    echo "[$name] check: stopped processes this test left running" >>"$tmp/$name.log"
    for ((i = 0; i < 50; i++)); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pgid" 2>/dev/null
  fi
  for ((i = 0; i < 50; i++)); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$spid" 2>/dev/null; then
    echo "[$name] check: a process this test started elsewhere still holds its output; no longer shown" >>"$tmp/$name.log"
    kill "$spid" 2>/dev/null
  fi
  wait "$spid" 2>/dev/null
  if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ "$secs" -ge "$limit" ]; }; then
    rc=timeout
  fi
  echo "$secs" >"$tmp/$name.secs"
  echo "$rc" >"$tmp/$name.rc" # last: its presence says the test is done
}

report_test() { # NAME: prints a finished test's output and result, and counts it
  local name=$1 rc secs
  rc=$(cat "$tmp/$name.rc") secs=$(cat "$tmp/$name.secs")
  echo "=== RUN  $name"
  cat "$tmp/$name.log"
  case $rc in
    0) echo "--- PASS $name (${secs}s)"; it_pass=$((it_pass + 1)) ;;
    77) echo "--- SKIP $name (${secs}s)"; it_skip=$((it_skip + 1)) ;;
    timeout)
      echo "--- FAIL $name (timed out after ${limit}s, killed)"
      it_fail=$((it_fail + 1)); failed_names+=("$name") ;;
    *) echo "--- FAIL $name (exit $rc, ${secs}s)"; it_fail=$((it_fail + 1)); failed_names+=("$name") ;;
  esac
}

# ITEST_JOBS tests at once (default 2): they share the two RGW servers, each in buckets of its own, and much of
# their time is spent waiting (timeouts, retries, awscli starting). Tests named test_zz_* read what all the
# others did (RGW's whole log): they run alone, after the rest. Output is shown per test, as each ends.
running=()
reap() { # waits until fewer than $1 tests are running, reporting those that ended
  local want=$1 n still
  while [ ${#running[@]} -ge "$want" ] && [ ${#running[@]} -gt 0 ]; do
    still=()
    for n in "${running[@]}"; do
      if [ -f "$tmp/$n.rc" ]; then wait "$(cat "$tmp/$n.bg")" 2>/dev/null; report_test "$n"; else still+=("$n"); fi
    done
    running=("${still[@]}")
    [ ${#running[@]} -ge "$want" ] && sleep 0.2
  done
}
run_all() {
  local t name par=${ITEST_JOBS:-2}
  for t in "${itests[@]}"; do
    name=$(basename "$t")
    case $name in test_zz_*) reap 1 ;; *) reap "$par" ;; esac
    run_test "$t" &
    echo $! >"$tmp/$name.bg"
    running+=("$name")
    case $name in test_zz_*) reap 1 ;; esac
  done
  reap 1
}
stop_running() { # on interruption: the tests still running, with their process groups
  local n
  for n in "${running[@]}"; do [ -f "$tmp/$n.pid" ] && kill -TERM -- "-$(cat "$tmp/$n.pid")" 2>/dev/null; done
}

if [ ${#itests[@]} -eq 0 ]; then
  echo "integration: no tests in $1/itests or tests/integration/test_*.sh (a check that tests nothing does not pass)"
  it_fail=1
else
  rgw_ok=1
  if scripts/rgw.sh status 2 >/dev/null 2>&1; then
    echo "check: using the RGW servers already running"
  else
    started_rgw=1
    scripts/rgw.sh start 2 || rgw_ok=0
  fi
  if [ "$rgw_ok" = 1 ] && scripts/rgw.sh env >"$tmp/rgw.env"; then
    set -a
    # shellcheck disable=SC1091
    . "$tmp/rgw.env"
    set +a
    export REPLICATE=$BUILD/replicate BUILD TOOLS=$BUILD/tools
    run_all
  else
    echo "integration: the RGW servers could not be started: no integration test was run"
    it_fail=1
    failed_names+=("(rgw start)")
  fi
fi

[ ${#failed_names[@]} -gt 0 ] && echo "integration: failed: ${failed_names[*]}"
echo "integration: $it_pass passed, $it_fail failed, $it_skip skipped"
# make check installs everything a test needs, so a skipped test is a missing install step: it fails the
# check unless CHECK_ALLOW_SKIP=1 (e.g. a machine where tmpfs cannot be mounted).
if [ "$it_skip" -gt 0 ] && [ "${CHECK_ALLOW_SKIP:-0}" != 1 ]; then
  echo "integration: $it_skip test(s) skipped; make check installs what they need, so that is a failure" \
    "(CHECK_ALLOW_SKIP=1 accepts it)"
  it_fail=$((it_fail + it_skip))
fi
total_pass=$((unit_pass + it_pass))
total_fail=$((unit_fail + it_fail))
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
