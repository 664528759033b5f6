#!/usr/bin/env bash
# Additional checksums (x-amz-checksum-*) end to end. Ceph RGW 16 ignores them (a wrong x-amz-checksum-crc32 is
# stored, a HEAD with x-amz-checksum-mode names none), so a fault proxy in front of each side acts as Amazon S3
# does (tests/tools/faultproxy --s3-checksums: a write whose checksum header does not match its body is refused
# with BadDigest and not stored; every object written through it gets a checksum, CRC64NVME by default;
# GET/HEAD with checksum mode name it). A cross-endpoint backup through two such proxies:
#   - the source holds objects with CRC64NVME (S3's default), CRC32C, CRC32, SHA1, SHA256, a multipart object
#     with a full-object CRC64NVME, and one written to RGW directly (no checksum): exit 0, every whole object
#     with a checksum is written with it and the target's proxy verified each one, none refused;
#   - the manifest records each object's algorithm and value (the ones awscli reported when uploading), none for
#     the object without; the target names the same checksum for a CRC32C object (it kept the one sent);
#   - a no-change run copies nothing;
#   - --verify --deep passes, with every full-object checksum checked against the bytes read back; it finds a
#     difference when the target's bytes of one object come back changed (the detail names the recorded
#     checksum), and when an object is overwritten on the target behind replicate's back;
#   - a multipart source whose part layout the copy does not reproduce (parts of 8 MiB, copied in 5 MiB): with
#     some source reads corrupted, the CRC64NVME combined from the parts does not match the source's, the object
#     is copied again, exit 0, the target equals the source (before checksums such a change went unnoticed);
#   - a target that refuses checksum headers (400 InvalidArgument "Unsupported header", as Backblaze B2): the
#     refusal is said once, the objects are written without them, exit 0, the target equals the source; a source
#     refusing x-amz-checksum-mode (501): said once, exit 0, the target equals the source.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy jq

s3tool_via() { # SIDE URL ARGS...: s3tool with that side's keys at another endpoint (a proxy)
  local side=$1 url=$2 ak sk
  shift 2
  side_keys "$side"
  AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_ENDPOINT_URL=$url AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    "$TOOLS/s3tool" "$@"
}
# run_copy LABEL SRC-ENDPOINT DST-ENDPOINT FROM TO [ARGS...]: one replicate run from a to b; $T_TMP/LABEL.json and
# .err, exit status in rc
run_copy() {
  local label=$1 se=$2 de=$3 from=$4 to=$5
  shift 5
  "$REPLICATE" --no-progress --settle 600 --state-dir "$T_TMP/state-$label" --json --source-profile a \
    --target-profile b --source-endpoint "$se" --target-endpoint "$de" "$@" "s3://$from" "s3://$to" \
    >"$T_TMP/$label.json" 2>"$T_TMP/$label.err"
  rc=$?
}
# run_verify LABEL SRC-ENDPOINT DST-ENDPOINT STATE FROM TO: --verify --deep --json; exit status in rc
run_verify() {
  local label=$1 se=$2 de=$3 st=$4 from=$5 to=$6
  "$REPLICATE" --no-progress --verify --deep --json --state-dir "$st" --source-profile a --target-profile b \
    --source-endpoint "$se" --target-endpoint "$de" "s3://$from" "s3://$to" >"$T_TMP/$label.json" \
    2>"$T_TMP/$label.err"
  rc=$?
}
js() { jq -r "$2" "$T_TMP/$1.json"; } # LABEL EXPR

tag=k$(date +%s)$$
src=$tag-src dst=$tag-dst
mkbucket a "$src"
mkbucket b "$dst" --versioned

# ---- the source, written through a checksum-aware proxy (it keeps the checksums; it runs for the whole test)
# (lay/big's part reads are corrupted at random, its tags are not: with seed 5 3 of the first 5 part reads, none
# of the next 5)
start_proxy pa "$RGW_A_ENDPOINT" 0 --s3-checksums --rule "none:lay/big?tagging" --faults corrupt-body \
  --only "GET /$src/lay/" --rate 0.25 --seed "${LAYOUT_SEED:-5}" --log "$T_TMP/pa.log"
pa_pid=$PROXY_PID pa=$PROXY_URL
s3tool_via a "$pa" fill "$src" c/fill- 20 1 70000 11 || die "s3tool fill through the proxy"
mkdir -p "$T_TMP/up"
declare -A sent_value
for alg in CRC32C CRC32 SHA1 SHA256; do
  head -c $((3000 + ${#alg} * 1001)) /dev/urandom >"$T_TMP/up/$alg"
  out=$(aws_at a "$pa" s3api put-object --bucket "$src" --key "c/algo-$alg" --body "$T_TMP/up/$alg" \
    --checksum-algorithm "$alg" --output json) || die "put-object --checksum-algorithm $alg through the proxy"
  f=Checksum${alg}
  sent_value[$alg]=$(jq -r ".$f // empty" <<<"$out")
  [ -n "${sent_value[$alg]}" ] || die "awscli reported no $f for c/algo-$alg: $out"
done
aws_at a "$pa" s3api put-object --bucket "$src" --key c/algo-CRC32C-2 --body "$T_TMP/up/CRC32C" \
  --checksum-algorithm CRC32C >/dev/null || die "put-object"
s3tool_via a "$pa" put "$src" c/multi $((20 * MiB + 5)) 3 || die "s3tool put (multipart) through the proxy"
s3tool_on a put "$src" c/direct 4321 4 || die "s3tool put to RGW directly"
s3tool_via a "$pa" put "$src" lay/big $((20 * MiB + 11)) 5 || die "s3tool put (multipart) through the proxy"
n_ck=26 # objects under c/ with a checksum: 20 filled, 5 with an algorithm, 1 multipart (full-object CRC64NVME)
say "source s3://$src on A: 20 small objects (CRC64NVME), 5 with CRC32C/CRC32/SHA1/SHA256, a 20 MiB multipart" \
  "object, one without a checksum; lay/big (20 MiB in 8 MiB parts)"
h=$(aws_at a "$pa" s3api head-object --bucket "$src" --key c/algo-CRC32C --checksum-mode ENABLED --query ChecksumCRC32C \
  --output text)
check "the source's proxy names the CRC32C of c/algo-CRC32C on HEAD with checksum mode ($h)" \
  test "$h" = "${sent_value[CRC32C]}"

# ---- the backup through a checksum-aware proxy in front of the target
start_proxy pb "$RGW_B_ENDPOINT" 0 --s3-checksums --log "$T_TMP/pb.log"
pb_pid=$PROXY_PID pb=$PROXY_URL
run_copy full "$pa" "$pb" "$src/c" "$dst/c"
[ "$rc" = 0 ] && ok "backup through both proxies: exit 0" || { bad "backup: exit $rc"; tail -n 20 "$T_TMP/full.err"; }
kill -USR1 "$pb_pid"
sleep 0.3
sent=$(js full .checksums.sent)
ver=$(jq -r .checksums.verified "$T_TMP/pb.counts.json")
badd=$(jq -r .checksums.bad_digest "$T_TMP/pb.counts.json")
[ "$sent" = $((n_ck - 1)) ] && ok "$sent whole objects were written with the source's checksum (the multipart one is not)" ||
  bad "$sent objects written with a checksum, expected $((n_ck - 1))"
[ "$ver" = "$sent" ] && [ "$badd" = 0 ] && ok "the target's proxy verified each of them ($ver), none refused" ||
  bad "the target's proxy verified $ver, refused $badd (sent $sent)"
grep -q 'refused' "$T_TMP/full.err" && bad "a refusal was logged: $(grep refused "$T_TMP/full.err" | head -n 1)"
same_content a "$src/c" b "$dst/c" backup

mans=("$T_TMP"/state-full/*/manifests/*.jsonl) # the first run's only, so far
man=${mans[0]}
rec() { jq -r --arg k "$1" 'select(.t=="object" and .key==$k) | if .checksum then .checksum.algorithm+" "+.checksum.value else "none" end' "$man" | tail -n 1; }
good=0
for alg in CRC32C CRC32 SHA1 SHA256; do
  r=$(rec "c/algo-$alg")
  [ "$r" = "$alg ${sent_value[$alg]}" ] && good=$((good + 1)) || bad "manifest: c/algo-$alg records '$r', expected '$alg ${sent_value[$alg]}'"
done
[ "$good" = 4 ] && ok "the manifest records the CRC32C, CRC32, SHA1 and SHA256 awscli sent"
n_rec=$(jq -r 'select(.t=="object" and .checksum) | .key' "$man" | sort -u | wc -l)
[ "$n_rec" = "$n_ck" ] && ok "the manifest records a checksum for each of the $n_ck objects that have one" ||
  bad "the manifest records $n_rec checksums, expected $n_ck"
r=$(rec c/multi)
[[ $r == "CRC64NVME "* ]] && [[ $r != *-* ]] && ok "the multipart object's full-object CRC64NVME is recorded ($r)" ||
  bad "c/multi records '$r'"
r=$(rec c/direct)
[ "$r" = none ] && ok "the object without a checksum records none" || bad "c/direct records '$r'"
t=$(aws_at b "$pb" s3api head-object --bucket "$dst" --key c/algo-CRC32C --checksum-mode ENABLED --query ChecksumCRC32C \
  --output text)
check "the target names the source's CRC32C for c/algo-CRC32C ($t)" test "$t" = "${sent_value[CRC32C]}"

# ---- no change: nothing copied
run_copy full "$pa" "$pb" "$src/c" "$dst/c"
[ "$rc" = 0 ] && [ "$(js full .objects_copied)" = 0 ] && ok "a no-change run copies nothing" ||
  bad "no-change run: exit $rc, $(js full .objects_copied) copied"

# ---- --verify --deep
run_verify deep "$pa" "$pb" "$T_TMP/state-full" "$src/c" "$dst/c"
[ "$rc" = 0 ] && ok "--verify --deep: exit 0" || { bad "--verify --deep: exit $rc"; tail -n 20 "$T_TMP/deep.err"; }
n=$(js deep .deep.checksums_checked)
[ "$n" = "$n_ck" ] && ok "--verify --deep checked $n objects against their recorded checksums" ||
  bad "--verify --deep checked $n recorded checksums, expected $n_ck"

# the target's endpoint stays the same (the local state, where the checksums are recorded, is per endpoint)
stop_proxy "$pb_pid"
pb_port=${pb##*:}
start_proxy pc "$RGW_B_ENDPOINT" "$pb_port" --rule "corrupt-body:GET /$dst/c/algo-SHA1" --log "$T_TMP/pc.log"
pc_pid=$PROXY_PID
run_verify changed "$pa" "$pb" "$T_TMP/state-full" "$src/c" "$dst/c"
stop_proxy "$pc_pid"
start_proxy pb2 "$RGW_B_ENDPOINT" "$pb_port" --log "$T_TMP/pb2.log"
pb_pid=$PROXY_PID
d=$(js changed '[.discrepancies[] | select(.kind=="different")] | map(.target_key + ": " + .detail) | .[0] // ""')
[ "$rc" = 5 ] && [[ $d == "c/algo-SHA1: "*"checksum recorded"*"SHA1 recorded ${sent_value[SHA1]}"* ]] &&
  ok "the target's bytes of c/algo-SHA1 read back changed: exit 5, '$d'" || bad "changed bytes: exit $rc, '$d'"

head -c 5000 /dev/urandom >"$T_TMP/other"
aws_on b s3api put-object --bucket "$dst" --key c/fill-000003 --body "$T_TMP/other" >/dev/null || die "overwrite on B"
run_verify over "$pa" "$pb" "$T_TMP/state-full" "$src/c" "$dst/c"
d=$(js over '[.discrepancies[] | select(.kind=="different")] | map(.target_key) | join(" ")')
[ "$rc" = 5 ] && [ "$d" = c/fill-000003 ] && ok "an object overwritten on the target behind replicate's back: exit 5 ($d)" ||
  bad "overwritten object: exit $rc, different: '$d'"

# ---- a multipart source read with corruption, its part layout not reproduced: the combined CRC catches it
dst2=$tag-lay
mkbucket b "$dst2" --versioned
run_copy lay "$pa" "$RGW_B_ENDPOINT" "$src/lay" "$dst2/lay" --part-size 5MiB --multipart-threshold 8MiB -v
n=$(grep -c "^GET /$src/lay/big .*fault=corrupt-body" "$T_TMP/pa.log")
miss=$(grep -c "do not match the source's CRC64NVME checksum" "$T_TMP/lay.err")
[ "$rc" = 0 ] && ok "a copy with $n corrupted source reads of its parts: exit 0" ||
  { bad "copy with corrupted source reads: exit $rc"; tail -n 20 "$T_TMP/lay.err"; }
[ "$n" -gt 0 ] && [ "$miss" -gt 0 ] &&
  ok "the parts' combined CRC64NVME did not match the source's $miss time(s); the object was copied again" ||
  bad "$n corrupted reads, $miss checksum mismatches (LAYOUT_SEED picks which reads are corrupted)"
same_content a "$src/lay" b "$dst2/lay" layout

# ---- a target that refuses checksum headers, a source that refuses checksum mode
dst3=$tag-refuse
mkbucket b "$dst3" --versioned
start_proxy pr "$RGW_B_ENDPOINT" 0 --refuse-checksums --log "$T_TMP/pr.log"
pr_pid=$PROXY_PID
run_copy refuse "$pa" "$PROXY_URL" "$src/c" "$dst3/c" --jobs 2
stop_proxy "$pr_pid"
said=$(grep -c 'the target refused the additional checksum header' "$T_TMP/refuse.err")
refused=$(jq -r .checksums.refused "$T_TMP/pr.counts.json")
[ "$rc" = 0 ] && ok "a target refusing checksum headers: exit 0" || { bad "refusing target: exit $rc"; tail -n 20 "$T_TMP/refuse.err"; }
[ "$said" = 1 ] && [ "$refused" -ge 1 ] && [ "$refused" -le 4 ] &&
  ok "the refusal was said once ($refused writes refused, each written again without)" ||
  bad "refusal said $said times, $refused writes refused"
[ "$(js refuse .checksums.target_refused)" = true ] && [ "$(js refuse .checksums.sent)" = 0 ] &&
  ok "JSON: checksums.target_refused true, none sent" || bad "JSON checksums: $(js refuse -c .checksums)"
grep -q "^replicate: .*Unsupported header 'x-amz-checksum-" "$T_TMP/refuse.err" &&
  ok "the log names the provider's answer" || bad "the log does not quote the provider's answer"
same_content a "$src/c" b "$dst3/c" refusing-target

dst4=$tag-mode
mkbucket b "$dst4" --versioned
start_proxy pm "$RGW_A_ENDPOINT" 0 --refuse-checksums=mode --log "$T_TMP/pm.log"
pm_pid=$PROXY_PID
run_copy mode "$PROXY_URL" "$RGW_B_ENDPOINT" "$src/c" "$dst4/c" --jobs 4
stop_proxy "$pm_pid"
said=$(grep -c 'the source refused x-amz-checksum-mode' "$T_TMP/mode.err")
[ "$rc" = 0 ] && [ "$said" = 1 ] && [ "$(js mode .checksums.source_refused)" = true ] &&
  ok "a source refusing checksum mode: exit 0, said once" || { bad "refusing source: exit $rc, said $said times"; tail -n 5 "$T_TMP/mode.err"; }
same_content a "$src/c" b "$dst4/c" refusing-source

stop_proxy "$pa_pid"
stop_proxy "$pb_pid"
show_counts pa
show_counts pb
show_counts pc
finish
