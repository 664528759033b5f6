/* The merge-join of two sorted key streams (listings, or a restore point read from a manifest): yields each
 * relative key once, as only-left, only-right or both. Owns the two heads, the end and error states and the
 * reserved-prefix filter. Must not: start requests or decide what a pair means (its callers do). */
#ifndef REPLICATOR_JOIN_H
#define REPLICATOR_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include "s3/list.h"

/* One input: next() as s3_lister_next (S3_LIST_OBJECT / WAIT / END / ERROR), the object valid until the next
 * call. Keys compare from plen on (the prefix the stream lists). */
struct join_input {
    enum s3_list_status (*next)(void *ud, const struct s3_object_info **out);
    const char *(*error)(void *ud);
    void *ud;
    size_t plen;
};

/* An s3_lister as a join input. */
struct join_input join_lister(struct s3_lister *l, size_t plen);

enum join_status {
    JOIN_LEFT,  /* *l only */
    JOIN_RIGHT, /* *r only */
    JOIN_BOTH,  /* the same relative key on both sides */
    JOIN_WAIT,  /* an input is waiting for a page: call again when its ready callback fires */
    JOIN_END,
    JOIN_ERROR, /* join_error() says which side and why */
};

struct join {
    struct join_input in[2];
    const struct s3_object_info *h[2];
    bool taken[2], end[2];
    int failed; /* -1, or the side whose input failed */
};

void join_init(struct join *j, struct join_input left, struct join_input right);
/* The next key. The objects returned stay valid until the next call. */
enum join_status join_next(struct join *j, const struct s3_object_info **l, const struct s3_object_info **r);
/* After JOIN_ERROR: the failed side (0 left, 1 right) and its input's message. */
const char *join_error(const struct join *j, int *side);

/* A source-side key bound (--start-after/--end-before) mapped to the target side: the same relative key under
 * the target's prefix. malloc'd, NULL for NULL. */
struct rep_options;
char *join_map_bound(const struct rep_options *o, const char *bound);

#endif
