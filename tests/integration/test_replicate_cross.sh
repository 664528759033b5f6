#!/usr/bin/env bash
# Cross-endpoint replication: source on RGW A, target on RGW B, separate credentials (profiles a and b in a
# temporary credentials file), so every object is streamed GET -> PUT, multipart above --multipart-threshold
# 8MiB in 5 MiB parts. The source is the one of test_replicate_same.sh (awkward keys, 0-byte object, 12, 20 and
# 11 MiB objects, every preserved header and user metadata, 1,100 small objects). Afterwards awscli must see
# the same keys, sizes, content MD5s, headers and user metadata on B, and the objects whose ETag differs must
# carry x-amz-meta-replicate-source-etag = the source ETag.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init b

src=$(bucket src) dst=$(bucket dst)
build_source a "$src"
mkbucket b "$dst" --versioned
say "source ready after ${SECONDS}s"

snapshot_bg a "$src" "$T_TMP/src.json" "${DETAIL_KEYS[@]}" # (reads only: runs alongside the replication)

mark_a=$(log_mark a)
mark_b=$(log_mark b)
rep run1 "${CROSS[@]}" --multipart-threshold 8MiB --part-size 5MiB --json "s3://$src" "s3://$dst"
log_sync a "$src"
log_sync b "$dst"
snapshot_bg b "$dst" "$T_TMP/dst.json" "${DETAIL_KEYS[@]}"
snapshot_wait "$T_TMP/src.json" || die "cannot read the source back with awscli"
check "awscli sees the $SRC_COUNT source objects as written (awkward keys: 1,000-byte, //, trailing /, %41%25, unicode)" \
  source_ok "$T_TMP/src.json"

expect_rc run1 0 "replicate A:s3://$src -> B:s3://$dst (profiles a and b)"
check "JSON copy_mode is streamed ($(jget "$T_TMP/run1.out" 'd["copy_mode"]'))" \
  test "$(jget "$T_TMP/run1.out" 'd["copy_mode"]')" = streamed
check "JSON objects_copied = $SRC_COUNT ($(jget "$T_TMP/run1.out" 'd["objects_copied"]')), failed 0" \
  test "$(jget "$T_TMP/run1.out" '(d["objects_copied"], d["objects_failed"])')" = "($SRC_COUNT, 0)"
w=$(log_writes a "$mark_a" "$src")
check "no write request reached the source bucket on A" test -z "$w"
[ -z "$w" ] || head -n 5 <<<"$w" | indent
for k in "$KEY_BIG1" "$KEY_BIG2"; do
  n=$(log_requests b "$mark_b" "\"PUT /$dst/$k\\?partNumber=[0-9]+&uploadId=[^ ]* HTTP/1.1\" 200 " |
    grep -oE 'partNumber=[0-9]+' | sort -u | wc -l) # (distinct parts: a retried part counts once)
  if [ "$k" = "$KEY_BIG1" ]; then want=3; else want=4; fi
  check "$k was uploaded to B in $want parts of 5 MiB (RGW B logged $n distinct parts answered 200)" test "$n" -eq "$want"
done

snapshot_wait "$T_TMP/dst.json"
check "the target on B has the same keys, sizes, content MD5s, headers and metadata as the source on A" \
  compare_snapshots "$T_TMP/src.json" "$T_TMP/dst.json"
check "the target carries .replicate/marker" \
  test "$(jget "$T_TMP/dst.json" "'.replicate/marker' in d['objects']")" = true
for k in "$KEY_BIG1" "$KEY_BIG2" "$KEY_BIG3"; do
  rec=$(jget "$T_TMP/dst.json" "d['objects']['$k']['metadata'].get('replicate-source-etag')")
  want=$(jget "$T_TMP/src.json" "d['objects']['$k']['etag']")
  got=$(jget "$T_TMP/dst.json" "d['objects']['$k']['etag']")
  check "$k (target ETag $got) records the source ETag $want in x-amz-meta-replicate-source-etag ($rec)" \
    test "${rec//\"/}" = "$want"
done

finish
