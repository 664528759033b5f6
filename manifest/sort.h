/* External sort of manifest-derived records (private to manifest/): records are collected in memory up to a
 * bound, sorted by key (strcmp byte order, ties in the order added) and written as sorted runs to unlinked
 * temporary files; reading merges the runs on the fly and hands out each key's records as one group, in the
 * order they were added. Used by the restore point (manifest/point.c) and the source-ETag index
 * (manifest/index.c). Knows nothing of what the fields mean. */
#ifndef MANIFEST_SORT_H
#define MANIFEST_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#define MANIFEST_SORT_MAX_FIELDS 7
#define MANIFEST_SORT_MAX_RUNS 64 /* more runs than this are merged into one first (bounded open files) */

struct manifest_sort_rec {
    char *f[MANIFEST_SORT_MAX_FIELDS]; /* f[0] the key, never NULL; other fields may be NULL; malloc'd */
    uint64_t size;
    uint64_t seq;       /* the order added (set by manifest_sort_add) */
    unsigned char kind; /* the caller's tag */
    bool packed;        /* the fields live in f[0]'s allocation (manifest_sort_rec_pack): only f[0] is freed */
};

/* Given one key's records in the order added (n >= 1), the index of the first one that still matters: the
 * records before it are dropped when a run is written (e.g. n - 1: only the last record of a key counts).
 * It must leave a group it already cut as it is (a run file of one run is copied as it stands). */
typedef size_t (*manifest_sort_keep_fn)(const struct manifest_sort_rec *group, size_t n);

struct manifest_sort;
/* Records are sorted in memory max_records at a time; nfields (<= MANIFEST_SORT_MAX_FIELDS) fields are stored.
 * tmpdir NULL: $TMPDIR or /tmp. NULL on ENOMEM. */
struct manifest_sort *manifest_sort_new(const char *tmpdir, size_t max_records, int nfields,
                                        manifest_sort_keep_fn keep);
/* Takes the record (its fields are consumed: owned by the sorter, or freed, even on error; *r is cleared).
 * 0, or -1 with a message in err. Not allowed after manifest_sort_finish. */
int manifest_sort_add(struct manifest_sort *s, struct manifest_sort_rec *r, char *err, size_t errlen);
/* Writes what is still in memory as a last run (an empty run when nothing was added) and rewinds for reading.
 * 0, or -1 with a message in err. */
int manifest_sort_finish(struct manifest_sort *s, char *err, size_t errlen);
/* Reading: 1 = *group holds the next key's records (*n >= 1) in the order added, valid until the next call;
 * 0 = end; -1 = read error (err). */
int manifest_sort_next(struct manifest_sort *s, const struct manifest_sort_rec **group, size_t *n, char *err,
                       size_t errlen);
/* What a run written to a file holds: its length and CRC-32C (Castagnoli, as crc32_iscsi computes it from
 * MANIFEST_SORT_SUM_INIT), so that a reader can check the bytes before it trusts them. */
struct manifest_sort_sum {
    uint64_t bytes;
    uint32_t crc;
};
#define MANIFEST_SORT_SUM_INIT 0xffffffffu
/* A finished sort's records (each key's group as the keep rule leaves it) written to f from where it stands, as
 * one run in key order: a file manifest_sort_adopt_run can read back; with sum, what was written is counted and
 * checksummed there. Rewinds s after. 0, or -1 with err. */
int manifest_sort_write_run(struct manifest_sort *s, FILE *f, struct manifest_sort_sum *sum, char *err,
                            size_t errlen);
/* An empty, unfinished sort takes f, positioned at a run that manifest_sort_write_run wrote, as its only run and
 * is finished (f is closed with the sort). 0, or -1 with err (f not taken). */
int manifest_sort_adopt_run(struct manifest_sort *s, FILE *f, char *err, size_t errlen);
/* Called with each record that stays (the keep rule's), in key order. */
typedef void (*manifest_sort_visit_fn)(void *arg, const struct manifest_sort_rec *rec);
/* A finished sort of several runs merges them into one run file (each key's group as the keep rule leaves it),
 * so that every later read is sequential instead of a merge; rewinds s. With visit, every record that stays is
 * shown to it once as it is written (or read, when there was one run already): one pass for what the caller
 * would read next. Needs the disk of one more copy of the records while it runs. 0, or -1 with err. */
int manifest_sort_merge_runs(struct manifest_sort *s, manifest_sort_visit_fn visit, void *arg, char *err,
                             size_t errlen);
/* Starts reading again from the first key. 0 or -1. */
int manifest_sort_rewind(struct manifest_sort *s);
/* Sorted runs written so far (compactions of MANIFEST_SORT_MAX_RUNS runs into one count as one more). */
int manifest_sort_runs(const struct manifest_sort *s);
/* A new temporary file in dir (NULL: $TMPDIR or /tmp), opened "w+" and already unlinked. NULL with errno. */
FILE *manifest_sort_temp_file(const char *dir);
/* Sets r's first n fields to copies of v[0..n) (v[0] the key, not NULL; the others may be NULL) in one
 * allocation. 0, or -1 (out of memory: r is left empty). */
int manifest_sort_rec_pack(struct manifest_sort_rec *r, const char *const *v, int n);
void manifest_sort_rec_clear(struct manifest_sort_rec *r);
void manifest_sort_free(struct manifest_sort *s);

#endif
