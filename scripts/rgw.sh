#!/usr/bin/env bash
# Throwaway Ceph RADOS Gateway (S3) servers on 127.0.0.1 for the integration tests: one-node clusters
# (1 mon, 1 memstore OSD, RGW; no mgr, no systemd), set up as in shared notes/test-s3-server.md.
#
#   scripts/rgw.sh start [N]   start instances A (and B when N=2, the default); a no-op for healthy ones
#   scripts/rgw.sh stop        stop exactly the processes this script started, remove the state dir
#   scripts/rgw.sh status [N]  print whether each instance is up; exit 0 iff instances 1..N are up
#   scripts/rgw.sh env         print the sourceable env file (RGW_A_ENDPOINT, RGW_A_ACCESS_KEY, ...)
#
# Instance A: mon 3300/6789, S3 http://127.0.0.1:7480; instance B: mon 3301/6790, S3 http://127.0.0.1:7481.
# OSDs take free ports from 6800 up. State (config, mon store, logs, pid files) lives in
# ${RGW_STATE_DIR:-/tmp/replicate-rgw}/{a,b}; the OSD's data lives in its RAM (memstore).
#
# Timing (2 cores, Debian 12, Ceph 16.2.15, measured 3 times each): `start 2` 5.7-6.2 s wall (the two
# clusters start in parallel), `start 1` 3.7-3.9 s (mon quorum 0.7 s, OSD 1.5 s, RGW answering 0.8 s, user
# 0.3 s; each `ceph` CLI call costs ~0.6 s of Python start-up), a no-op `start` 0.3 s, `stop` 0.7 s.
#
# Request log: `debug rgw = 1` makes RGW write one access line per HTTP request to RGW_A_LOG / RGW_B_LOG:
#   2026-11-26T16:07:04.961+0000 7f0f2efdd6c0  1 beast: 0x7f0f982846e0: 127.0.0.1 - tester
#   [26/Nov/2026:16:07:04.957 +0000] "DELETE /probe-a/a%20key%2B%25%26%C3%A9 HTTP/1.1" 204 0 - "aws-cli/2.9.19 ..."
#   - latency=0.004000000s                                                (one line, wrapped here)
# i.e. method and URI as the client sent them (percent-encoded, with the query). DeleteObjects shows as
# "POST /bucket?delete HTTP/1.1", so a no-delete check greps for '"DELETE ' and '?delete'. Each request
# also logs "====== starting new request" and "====== req done ... http_status=NNN" lines. The line was
# in the file by the time curl returned in every try (Ceph logs from a background thread, so not promised).
set -euo pipefail
# Debian's tools first (/usr/bin/aws, python3, ...): a pip or pyenv copy earlier on PATH is not what we install.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}

STATE_DIR=${RGW_STATE_DIR:-/tmp/replicate-rgw}
WAIT_SECS=${RGW_WAIT_SECS:-60}
ENV_FILE=$STATE_DIR/env

say() { printf 'rgw: %s\n' "$*"; }
die() { printf 'rgw: error: %s\n' "$*" >&2; exit 1; }

# RGW_PORT_OFFSET (default 0) shifts every port so that independent pairs can run side by side
# (use it together with a different RGW_STATE_DIR): S3 on 7480+OFF / 7481+OFF.
OFF=${RGW_PORT_OFFSET:-0}

# Per-instance settings; sets MON2 MON1 PORT AK SK DIR CONF NAME in the caller's (local) scope.
inst_conf() {
  case $1 in
    a) MON2=$((3300 + OFF)) MON1=$((6789 - OFF)) PORT=$((7480 + OFF)) AK=AKIDREPLICATEA SK=replicate-secret-A-0123456789 ;;
    b) MON2=$((3301 + OFF)) MON1=$((6790 - OFF)) PORT=$((7481 + OFF)) AK=AKIDREPLICATEB SK=replicate-secret-B-9876543210 ;;
    *) die "unknown instance '$1'" ;;
  esac
  DIR=$STATE_DIR/$1
  CONF=$DIR/ceph.conf
  NAME=client.rgw.$1
}

instances_for() {
  case ${1:-2} in
    1) echo a ;;
    2) echo a b ;;
    *) die "N must be 1 or 2 (got '$1')" ;;
  esac
}

# True if PID is a live process started by us for config file $2 (guards against reused PIDs).
pid_ours() {
  local pid=$1 conf=$2 cmd
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$conf"* ]]
}

http_ok() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/" 2>/dev/null)" = 200 ]; }

# Up = env fragment written at the end of a successful start, all recorded daemons alive, S3 answering.
inst_up() {
  local MON2 MON1 PORT AK SK DIR CONF NAME pid name n=0
  inst_conf "$1"
  [ -f "$DIR/env" ] && [ -f "$DIR/pids" ] || return 1
  while read -r pid name; do
    pid_ours "$pid" "$CONF" || return 1
    n=$((n + 1))
  done <"$DIR/pids"
  [ "$n" -eq 3 ] && http_ok "$PORT"
}

# kill_wait CONF PID...: TERM the PIDs that are still ours, wait up to KILL_AFTER tenths of a second
# (default 10 s), then KILL what is left.
kill_wait() {
  local conf=$1 pid i live=() still
  shift
  for pid in "$@"; do pid_ours "$pid" "$conf" && live+=("$pid"); done
  [ ${#live[@]} -gt 0 ] || return 0
  kill -TERM "${live[@]}" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    still=()
    for pid in "${live[@]}"; do pid_ours "$pid" "$conf" && still+=("$pid"); done
    [ ${#still[@]} -eq 0 ] && return 0
    [ "$i" -eq "${KILL_AFTER:-100}" ] && kill -KILL "${still[@]}" 2>/dev/null || true
    sleep 0.1
  done
}

# Stop exactly the recorded PIDs of one instance and remove its dir (kept, for its logs, when $2 is
# "keep"). One daemon at a time, in reverse start order (RGW, OSD, mon): stopped together, each waits
# for one already gone and a stop takes over 10 s instead of ~0.5 s.
inst_kill() {
  local MON2 MON1 PORT AK SK DIR CONF NAME pid
  inst_conf "$1"
  if [ -f "$DIR/pids" ]; then
    for pid in $(awk '{ print $1 }' "$DIR/pids" | tac); do kill_wait "$CONF" "$pid"; done
  fi
  [ "${2:-}" = keep ] || rm -rf "$DIR"
}

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

# Start one instance from scratch. Runs in a subshell (so `die` ends only this instance's start).
inst_start() (
  local MON2 MON1 PORT AK SK DIR CONF NAME inst=$1 fsid uuid p
  inst_conf "$inst"
  say "[$inst] starting (S3 on 127.0.0.1:$PORT)"
  for p in "$MON2" "$MON1" "$PORT"; do
    port_busy "$p" && die "[$inst] port $p is already in use by a process this script did not start: $(ss -Htlnp "sport = :$p" | head -1)"
  done
  mkdir -p "$DIR"/{run,log,crash,osd.0}
  : >"$DIR/pids"
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$CONF" <<CONF
# Written by scripts/rgw.sh: a throwaway one-node cluster (see shared notes/test-s3-server.md).
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
# Required with auth none: radosgw defaults to "secure" and loops on "get_initial_auth_request returned -13".
ms mon client mode = crc
ms client mode = crc
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.pid
crash dir = $DIR/crash
keyring = $DIR/keyring
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
# RGW creates 7-8 pools; default PG counts exceed the per-OSD limit.
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
osd objectstore = memstore
memstore device bytes = 8589934592
# Cuts start-up from ~13 s to ~2 s.
paxos propose interval = 0.05
paxos min wait = 0.01

[mon]
mon data = $DIR/mon.\$id

[osd]
osd data = $DIR/osd.\$id
# S3 allows 1024-byte keys; with the default 460, keys over ~410 bytes fail with UnknownError.
osd max object name len = 2048
osd max object namespace len = 64
osd op num shards = 2
osd op num threads per shard = 1

[$NAME]
# endpoint= binds only loopback (port= binds every interface). tcp_nodelay=1 avoids ~40 ms Nagle stalls.
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw thread pool size = 64
rgw enable usage log = false
rgw dns name =
# Level 1 logs one access line per request ("beast: ... \"GET /bucket/key HTTP/1.1\" 200 ...") and little else.
debug rgw = 1
CONF

  # run LOGNAME CMD...: record the step's output; on failure show it and fail this instance.
  run() {
    local log=$DIR/log/$1.out; shift
    timeout "$WAIT_SECS" "$@" >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "[$inst] failed: $*"; }
  }
  # launch NAME CMD...: start a daemon in its own session (a terminal's Ctrl-C reaches only our trap,
  # which stops it); fd 9 (our lock) is closed so the daemon does not hold it.
  launch() {
    local name=$1; shift
    setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 9>&- &
    echo "$! $name" >>"$DIR/pids"
  }
  # wait_for WHAT DAEMON LOG CMD...: poll CMD for up to WAIT_SECS s; fail early if DAEMON died.
  wait_for() {
    local what=$1 daemon=$2 log=$3 t0=$SECONDS pid
    shift 3
    pid=$(awk -v n="$daemon" '$2 == n { print $1 }' "$DIR/pids")
    until "$@" >/dev/null 2>&1; do
      if ! pid_ours "$pid" "$CONF"; then
        tail -n 30 "$log" "$DIR/log/$daemon.out" >&2 2>/dev/null || true
        die "[$inst] $daemon exited while waiting for $what (log: $log)"
      fi
      if [ $((SECONDS - t0)) -ge "$WAIT_SECS" ]; then
        tail -n 30 "$log" "$DIR/log/$daemon.out" >&2 2>/dev/null || true
        die "[$inst] timed out after ${WAIT_SECS}s waiting for $what (log: $log)"
      fi
      sleep 0.2
    done
  }
  ceph_() { timeout 20 ceph -c "$CONF" --connect-timeout 10 "$@"; }
  osd_up() { ceph_ osd dump --format json | grep -q '"up":1'; }

  # Any failure below ends this subshell: then stop what was started for this instance.
  trap 'rc=$?; [ $rc -eq 0 ] || inst_kill "$inst" keep; exit $rc' EXIT
  run setup monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]" "$DIR/monmap"
  run setup ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap"
  launch mon.a ceph-mon -c "$CONF" -i a -f
  wait_for "mon quorum" mon.a "$DIR/log/mon.a.log" ceph_ quorum_status

  uuid=$(cat /proc/sys/kernel/random/uuid)
  run setup ceph -c "$CONF" --connect-timeout 10 osd new "$uuid"
  run setup ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid"
  launch osd.0 ceph-osd -c "$CONF" -i 0 -f
  wait_for "osd.0 up" osd.0 "$DIR/log/osd.0.log" osd_up

  launch "$NAME" radosgw -c "$CONF" -n "$NAME" -f
  wait_for "HTTP 200 on http://127.0.0.1:$PORT/" "$NAME" "$DIR/log/$NAME.log" http_ok "$PORT"
  # More storage classes (the tests write to them with --storage-class): added to the zonegroup and zone that
  # radosgw's first start created, then radosgw is started again to read them.
  # GLACIER stands for an archive class: RGW lists it as written (and serves it: the fault proxy plays S3's
  # InvalidObjectState).
  local sc
  for sc in STANDARD_IA GLACIER; do
    run setup radosgw-admin -c "$CONF" -n "$NAME" zonegroup placement add --rgw-zonegroup default \
      --placement-id default-placement --storage-class "$sc"
    run setup radosgw-admin -c "$CONF" -n "$NAME" zone placement add --rgw-zone default \
      --placement-id default-placement --storage-class "$sc" --data-pool "default.rgw.${sc,,}.data"
  done
  local rgw_pid
  rgw_pid=$(awk -v n="$NAME" '$2 == n { print $1 }' "$DIR/pids" | tail -n 1)
  kill "$rgw_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$rgw_pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$rgw_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do port_busy "$PORT" || break; sleep 0.05; done
  grep -v "^$rgw_pid " "$DIR/pids" >"$DIR/pids.new"; mv "$DIR/pids.new" "$DIR/pids"
  launch "$NAME" radosgw -c "$CONF" -n "$NAME" -f
  wait_for "HTTP 200 on http://127.0.0.1:$PORT/ (restarted)" "$NAME" "$DIR/log/$NAME.log" http_ok "$PORT"
  run setup radosgw-admin -c "$CONF" user create --uid=tester --display-name="replicate tests $inst" \
    --access-key="$AK" --secret="$SK"

  local U=${inst^^}
  {
    printf 'RGW_%s_ENDPOINT=%q\n' "$U" "http://127.0.0.1:$PORT"
    printf 'RGW_%s_ACCESS_KEY=%q\n' "$U" "$AK"
    printf 'RGW_%s_SECRET_KEY=%q\n' "$U" "$SK"
    printf 'RGW_%s_LOG=%q\n' "$U" "$DIR/log/$NAME.log"
  } >"$DIR/env"
  say "[$inst] up: http://127.0.0.1:$PORT (pids: $(awk '{printf "%s%s=%s", (NR>1?" ":""), $2, $1}' "$DIR/pids"))"
)

# The env file lists every instance that is up.
write_env() {
  local i tmp
  mkdir -p "$STATE_DIR"
  tmp=$(mktemp "$STATE_DIR/.env.XXXXXX")
  {
    echo "# Written by scripts/rgw.sh; source it (set -a; . FILE; set +a) to get the test S3 endpoints and keys."
    printf 'RGW_STATE_DIR=%q\n' "$STATE_DIR"
    echo "RGW_REGION=us-east-1"
  } >"$tmp"
  for i in a b; do
    inst_up "$i" && cat "$STATE_DIR/$i/env" >>"$tmp"
  done
  mv -f "$tmp" "$ENV_FILE"
}

lock() {
  mkdir -p "$(dirname "$STATE_DIR")"
  exec 9>>"$STATE_DIR.lock"
  flock -w 300 9 || die "another scripts/rgw.sh holds $STATE_DIR.lock"
}

cmd_start() {
  local n=${1:-2} i pids=() todo=() rc=0 t0
  local list
  list=$(instances_for "$n")
  for c in monmaptool ceph-mon ceph-osd radosgw radosgw-admin ceph curl ss flock setsid; do
    command -v "$c" >/dev/null || die "'$c' not found: run scripts/install-deps.sh"
  done
  lock
  t0=$(date +%s.%N)
  for i in $list; do
    if inst_up "$i"; then
      say "[$i] already up"
    else
      # A broken cluster's daemons hang on shutdown waiting for each other: wait 2 s, not 10, before KILL.
      [ -d "$STATE_DIR/$i" ] && say "[$i] cleaning stale state" && KILL_AFTER=20 inst_kill "$i"
      todo+=("$i")
    fi
  done
  # Instances are independent clusters: start them in parallel.
  for i in "${todo[@]}"; do
    inst_start "$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  write_env
  [ $rc -eq 0 ] || die "start failed (see messages above)"
  [ ${#todo[@]} -eq 0 ] || say "started ${todo[*]} in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s; env: $ENV_FILE"
}

cmd_stop() {
  local i
  lock
  for i in a b; do
    [ -d "$STATE_DIR/$i" ] && { inst_kill "$i" && say "[$i] stopped"; } &
  done
  wait
  rm -rf "$STATE_DIR"
}

cmd_status() {
  local i n=${1:-2} want rc=0 MON2 MON1 PORT AK SK DIR CONF NAME
  want=" $(instances_for "$n") "
  for i in a b; do
    inst_conf "$i"
    if inst_up "$i"; then
      say "[$i] up: http://127.0.0.1:$PORT"
    else
      if [ -d "$DIR" ]; then say "[$i] down (stale state in $DIR)"; else say "[$i] down"; fi
      [[ $want == *" $i "* ]] && rc=1
    fi
  done
  return $rc
}

cmd_env() {
  [ -f "$ENV_FILE" ] || die "no env file ($ENV_FILE): run scripts/rgw.sh start"
  cat "$ENV_FILE"
}

case ${1:-} in
  start) cmd_start "${2:-2}" ;;
  stop) cmd_stop ;;
  status) cmd_status "${2:-2}" ;;
  env) cmd_env ;;
  *) echo "usage: $0 start [1|2] | stop | status [1|2] | env" >&2; exit 2 ;;
esac
