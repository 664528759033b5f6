/* A streamed ListObjectsV2: objects come out one at a time in S3 key order (UTF-8 byte order), page by
 * page, with the next page fetched while the current one is consumed. Memory: at most two pages.
 * A listing can be split into key ranges fetched in parallel and read back in order (s3_lister_new_split),
 * which makes large delta passes cost about one page round-trip per range instead of per 1000 keys. Must not:
 * write (a lister reads through a struct s3_reader). */
#ifndef S3_LIST_H
#define S3_LIST_H

#include "s3/client.h"

enum s3_list_status {
    S3_LIST_OBJECT, /* *out is valid until the next call */
    S3_LIST_WAIT,   /* a page is on its way: the ready callback fires when next() can make progress */
    S3_LIST_END,
    S3_LIST_ERROR,  /* s3_lister_error() says what failed */
};

struct s3_lister;
typedef void (*s3_lister_ready_cb)(void *ud);

/* Lists bucket/prefix for keys k with start_after < k < end_before (either bound may be NULL).
 * page_size 0 = 1000. The ready callback is called (from the loop) whenever a call to next() that returned
 * S3_LIST_WAIT can now make progress. */
struct s3_lister *s3_lister_new(struct s3_reader *r, const char *bucket, const char *prefix,
                                const char *start_after, const char *end_before, int page_size,
                                s3_lister_ready_cb ready, void *ud);
/* The same listing split at the given boundaries (sorted, strictly increasing full keys): ranges are
 * (start_after, b0], (b0, b1], ... listed concurrently, returned in order. nb may be 0. */
struct s3_lister *s3_lister_new_split(struct s3_reader *r, const char *bucket, const char *prefix,
                                      const char *start_after, const char *end_before,
                                      const char *const *bounds, size_t nb, int page_size,
                                      s3_lister_ready_cb ready, void *ud);
/* The same over ListObjectVersions: each key's latest version (version_id set), keys whose latest version is a
 * delete marker left out, so it lists what ListObjectsV2 lists, each object naming its version. Pages carry
 * the older versions too: a bucket with much history costs more pages. */
struct s3_lister *s3_lister_new_versions_split(struct s3_reader *r, const char *bucket, const char *prefix,
                                               const char *start_after, const char *end_before,
                                               const char *const *bounds, size_t nb, int page_size,
                                               s3_lister_ready_cb ready, void *ud);
/* One key range (start_after, end_inclusive] below end_before (any of them NULL), over ListObjectsV2 or, with
 * versions, as s3_lister_new_versions_split: for a caller that consumes several ranges at once, one lister each
 * (a lister reads ahead up to three pages in the range being consumed, so each range then lists at its own pace;
 * replies are parsed on the loop's worker threads, s3_loop_offload). */
struct s3_lister *s3_lister_new_range(struct s3_reader *r, bool versions, const char *bucket, const char *prefix,
                                      const char *start_after, const char *end_before, const char *end_inclusive,
                                      int page_size, s3_lister_ready_cb ready, void *ud);
enum s3_list_status s3_lister_next(struct s3_lister *l, const struct s3_object_info **out);
const char *s3_lister_error(const struct s3_lister *l);
/* The S3 error code of the reply that failed the listing ("NoSuchBucket", "AccessDenied"), "" if none. */
const char *s3_lister_error_code(const struct s3_lister *l);
/* Pages fetched so far (all ranges). */
unsigned long s3_lister_pages(const struct s3_lister *l);
/* Frees the lister; a page request still in flight is cancelled and cleaned up by the loop. NULL ok. */
void s3_lister_free(struct s3_lister *l);

#endif
