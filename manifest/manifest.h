/* The manifest: a JSON Lines record of one replication run (header, one line per object copied or confirmed,
 * per-pass summaries, trailer). Written as the run goes, fsynced at pass ends; read back for resume, the
 * source-ETag map, --status and --verify. Depends on cJSON only. Must not: know of S3 or of the replicator. */
#ifndef MANIFEST_MANIFEST_H
#define MANIFEST_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MANIFEST_FORMAT 1       /* a full manifest: every object the run saw (a checkpoint of a chain) */
#define MANIFEST_FORMAT_DELTA 2 /* a delta: only what changed against the restore point of its base run */

struct manifest_header {
    const char *run_id;          /* e.g. "20261126T160137Z-4f2a" */
    const char *tool_version;
    int64_t started;             /* unix seconds */
    const char *source;          /* "s3://bucket/prefix" */
    const char *target;
    const char *source_endpoint;
    const char *target_endpoint;
    const char *options_json;    /* a JSON object text with the options, or NULL */
    /* A shard of a run split over several processes ("shard": {...} in the header): its index, the number of
     * shards (0 = not sharded) and the key range it covered (NULL = unbounded on that side). */
    int shard_index, shard_count;
    const char *range_start_after, *range_end_before;
    /* Chains ("chain" and "point" in the header; written by manifest/chain.c into the stored copy). base: the
     * stored name of the manifest this one is a delta on ("RUN.jsonl.gz"), NULL for a full manifest (format 1);
     * depth: deltas since the last full manifest (0 for one); base_digest: the digest of the base's restore
     * point (manifest_point_stats), checked when the chain is resolved. have_point: the restore point of this
     * run is described (entries, bytes, digest of its entries in key order), so a resolved chain can be
     * checked against what the run recorded. */
    const char *base;
    int depth;
    const char *base_digest;
    bool have_point;
    uint64_t point_entries, point_bytes;
    const char *point_digest;
};

struct manifest_object {
    const char *key;             /* source key (any UTF-8, may contain spaces, %, etc.) */
    uint64_t size;
    const char *etag;            /* source ETag, no quotes */
    const char *last_modified;   /* source Last-Modified as listed */
    const char *target_key;      /* key written in the target */
    const char *target_etag;     /* ETag of the target object as written (may differ for multipart) */
    const char *version_id;      /* target version id, or NULL when the target is unversioned */
    int pass;                    /* 1-based pass number */
    /* The source's S3 additional checksum that the copy was checked against and sent with ("checksum":
     * {"algorithm", "value"}), both or neither: the algorithm as S3 names it ("CRC32C", "CRC64NVME", ...; upper
     * case letters and digits) and the value as S3 gives it (base64; "<base64>-N" for a composite of N parts). */
    const char *checksum_algorithm;
    const char *checksum;
};

/* A key the run had recorded (or the target holds) that a later pass of the run found deleted at the source:
 * the restore point of the run leaves it out. */
struct manifest_deleted {
    const char *key;             /* source key */
    const char *target_key;      /* key in the target */
    int pass;
};

struct manifest_pass {
    int pass;
    bool maintenance;            /* ran with the maintenance flag on */
    double started;              /* unix seconds, fractional */
    double duration;             /* seconds */
    uint64_t listed, copied, bytes, failed, skipped;
};

struct manifest_trailer {
    int64_t ended;
    /* what replicate writes: "ok", "failed", "not-converged", "maintenance-failed", "maintenance-incomplete",
     * "interrupted" (replicator/result.h; a refused run or a configuration error ends before its manifest is
     * opened). Any string is read back: this module does not interpret it. */
    const char *result;
    uint64_t objects, bytes, failed;
    uint64_t archived;           /* objects not copied because archived (GLACIER...); written only when > 0 */
    int passes;
    double gap;                  /* seconds; 0 when the last pass ran under the maintenance flag */
    bool maintenance;
};

/* Adds the header's "chain" and "point" objects (when set) to a header line being built: for manifest/chain.c,
 * which writes the stored copies. false when cJSON could not allocate. */
struct cJSON;
bool manifest_header_add_chain(struct cJSON *o, const struct manifest_header *h);

/* ---- writing ---- */
struct manifest_writer;
/* Creates path exclusively (never overwrites). NULL on error with a message in err. */
struct manifest_writer *manifest_writer_open(const char *path, char *err, size_t errlen);
/* Each returns 0, or -1 with errno set (ENOSPC, EIO...). Lines are buffered; _pass and _trailer flush and
 * fsync. After an error the writer stays failed: every later call returns -1. */
int manifest_writer_header(struct manifest_writer *w, const struct manifest_header *h);
int manifest_writer_add(struct manifest_writer *w, const struct manifest_object *o);
int manifest_writer_deleted(struct manifest_writer *w, const struct manifest_deleted *d);
int manifest_writer_pass(struct manifest_writer *w, const struct manifest_pass *p);
int manifest_writer_trailer(struct manifest_writer *w, const struct manifest_trailer *t);
int manifest_writer_sync(struct manifest_writer *w);
/* Flushes, fsyncs and closes; returns -1 if anything failed at any time. NULL ok. */
int manifest_writer_close(struct manifest_writer *w);
/* Hands every line written from now on to fn: rec as a reader would return it (target_key and target_etag
 * filled in), line its text without the newline (both valid during the call only). */
struct manifest_record;
typedef void (*manifest_tee_fn)(void *ud, const struct manifest_record *rec, const char *line);
void manifest_writer_tee(struct manifest_writer *w, manifest_tee_fn fn, void *ud);

/* ---- reading ---- */
enum manifest_rec_type {
    MANIFEST_REC_HEADER,
    MANIFEST_REC_OBJECT,
    MANIFEST_REC_DELETED,
    MANIFEST_REC_PASS,
    MANIFEST_REC_TRAILER
};

struct manifest_record {
    enum manifest_rec_type type;
    /* Exactly one of these is meaningful per type; strings point into the reader and are valid until the
     * next manifest_reader_next call. */
    struct manifest_header header;
    struct manifest_object object;
    struct manifest_deleted deleted;
    struct manifest_pass pass;
    struct manifest_trailer trailer;
};

struct manifest_reader;
/* Opens a manifest file, or NULL with a message in err. Reads line by line (memory bounded by the longest
 * line, capped at 64 KiB). A gzip-compressed file (the copies stored in a target) is read the same way. */
struct manifest_reader *manifest_reader_open(const char *path, char *err, size_t errlen);
/* 1 = a record in *rec, 0 = end of file, -1 = corrupt line (err says which line and why); after -1 the
 * caller may call again to skip the bad line. A final line without '\n' (a crash mid-write) is reported as
 * corrupt, never returned as a record. */
int manifest_reader_next(struct manifest_reader *r, struct manifest_record *rec, char *err, size_t errlen);
void manifest_reader_close(struct manifest_reader *r);
/* The text of the record last returned (without its newline), valid until the next manifest_reader_next:
 * chains copy records verbatim, so fields this version does not know survive. */
const char *manifest_reader_line(const struct manifest_reader *r);

/* Header + pass lines + trailer of one file, for --status. trailer_found false for a crashed run. */
struct manifest_summary {
    char *run_id, *source, *target, *tool_version;
    int64_t started;
    int shard_index, shard_count;    /* from the header; shard_count 0 = not sharded */
    bool trailer_found;
    struct manifest_trailer trailer; /* result string owned by the summary */
    char *result;
    int passes;
    uint64_t objects_recorded;       /* object lines seen */
    int corrupt_lines;
    /* chains (see struct manifest_header): base NULL for a full manifest */
    char *base;
    int depth;
    bool have_point;
    uint64_t point_entries, point_bytes;
};
int manifest_summary_read(const char *path, struct manifest_summary *out, char *err, size_t errlen);
void manifest_summary_free(struct manifest_summary *s);

/* ---- the source-ETag index ----
 * Maps target key -> source ETag for objects whose target ETag differs from the source ETag (multipart
 * uploads, cross-provider copies, SSE-KMS), so change detection needs no HEAD. What the loads read is sorted
 * externally (batches of 32k records in unlinked temporary files in $TMPDIR) into one key-sorted temporary
 * file, read by blocks of ~1,000 entries through a sparse block index (one first key per block) and a cache of
 * 32 decoded blocks: memory stays flat however many mappings were loaded. Mappings put during a run are kept
 * in memory (an overlay that lookups consult first): memory grows only with what the run copies. Meant for
 * loads first, then lookups and puts; a load after a lookup works but rewrites the sorted file. Not safe for
 * use by several threads at once (lookups move the block cache). */
struct manifest_index;
struct manifest_index *manifest_index_new(void);
void manifest_index_free(struct manifest_index *idx);
/* Adds (or replaces) one mapping, newer than everything loaded; copies strings (which must not be a pointer
 * manifest_index_get returned). 0 or -1 (ENOMEM). */
int manifest_index_put(struct manifest_index *idx, const char *target_key, uint64_t size,
                       const char *target_etag, const char *source_etag);
/* The recorded source ETag for this target object if size and target ETag match the key's mapping, else NULL.
 * The string belongs to the index and is valid until the next call on idx (get, put, load, count, seal, free). */
const char *manifest_index_get(struct manifest_index *idx, const char *target_key, uint64_t size,
                               const char *target_etag);
/* Reads one manifest file's object records (corrupt lines skipped and counted into *corrupt if non-NULL): a
 * record with target_etag != etag maps its target key; one with equal ETags removes the key's mapping if it
 * has the same size and target ETag. Files loaded later are newer: their records win. 0 or -1 (errno; ENOENT
 * for a missing file, which leaves the index as it was). */
int manifest_index_load(struct manifest_index *idx, const char *path, int *corrupt);
/* The same from a restore point (manifest/point.h): each key's last record of the manifests it was built
 * from. 0, or -1 with errno. */
struct manifest_point;
int manifest_index_load_point(struct manifest_index *idx, struct manifest_point *p);
/* Merges what the loads read into the sorted file. Called by the first get, put or count after loads; call it
 * to learn whether that worked: 0, or -1 with errno (e.g. ENOSPC in $TMPDIR), after which the mappings of
 * those loads are missing (lookups of them return NULL: a HEAD decides) and every later seal returns -1. */
int manifest_index_seal(struct manifest_index *idx);
/* Mappings held. */
size_t manifest_index_count(struct manifest_index *idx);
/* The same map holding checksums instead (--verify --deep): loads every object record with a checksum as
 * target key -> "ALGORITHM value", so manifest_index_get on such an index returns e.g. "CRC32C 4waSgw==" for a
 * target object of that size and ETag. 0 or -1. */
int manifest_index_load_checksums(struct manifest_index *idx, const char *path, int *corrupt);

#endif
