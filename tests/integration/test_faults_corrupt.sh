#!/usr/bin/env bash
# Integrity: a proxy in front of the source changes one byte in the middle of some GET bodies
# (tests/tools/faultproxy --faults corrupt-body). A whole-object copy sends the source's plain-MD5 ETag as
# Content-MD5, so the target refuses what was read wrong (BadDigest) and the object is read again:
#   - 10% of the GETs corrupted (fixed seed, one copy at a time, so the same GETs every run): exit 0, every
#     corrupted read was refused and read again, the target equals the source (awscli against RGW directly);
#   - every GET of one key corrupted: exit 1, the key is named, and the target holds no version of it at all
#     (the corrupted bytes were never stored, not even as an older version);
#   - a multipart object piped part by part (ranged GET -> UploadPart), a proxy in front of the target changing
#     a byte in a third of the UploadPart bodies (sent without Content-MD5, so the target stores them): each
#     part whose ETag is not the MD5 of what was read is sent again, exit 0, the target equals the source.
#   - a multipart source whose part layout the copy reproduces (23 MiB in 8 MiB parts, as it was uploaded): the
#     parts are not hashed here, the target's parts must add up to the source's ETag; with some of the source
#     GETs corrupted (proxy in front of the source) the sum does not match, the object is copied again, exit
#     0, the target equals the source.
# (Where the source's part layout cannot be reproduced, a byte changed on its way from the source is not
# caught, unless the source keeps a full-object checksum (test_checksums.sh): see NOTES.md.)
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b faultproxy

tag=c$(date +%s)$$
src=$tag-src
mkbucket a "$src"
s3tool_on a fill "$src" c/ 200 1 70000 41 || die "s3tool fill"
poison=c/000123
echo "source s3://$src on A: 200 objects of 1 B - 68 KiB"

# run_copy LABEL SRC-ENDPOINT DST-ENDPOINT FROM TO [ARGS...]: one replicate run from side a to side b in a single
# pass; output in $T_TMP/LABEL.json and $T_TMP/LABEL.err, exit status in rc
run_copy() {
  local label=$1 se=$2 de=$3 from=$4 to=$5
  shift 5
  "$REPLICATE" --no-progress --settle 600 --state-dir "$T_TMP/state-$label" --json --source-profile a \
    --target-profile b --source-endpoint "$se" --target-endpoint "$de" "$@" "s3://$from" "s3://$to" \
    >"$T_TMP/$label.json" 2>"$T_TMP/$label.err"
  rc=$?
}

# ---- some reads corrupted
dst=$tag-dst
mkbucket b "$dst" --versioned
start_proxy p-some "$RGW_A_ENDPOINT" 0 --faults corrupt-body --rate 0.1 --seed 5 --log "$T_TMP/p-some.log"
pp=$PROXY_PID
run_copy some "$PROXY_URL" "$RGW_B_ENDPOINT" "$src/c" "$dst/c" --jobs 1 -v
stop_proxy "$pp"
show_counts p-some
n=$(jget "$T_TMP/p-some.counts.json" 'd["faults"]["corrupt-body"]')
refused=$(grep -c 'the target refused it; reading it again' "$T_TMP/some.err")
[ "$rc" = 0 ] && ok "a run with ${n:-0} corrupted reads: exit 0" || { bad "a run with corrupted reads: exit $rc"; tail -n 20 "$T_TMP/some.err"; }
[ "${n:-0}" -gt 5 ] && ok "$n GET bodies were corrupted" || bad "only ${n:-0} GET bodies were corrupted"
[ "$refused" = "${n:-0}" ] && ok "each of them was refused by the target and read again ($refused)" ||
  bad "$refused corrupted reads refused and read again, ${n:-0} served"
same_content a "$src/c" b "$dst/c" corrupted-reads
v=$(aws_on b s3api list-object-versions --bucket "$dst" --prefix c/ --query 'length(Versions)' --output text)
[ "$v" = 200 ] && ok "the target holds exactly 200 versions: no corrupted copy was stored" ||
  bad "the target holds $v versions, expected 200"

# ---- every read of one key corrupted
dst2=$tag-poison
mkbucket b "$dst2" --versioned
start_proxy p-poison "$RGW_A_ENDPOINT" 0 --rule "corrupt-body:/$poison" --log "$T_TMP/p-poison.log"
pp=$PROXY_PID
run_copy poison "$PROXY_URL" "$RGW_B_ENDPOINT" "$src/c" "$dst2/c"
stop_proxy "$pp"
show_counts p-poison
[ "$rc" = 1 ] && ok "every read of $poison corrupted: exit 1" || { bad "exit $rc, expected 1"; tail -n 20 "$T_TMP/poison.err"; }
line=$(grep "FAILED $poison: " "$T_TMP/poison.err" | tail -n 1)
grep -q "does not match the source ETag" <<<"$line" && ok "the output names the key and why: ${line#replicate: }" ||
  bad "no 'FAILED $poison: ... does not match the source ETag' line"
reads=$(grep -c "^GET /$src/$poison .*fault=corrupt-body" "$T_TMP/p-poison.log")
[ "$reads" = 4 ] && ok "$poison was read 4 times before giving up" || bad "$poison was read $reads times, expected 4"
v=$(aws_on b s3api list-object-versions --bucket "$dst2" --prefix "$poison" --query 'length(Versions || `[]`)' --output text)
[ "$v" = 0 ] && ok "the target holds no version of $poison" || bad "the target holds $v versions of $poison"
copied=$(jget "$T_TMP/poison.json" 'd["objects_copied"]')
[ "$copied" = 199 ] && ok "the other 199 objects were copied" || bad "$copied objects copied, expected 199"

# ---- piped multipart parts, corrupted on the way to the target
s3tool_on a put "$src" m/big $((23 * MiB + 11)) 7 || die "s3tool put"
dst3=$tag-parts
mkbucket b "$dst3" --versioned
start_proxy p-parts "$RGW_B_ENDPOINT" 0 --faults corrupt-body --only 'partNumber=' --rate 0.33 --seed 3 \
  --log "$T_TMP/p-parts.log"
pp=$PROXY_PID
run_copy parts "$RGW_A_ENDPOINT" "$PROXY_URL" "$src/m" "$dst3/m" --part-size 5MiB --multipart-threshold 8MiB -v
stop_proxy "$pp"
show_counts p-parts
n=$(grep -c "^PUT /$dst3/m/big?partNumber=.*fault=corrupt-body" "$T_TMP/p-parts.log")
again=$(grep -c 'the target stored other bytes.*running the part again' "$T_TMP/parts.err")
[ "$rc" = 0 ] && ok "a piped multipart copy with $n corrupted part uploads: exit 0" ||
  { bad "piped multipart copy with corrupted part uploads: exit $rc"; tail -n 20 "$T_TMP/parts.err"; }
[ "$n" -gt 0 ] && [ "$again" = "$n" ] && ok "each corrupted part ($n) was caught by its ETag and sent again" ||
  bad "$n part uploads corrupted, $again parts sent again"
same_content a "$src/m" b "$dst3/m" piped-parts

# ---- piped multipart parts, corrupted on the way from the source: the composite ETag catches it
s3tool_on a put "$src" n/big $((23 * MiB + 11)) 8 || die "s3tool put"
dst4=$tag-layout
mkbucket b "$dst4" --versioned
start_proxy p-layout "$RGW_A_ENDPOINT" 0 --faults corrupt-body --only "/n/big" --rate 0.2 --seed "${LAYOUT_SEED:-5}" \
  --log "$T_TMP/p-layout.log"
pp=$PROXY_PID
run_copy layout "$PROXY_URL" "$RGW_B_ENDPOINT" "$src/n" "$dst4/n" -v
stop_proxy "$pp"
show_counts p-layout
n=$(grep -c "^GET /$src/n/big .*fault=corrupt-body" "$T_TMP/p-layout.log")
miss=$(grep -c 'do not add up to the source' "$T_TMP/layout.err")
[ "$rc" = 0 ] && ok "a copy with $n corrupted source reads of its parts: exit 0" ||
  { bad "copy with corrupted source reads: exit $rc"; tail -n 20 "$T_TMP/layout.err"; }
[ "$n" -gt 0 ] && [ "$miss" -gt 0 ] && ok "the parts did not add up to the source's ETag $miss time(s) and were copied again" ||
  bad "$n corrupted reads, $miss composite mismatches"
grep -q 'now hashing each part' "$T_TMP/layout.err" && bad "fell back to hashing parts (the layout should match)"
tetag=$(aws_on b s3api head-object --bucket "$dst4" --key n/big --query ETag --output text)
setag=$(aws_on a s3api head-object --bucket "$src" --key n/big --query ETag --output text)
[ "$tetag" = "$setag" ] && ok "the target's ETag is the source's ($setag)" || bad "target ETag $tetag, source $setag"
same_content a "$src/n" b "$dst4/n" composite

finish
