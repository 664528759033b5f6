/* The versions of objects just written, learned in bulk: for servers whose CopyObject reply names no version
 * (Ceph RGW), one ListObjectVersions page names the new versions of up to 1000 copied keys, instead of a HEAD
 * per key. Only this tool writes the target (its lease), so a key's latest version is the one just written;
 * its ETag must also be the one the write returned, or the key is left to the caller (a HEAD).
 * Must not: decide what to copy, or write anything. */
#ifndef REPLICATOR_VERSIONS_H
#define REPLICATOR_VERSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include "replicator/replicate.h"

struct versions;

/* Called once per ask, from the loop: version_id is the learned version (valid during the call), or NULL when it
 * could not be learned this way (the caller asks the object itself). */
typedef void (*versions_cb)(const char *version_id, void *ud);

struct versions *versions_new(struct rep_ctx *ctx, const char *bucket);
/* Asks for the latest version of key, which must carry etag (no quotes). Copies both strings. */
void versions_ask(struct versions *v, const char *key, const char *etag, versions_cb cb, void *ud);
/* Called (from inside versions_ask) each time a copy starts waiting: the pass can start another copy. */
void versions_on_ask(struct versions *v, void (*cb)(void *ud), void *ud);
/* Starts listing for the asks queued so far (the pass calls it when nothing else is in flight). NULL ok. */
void versions_flush(struct versions *v);
/* Asks not yet answered (queued or being listed): the pass does not count them against --jobs, up to a cap. */
size_t versions_waiting(const struct versions *v);
/* Requests made, keys learned, keys left to the caller. */
void versions_stats(const struct versions *v, unsigned long *lists, unsigned long *learned, unsigned long *missed);
/* Cancels what is being listed (its asks are answered NULL, from the loop), then frees. NULL ok. */
void versions_free(struct versions *v);

/* Pure helpers (unit-tested). The largest string that keeps every key >= key listable after it as a
 * ListObjectVersions key-marker: key without its last UTF-8 character ("" for a one-character key). */
size_t versions_marker_len(const char *key);
/* Length of the longest common prefix of a and b that ends on a UTF-8 character boundary. */
size_t versions_common_prefix(const char *a, const char *b);

#endif
