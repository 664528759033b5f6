/* The restore point of one run: what its manifest says the source held when the run ended. Each key's last
 * event in the manifest decides: an object record (pass 1 records every object the run saw, later passes what
 * they copied) puts that version in, a "deleted" record (a later pass found the key gone at the source) takes
 * the key out. Built by an external sort (sorted runs of a bounded number of records in unlinked temporary
 * files, merged on the fly), so memory is bounded however many keys the run saw; read back in key order, as
 * often as needed (manifest_point_rewind). Knows nothing of S3.
 * Must not: hold the whole restore point in memory. */
#ifndef MANIFEST_POINT_H
#define MANIFEST_POINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct manifest_point_entry {
    const char *key;           /* source key as recorded */
    const char *target_key;    /* the key in the backup */
    const char *etag;          /* the source's ETag */
    const char *target_etag;   /* the ETag of the recorded version in the backup */
    const char *last_modified; /* the source's Last-Modified */
    const char *version_id;    /* the recorded version in the backup, or NULL (not recorded) */
    const char *record;        /* the object record's line as the manifest holds it (chains copy it verbatim) */
    uint64_t size;
};

struct manifest_point_stats {
    uint64_t records;         /* object records read */
    uint64_t deleted;         /* deleted records read */
    uint64_t entries;         /* keys in the restore point */
    uint64_t without_version; /* of those, how many name no version */
    uint64_t etag_differs;    /* of those, how many have a target ETag other than the source's */
    uint64_t bytes;           /* their total size */
    int corrupt;              /* corrupt lines skipped */
    int runs;                 /* sorted runs written (1 for a manifest that fits in memory) */
    char digest[17];          /* FNV-1a 64 of every entry's record line in key order, in hex: two restore points
                               * with the same digest hold the same records */
};

struct manifest_point;
/* Reads the manifest at path and sorts it into temporary files in tmpdir (NULL: $TMPDIR or /tmp), holding at
 * most max_records records in memory at once (0: a default of 100,000). NULL with a message in err. */
struct manifest_point *manifest_point_build(const char *path, const char *tmpdir, size_t max_records, char *err,
                                            size_t errlen);
/* The restore point of a chain: paths[0] a full manifest, each later one a delta on the one before it (its
 * header's chain.base equals names[i - 1]), read in that order so that each key's last event wins. Refused
 * (NULL, err naming the manifest) when a link does not name the one before it, or when the result differs from
 * the restore point the last manifest describes (entries, digest): a missing or corrupt piece is never taken
 * for a smaller restore point. manifest_point_build(path) is this with one full manifest; given a delta alone
 * it refuses. */
struct manifest_point *manifest_point_build_chain(const char *const *paths, const char *const *names, size_t n,
                                                  const char *tmpdir, size_t max_records, char *err, size_t errlen);
/* A restore point built as a manifest is written (manifest_writer_tee with manifest_point_builder_tee): the same
 * point manifest_point_build gives for the file written, without reading it back, and with the file's summary
 * lines (manifest_point_lines). NULL when out of memory. */
struct manifest_point_builder;
struct manifest_record;
struct manifest_point_builder *manifest_point_builder_new(const char *tmpdir, size_t max_records);
/* The manifest writer's tee: takes every line written (rec as given to the writer, line its text). */
void manifest_point_builder_tee(void *builder, const struct manifest_record *rec, const char *line);
/* Ends the building (the builder is freed either way): the point, or NULL with a message in err. */
struct manifest_point *manifest_point_builder_finish(struct manifest_point_builder *b, char *err, size_t errlen);
void manifest_point_builder_free(struct manifest_point_builder *b);
/* A built point's summary lines: the header line (returned; NULL when the point was read from files), then the
 * pass and trailer lines in order in *tail. */
const char *manifest_point_lines(const struct manifest_point *p, const char *const **tail, size_t *ntail);

/* Saves p (rewound after) to path with the caller's meta text, so that a later run can use it without reading
 * manifests again. 0, or -1 with a message in err (path removed). */
int manifest_point_save(struct manifest_point *p, const char *path, const char *meta, char *err, size_t errlen);
/* Opens a saved point, its meta text in *meta (the caller frees it). Its bytes are read once to check the length
 * and CRC the file recorded (an older file's entries: their count and digest): NULL with a message in err when
 * they differ (a damaged or torn file). */
struct manifest_point *manifest_point_open(const char *path, char **meta, char *err, size_t errlen);

/* 1 = *out is the next entry in key order (valid until the next call), 0 = end, -1 = read error (err). */
int manifest_point_next(struct manifest_point *p, const struct manifest_point_entry **out, char *err,
                        size_t errlen);
/* Starts again from the first key. 0 or -1. */
int manifest_point_rewind(struct manifest_point *p);
const struct manifest_point_stats *manifest_point_stats(const struct manifest_point *p);
void manifest_point_free(struct manifest_point *p);

#endif
