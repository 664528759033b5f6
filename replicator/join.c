/* The merge-join of two sorted key streams (see replicator/join.h). Must not: buffer a stream, or know what the
 * streams are (listings or restore points). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "replicator/join.h"
#include "replicator/options.h"

static enum s3_list_status lister_next(void *ud, const struct s3_object_info **out)
{
    return s3_lister_next(ud, out);
}

static const char *lister_error(void *ud)
{
    return s3_lister_error(ud);
}

struct join_input join_lister(struct s3_lister *l, size_t plen)
{
    return (struct join_input){.next = lister_next, .error = lister_error, .ud = l, .plen = plen};
}

void join_init(struct join *j, struct join_input left, struct join_input right)
{
    memset(j, 0, sizeof *j);
    j->in[0] = left;
    j->in[1] = right;
    j->failed = -1;
}

/* The tool's own objects (.replicate/) are not part of a bucket's content when a stream lists it whole. */
static bool reserved(const char *key, size_t plen)
{
    return plen == 0 && strncmp(key, RESERVED_PREFIX, sizeof RESERVED_PREFIX - 1) == 0;
}

/* Fills side i's head; false when the join must wait or has failed. */
static bool fill(struct join *j, int i)
{
    if (j->taken[i]) {
        j->h[i] = NULL;
        j->taken[i] = false;
    }
    while (!j->h[i] && !j->end[i]) {
        const struct s3_object_info *o;
        switch (j->in[i].next(j->in[i].ud, &o)) {
        case S3_LIST_OBJECT:
            if (!reserved(o->key, j->in[i].plen)) j->h[i] = o;
            break;
        case S3_LIST_WAIT: return false;
        case S3_LIST_END: j->end[i] = true; break;
        case S3_LIST_ERROR: j->failed = i; return false;
        }
    }
    return true;
}

enum join_status join_next(struct join *j, const struct s3_object_info **l, const struct s3_object_info **r)
{
    *l = *r = NULL;
    if (j->failed >= 0) return JOIN_ERROR;
    bool ready0 = fill(j, 0), ready1 = j->failed < 0 && fill(j, 1);
    if (j->failed >= 0) return JOIN_ERROR;
    if (!ready0 || !ready1) return JOIN_WAIT;
    if (j->end[0] && j->end[1]) return JOIN_END;
    int cmp = j->end[0] ? 1
              : j->end[1] ? -1
                          : strcmp(j->h[0]->key + j->in[0].plen, j->h[1]->key + j->in[1].plen);
    if (cmp <= 0) {
        *l = j->h[0];
        j->taken[0] = true;
    }
    if (cmp >= 0) {
        *r = j->h[1];
        j->taken[1] = true;
    }
    return cmp < 0 ? JOIN_LEFT : cmp > 0 ? JOIN_RIGHT : JOIN_BOTH;
}

const char *join_error(const struct join *j, int *side)
{
    if (side) *side = j->failed;
    return j->failed >= 0 ? j->in[j->failed].error(j->in[j->failed].ud) : "";
}

char *join_map_bound(const struct rep_options *o, const char *bound)
{
    if (!bound) return NULL;
    size_t pl = strlen(o->src_prefix);
    const char *rel = strncmp(bound, o->src_prefix, pl) == 0 ? bound + pl : bound;
    char *k = NULL;
    if (asprintf(&k, "%s%s", o->dst_prefix, rel) < 0) return NULL;
    return k;
}
