#!/usr/bin/env bash
# Same-endpoint replication (both buckets on RGW A, one profile: server-side copies). The source holds awkward
# keys (space, +, %, #, ?, unicode, //, trailing /, a 1,000-byte key), a 0-byte object, a 12 MiB, a 20 MiB
# multipart and an 11 MiB awkwardly named object, objects with every preserved header and user metadata, and
# 1,100 small objects.
#   run 1: --multipart-threshold 8MiB --part-size 5MiB (CopyObject for everything)
#   run 2: into another target with --copy-threshold 10MiB, so the 12 and 20 MiB objects go through
#          UploadPartCopy (checked in RGW's log); the awkward 11 MiB key must arrive intact however it is copied
# After each, awscli must see in the target the same keys, sizes, content MD5s, headers and user metadata.
# Exit 0 pass, 77 skip, anything else fail.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init

src=$(bucket src) dst=$(bucket dst) dst2=$(bucket dst-upc)
no_client_get() { # RUN FROM [KEY-REGEX]: replicate did not GET the big source objects (awscli's reads ignored)
  local gets
  # (GetObjectTagging, "?tagging=", reads the tags, not the object's bytes)
  gets=$(log_requests a "$2" "\"GET /$src/big/${3:-}" | grep -av 'aws-cli/' | grep -av '?tagging= ')
  if [ -z "$gets" ]; then
    ok "$1: the big objects' bytes never went through the client (no GET of $src/big/${3:-*} by it in RGW's log)"
  else
    bad "$1: server-side copy, yet the big objects were read through the client:"
    head -n 5 <<<"$gets" | indent
  fi
}
build_source a "$src"
mkbucket a "$dst" --versioned
mkbucket a "$dst2" --versioned
say "source ready after ${SECONDS}s"

snapshot_bg a "$src" "$T_TMP/src.json" "${DETAIL_KEYS[@]}" # (reads only: runs alongside run 1)

# ---- run 1: server-side CopyObject
mark=$(log_mark a)
rep run1 "${SAME[@]}" --multipart-threshold 8MiB --part-size 5MiB --json "s3://$src" "s3://$dst"
log_sync a "$dst"
snapshot_bg a "$dst" "$T_TMP/dst.json" "${DETAIL_KEYS[@]}"
snapshot_wait "$T_TMP/src.json" || die "cannot read the source back with awscli"
check "awscli sees the $SRC_COUNT source objects as written (awkward keys: 1,000-byte, //, trailing /, %41%25, unicode)" \
  source_ok "$T_TMP/src.json"
e2=$(jget "$T_TMP/src.json" "d['objects']['$KEY_BIG2']['etag']")
check "the 20 MiB source object is multipart (ETag $e2)" grep -q -- '-[0-9]' <<<"$e2"

expect_rc run1 0 "run 1: replicate s3://$src -> s3://$dst on one endpoint"
check "run 1: JSON copy_mode is server-side ($(jget "$T_TMP/run1.out" 'd["copy_mode"]'))" \
  test "$(jget "$T_TMP/run1.out" 'd["copy_mode"]')" = server-side
check "run 1: JSON objects_copied = $SRC_COUNT ($(jget "$T_TMP/run1.out" 'd["objects_copied"]')), failed 0" \
  test "$(jget "$T_TMP/run1.out" '(d["objects_copied"], d["objects_failed"])')" = "($SRC_COUNT, 0)"
no_client_get run1 "$mark"

# ---- run 2: UploadPartCopy above 10 MiB (while awscli reads run 1's target)
mark=$(log_mark a)
rep run2 "${SAME[@]}" --multipart-threshold 8MiB --part-size 5MiB --copy-threshold 10MiB --json \
  "s3://$src" "s3://$dst2"
log_sync a "$dst2"
snapshot_bg a "$dst2" "$T_TMP/dst2.json" "${DETAIL_KEYS[@]}"

snapshot_wait "$T_TMP/dst.json"
check "run 1: the target has the same keys, sizes, content MD5s, headers and metadata as the source" \
  compare_snapshots "$T_TMP/src.json" "$T_TMP/dst.json"
check "run 1: the target carries .replicate/marker" \
  test "$(jget "$T_TMP/dst.json" "'.replicate/marker' in d['objects']")" = true

expect_rc run2 0 "run 2: replicate s3://$src -> s3://$dst2 with --copy-threshold 10MiB"
check "run 2: JSON objects_copied = $SRC_COUNT ($(jget "$T_TMP/run2.out" 'd["objects_copied"]')), failed 0" \
  test "$(jget "$T_TMP/run2.out" '(d["objects_copied"], d["objects_failed"])')" = "($SRC_COUNT, 0)"
for k in "$KEY_BIG1" "$KEY_BIG2"; do
  parts=$(log_requests a "$mark" "\"PUT /$dst2/$k\\?partNumber=[0-9]+&uploadId=[^ ]* HTTP/1.1\" 200 " |
    grep -oE 'partNumber=[0-9]+' | sort -u | wc -l) # (distinct parts: a retried part counts once)
  # 12 MiB in 5 MiB parts = 3 parts, 20 MiB = 4
  if [ "$k" = "$KEY_BIG1" ]; then want=3; else want=4; fi
  check "run 2: $k was copied with UploadPartCopy in $want parts of 5 MiB (RGW logged $parts distinct parts answered 200)" \
    test "$parts" -eq "$want"
done
# (not the awkward key: RGW decodes an UploadPartCopy source twice, so replicate streams keys with '%')
no_client_get run2 "$mark" '(single-12m|multipart-20m)\.bin'
small_upc=$(log_requests a "$mark" "\"PUT /$dst2/(bulk|meta|special|empty)/[^ ]*\\?partNumber=" | head -n 3)
check "run 2: objects below the copy threshold were not copied in parts" test -z "$small_upc"
snapshot_wait "$T_TMP/dst2.json"
check "run 2: the target has the same keys, sizes, content MD5s, headers and metadata as the source" \
  compare_snapshots "$T_TMP/src.json" "$T_TMP/dst2.json"
for k in "$KEY_BIG1" "$KEY_BIG2" "$KEY_BIG3"; do
  rec=$(jget "$T_TMP/dst2.json" "d['objects']['$k']['metadata'].get('replicate-source-etag')")
  want=$(jget "$T_TMP/src.json" "d['objects']['$k']['etag']")
  got=$(jget "$T_TMP/dst2.json" "d['objects']['$k']['etag']")
  check "run 2: $k (target ETag $got) records the source ETag $want in x-amz-meta-replicate-source-etag ($rec)" \
    test "${rec//\"/}" = "$want"
done

finish
