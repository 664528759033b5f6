/* The synthetic S3 endpoint's buckets (tests/tools/synth_s3.c): N generated keys that cost no memory, and an
 * overlay of the objects written since the start.
 *
 * Generated keys: key i is computed from i and the seed, and keys sort in index order (their names are
 * built so), so the key at or after any string is found by binary search: a listing page costs its 1000 keys
 * and never the bucket. Shapes are those of a web app's uploads: most keys under one long prefix
 * (uploads/2024/11/), a few other prefixes, uuid-like names, a few names that need URL encoding. Each key has
 * a deterministic size (600 B .. 48 KiB) and content; its ETag is the MD5 of that content (one of a small table
 * of contents, hashed once each).
 *
 * Two buckets: the source, and a target that holds the same keys (a replica, with a replicate marker), except a
 * --target-delta fraction that differs (half missing, half other content). The source changes by generation:
 * each model_next_generation() gives a --change fraction of its keys new content.
 *
 * The overlay: what clients wrote (PUT, copies, multipart), sorted by key, each key with its versions newest
 * first over the generated object. A copy of a generated object refers to its content instead of storing it;
 * other bodies are kept up to --store-max bytes each (bigger ones keep only their size and ETag). */
#ifndef SYNTH_MODEL_H
#define SYNTH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KEY_MAX 1024
#define SRC 0
#define DST 1

struct model_opts {
    uint64_t n, seed;
    double target_delta, change;
    const char *bucket[2];
    size_t store_max;
    /* the target's generated objects report the ETag "<source's ETag>-1" (as a multipart copy would) and
     * carry the source's ETag as replicate's copies record it (synth_s3.c answers SOURCE_ETAG_META) */
    bool target_etag_differs;
};

/* One version of an object, generated or written. */
struct ver {
    struct ver *older;
    char vid[40];
    uint64_t size;
    char etag[48];
    time_t lm;
    char *meta;          /* "Name: value\r\n" lines (Content-Type, x-amz-meta-*, ...), malloc'd, or NULL */
    unsigned char *body; /* stored content, or NULL */
    int cls, var;        /* content is generated: cls >= 0 */
    bool stored, dm;     /* body kept; a delete marker */
    bool etag_differs;   /* generated, --target-etag-differs: etag is the source's + "-1"; the source's is
                          * given back in SOURCE_ETAG_META */
};

struct sbuf {
    char *d;
    size_t n, cap;
};
void sb_add(struct sbuf *b, const void *p, size_t n);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A key (or any text) into XML: URL-encoded (encoding-type=url) or XML-escaped. */
void sb_key(struct sbuf *b, const char *s, bool url);
void sb_str(struct sbuf *b, const char *s);
void sb_u64(struct sbuf *b, uint64_t v);

void model_init(const struct model_opts *o);
const struct model_opts *model_opts(void);
/* SRC, DST, or -1 for a bucket that does not exist. */
int model_bucket(const char *name);
/* The source's generation (0 at start); the next one changes a --change fraction of the source's keys. */
int model_generation(void);
uint64_t model_next_generation(void);

/* The key of index i into out (KEY_MAX bytes); its length. */
size_t model_key(uint64_t i, char *out);
/* The index of key, or -1 if it is not a generated key. */
int64_t model_index(const char *key);

/* The latest version of key in bucket b (the overlay's, else the generated one); NULL when there is none or it
 * is a delete marker (*dm set). With vid, that version (NULL if there is none). The struct is valid until the
 * next call. */
const struct ver *model_get(int b, const char *key, const char *vid, bool *dm);
/* Content bytes [off, off+len) of a version. */
void model_read(const struct ver *v, uint64_t off, void *buf, size_t len);
/* A new version of key in bucket b, made the latest: the caller fills size/etag/meta/body (taken over). */
struct ver *model_put(int b, const char *key);
/* The Content-Type header line of a generated object (by extension). */
const char *model_content_type(const char *key);

/* Listing pages into out. after: list keys > after (NULL = from the start); prefix may be NULL; delim may be
 * NULL. ListObjectsV2 (v2) or V1; *last gets the last key or common prefix returned (for the token). */
struct list_args {
    const char *prefix, *after, *delim, *token_in, *vid_after;
    int max;
    bool url, v2, start_after_given;
    const char *start_after, *marker;
};
void model_list(int b, const struct list_args *a, struct sbuf *out, unsigned long *keys);
void model_list_versions(int b, const struct list_args *a, struct sbuf *out, unsigned long *keys);

/* Keys where the target's latest object is not the source's (missing or other ETag), and target-only keys
 * outside .replicate/: the bench's check that a run left the target exact. */
void model_diff(uint64_t *differ, uint64_t *extra);

/* The ETag a version says its source had: the recorded one for etag_differs, else its own; into out (48). */
void model_source_etag(const struct ver *v, char out[48]);

/* Helpers */
void md5_hex(const void *p, size_t n, char out[33]);
void iso_time(time_t t, char out[32]);

#endif
