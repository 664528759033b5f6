#!/usr/bin/env bash
# Delta runs. A source on A with 40 small objects, a 12 MiB single-PUT object and a 20 MiB multipart object
# (whose ETags cannot match a target written in 5 MiB parts), replicated cross-endpoint to B and same-endpoint
# to A:
#   - a second run on the unchanged source copies nothing (also with an empty state dir: from the target);
#   - a same-size overwrite of a source object (with awscli) is copied by the next run: the target then has two
#     versions of it (list-object-versions), the newest with the new content;
#   - a source object deleted (with awscli) stays in the target, untouched (no delete marker), and the run
#     reports it (JSON objects_deleted_at_source >= 1, the key in deleted_at_source).
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh disable=SC2317
. "$(dirname "$0")/lib.sh"
lib_init b

src=$(bucket src) dst=$(bucket dst) dsta=$(bucket dst-same)
OVER=doc/same-size.txt GONE=bulk/000011
mkbucket a "$src"
s3tool_on a fill "$src" bulk/ 40 100 3000 5 || die "s3tool fill"
s3tool_on a put "$src" big/d-12m.bin $((12 * 1024 * 1024)) 3 || die "s3tool put"
s3tool_on a put "$src" big/d-20m.bin $((20 * 1024 * 1024)) 4 || die "s3tool put"
s3tool_on a put "$src" "$OVER" 1000 1 || die "s3tool put"
N=43
mkbucket b "$dst" --versioned
mkbucket a "$dsta" --versioned
OPTS=(--multipart-threshold 8MiB --part-size 5MiB --settle 0 --json)

copied() { jget "$T_TMP/$1.out" 'd["objects_copied"]'; }
verbose_copies() { # RUN: the keys a -v run logged as copied ("copied KEY (N bytes)"), one per line
  sed -nE 's/^(.*: )?copied (.*) \([0-9]+ bytes\)$/\2/p' "$T_TMP/$1.err"
}

# ---- first runs, then unchanged reruns
rep x1 "${CROSS[@]}" "${OPTS[@]}" "s3://$src" "s3://$dst"
expect_rc x1 0 "cross run 1: A:s3://$src -> B:s3://$dst"
check "cross run 1 copied all $N objects ($(copied x1))" test "$(copied x1)" = "$N"
rep s1 "${SAME[@]}" "${OPTS[@]}" "s3://$src" "s3://$dsta"
expect_rc s1 0 "same-endpoint run 1: s3://$src -> s3://$dsta"
check "same-endpoint run 1 copied all $N objects ($(copied s1))" test "$(copied s1)" = "$N"

mark=$(log_mark b)
rep x2 "${CROSS[@]}" "${OPTS[@]}" "s3://$src" "s3://$dst"
expect_rc x2 0 "cross run 2 on the unchanged source"
log_sync b "$dst"
heads=$(log_requests b "$mark" "\"HEAD /$dst/[^ ]" | grep -av 'aws-cli/' | grep -avc "/$dst/\.replicate/")
check "cross run 2 sent no HEAD for an object ($heads): the multipart ETags that differ are in the source-ETag index" \
  test "$heads" -eq 0
check "cross run 2 copied nothing (objects_copied $(copied x2); multipart ETags differ between the sides)" \
  test "$(copied x2)" = 0
check "cross run 2 counted all $N as unchanged ($(jget "$T_TMP/x2.out" 'd["pass_details"][-1]["unchanged"]'))" \
  test "$(jget "$T_TMP/x2.out" 'd["pass_details"][-1]["unchanged"]')" = "$N"
STATE_SAVED=$STATE
STATE=$T_TMP/state-empty
rep x2b "${CROSS[@]}" "${OPTS[@]}" "s3://$src" "s3://$dst"
STATE=$STATE_SAVED
expect_rc x2b 0 "cross run 2 again with an empty --state-dir"
check "with no local state it still copied nothing (objects_copied $(copied x2b))" test "$(copied x2b)" = 0
rep s2 "${SAME[@]}" "${OPTS[@]}" "s3://$src" "s3://$dsta"
expect_rc s2 0 "same-endpoint run 2 on the unchanged source"
check "same-endpoint run 2 copied nothing (objects_copied $(copied s2))" test "$(copied s2)" = 0

# ---- a same-size overwrite at the source
old_etag=$(aws_on a s3api head-object --bucket "$src" --key "$OVER" --query ETag --output text | tr -d '"')
head -c 1000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 1000 >"$T_TMP/new-content"
new_md5=$(md5sum <"$T_TMP/new-content" | cut -d' ' -f1)
aws_on a s3api put-object --bucket "$src" --key "$OVER" --body "$T_TMP/new-content" >/dev/null ||
  die "awscli could not overwrite $OVER"
say "overwrote $OVER at the source with other 1000 bytes (ETag $old_etag -> $new_md5)"

rep x3 "${CROSS[@]}" "${OPTS[@]}" -v "s3://$src" "s3://$dst"
expect_rc x3 0 "cross run 3 after the overwrite"
check "cross run 3 copied exactly 1 object ($(copied x3))" test "$(copied x3)" = 1
check "cross run 3 (-v) logged $OVER as its one copy ($(verbose_copies x3 | tr '\n' ' '))" \
  test "$(verbose_copies x3)" = "$OVER"
rep s3 "${SAME[@]}" "${OPTS[@]}" "s3://$src" "s3://$dsta"
expect_rc s3 0 "same-endpoint run 3 after the overwrite"
check "same-endpoint run 3 copied exactly 1 object ($(copied s3))" test "$(copied s3)" = 1

versions_ok() { # SIDE BUCKET: two versions of $OVER: the old content and, latest, the new
  aws_on "$1" s3api list-object-versions --bucket "$2" --prefix "$OVER" --output json >"$T_TMP/versions.json"
  s3check versions "$T_TMP/versions.json" "$OVER" "$new_md5" "$old_etag"
}
check "B:s3://$dst holds two versions of $OVER: the old one and, latest, the new content" versions_ok b "$dst"
check "A:s3://$dsta holds two versions of $OVER: the old one and, latest, the new content" versions_ok a "$dsta"

# ---- a source object deleted with awscli (the only DELETEs in the suite must come from awscli)
gone_etag=$(aws_on a s3api head-object --bucket "$src" --key "$GONE" --query ETag --output text | tr -d '"')
aws_on a s3api delete-object --bucket "$src" --key "$GONE" >/dev/null || die "awscli could not delete $GONE"
say "deleted $GONE (ETag $gone_etag) at the source with awscli"

rep x4 "${CROSS[@]}" "${OPTS[@]}" "s3://$src" "s3://$dst"
expect_rc x4 0 "cross run 4 after the deletion"
check "cross run 4 copied nothing ($(copied x4))" test "$(copied x4)" = 0
check "cross run 4 reports objects_deleted_at_source >= 1 ($(jget "$T_TMP/x4.out" 'd["objects_deleted_at_source"]'))" \
  test "$(jget "$T_TMP/x4.out" 'd["objects_deleted_at_source"] >= 1')" = true
check "cross run 4 names $GONE in deleted_at_source ($(jget "$T_TMP/x4.out" 'd["deleted_at_source"]'))" \
  test "$(jget "$T_TMP/x4.out" "any((x if isinstance(x, str) else x.get('key')) == '$GONE' for x in d['deleted_at_source'])")" = true
rep x5 "${CROSS[@]}" --settle 0 "s3://$src" "s3://$dst"
expect_rc x5 0 "cross run 5 (human output) after the deletion"
check "the human summary names $GONE as deleted at the source" grep -q -- "$GONE" "$T_TMP/x5.out" "$T_TMP/x5.err"
grep -h -- "$GONE" "$T_TMP/x5.out" "$T_TMP/x5.err" | head -n 3 | indent
rep s4 "${SAME[@]}" "${OPTS[@]}" "s3://$src" "s3://$dsta"
expect_rc s4 0 "same-endpoint run 4 after the deletion"
check "same-endpoint run 4 names $GONE in deleted_at_source ($(jget "$T_TMP/s4.out" 'd["deleted_at_source"]'))" \
  test "$(jget "$T_TMP/s4.out" "any((x if isinstance(x, str) else x.get('key')) == '$GONE' for x in d['deleted_at_source'])")" = true

gone_ok() { # SIDE BUCKET: the target still has $GONE, one version, the source's content, no delete marker
  aws_on "$1" s3api list-object-versions --bucket "$2" --prefix "$GONE" --output json >"$T_TMP/versions.json"
  s3check versions "$T_TMP/versions.json" "$GONE" "$gone_etag"
}
check "B:s3://$dst still holds $GONE as it was (one version, ETag $gone_etag, no delete marker)" gone_ok b "$dst"
check "A:s3://$dsta still holds $GONE as it was (one version, ETag $gone_etag, no delete marker)" gone_ok a "$dsta"

finish
