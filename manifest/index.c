/* The source-ETag index: target key -> (size, target ETag, source ETag) for objects whose target ETag is not
 * the source's, so change detection needs no HEAD. Open addressing with linear probing, FNV-1a, doubling. */
#include "manifest/manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_INITIAL_CAP 64 /* a power of two; the capacity stays one */

struct index_entry {
    char *key;               /* NULL marks an empty slot; one allocation holds key, target and source ETag */
    const char *target_etag; /* points into key's allocation */
    const char *source_etag; /* points into key's allocation */
    uint64_t hash;
    uint64_t size;
};

struct manifest_index {
    struct index_entry *slots;
    size_t cap;   /* power of two */
    size_t count; /* occupied slots; kept at most 3/4 of cap */
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* The slot holding key, or the empty slot where it belongs. The table is never full, so this ends. */
static size_t index_find(const struct index_entry *slots, size_t cap, const char *key, uint64_t hash)
{
    size_t mask = cap - 1, i = (size_t)hash & mask;

    while (slots[i].key && (slots[i].hash != hash || strcmp(slots[i].key, key) != 0))
        i = (i + 1) & mask;
    return i;
}

struct manifest_index *manifest_index_new(void)
{
    struct manifest_index *idx = calloc(1, sizeof *idx);

    if (!idx) goto error_clean_up;
    idx->cap = INDEX_INITIAL_CAP;
    idx->slots = calloc(idx->cap, sizeof *idx->slots);
    if (!idx->slots) goto error_clean_up;
    return idx;

error_clean_up:
    manifest_index_free(idx);
    errno = ENOMEM;
    return NULL;
}

void manifest_index_free(struct manifest_index *idx)
{
    if (!idx) return;
    for (size_t i = 0; idx->slots && i < idx->cap; i++)
        free(idx->slots[i].key);
    free(idx->slots);
    free(idx);
}

static int index_grow(struct manifest_index *idx)
{
    size_t cap = idx->cap * 2;
    struct index_entry *slots;

    if (cap < idx->cap || cap > SIZE_MAX / sizeof *slots) {
        errno = ENOMEM;
        return -1;
    }
    slots = calloc(cap, sizeof *slots);
    if (!slots) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < idx->cap; i++) {
        if (idx->slots[i].key)
            slots[index_find(slots, cap, idx->slots[i].key, idx->slots[i].hash)] = idx->slots[i];
    }
    free(idx->slots);
    idx->slots = slots;
    idx->cap = cap;
    return 0;
}

int manifest_index_put(struct manifest_index *idx, const char *target_key, uint64_t size,
                       const char *target_etag, const char *source_etag)
{
    size_t klen, tlen, slen, i;
    uint64_t hash;
    char *block;
    struct index_entry *e;

    if (!idx || !target_key || !target_etag || !source_etag) {
        errno = EINVAL;
        return -1;
    }
    /* Grow before inserting so the table always keeps a free slot (load factor <= 3/4). */
    if ((idx->count + 1) > idx->cap / 4 * 3 && index_grow(idx) != 0) return -1;
    klen = strlen(target_key);
    tlen = strlen(target_etag);
    slen = strlen(source_etag);
    block = malloc(klen + tlen + slen + 3);
    if (!block) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(block, target_key, klen + 1);
    memcpy(block + klen + 1, target_etag, tlen + 1);
    memcpy(block + klen + 1 + tlen + 1, source_etag, slen + 1);
    hash = fnv1a(target_key);
    i = index_find(idx->slots, idx->cap, target_key, hash);
    e = &idx->slots[i];
    if (e->key)
        free(e->key); /* replace: the newest record for a key wins */
    else
        idx->count++;
    e->key = block;
    e->target_etag = block + klen + 1;
    e->source_etag = block + klen + 1 + tlen + 1;
    e->hash = hash;
    e->size = size;
    return 0;
}

/* Drops key's mapping if it describes this target object (same size and target ETag). Backward-shift
 * deletion: entries after the hole that may live there move up, so lookups never need tombstones. */
static void index_remove_if(struct manifest_index *idx, const char *key, uint64_t size,
                            const char *target_etag)
{
    size_t mask = idx->cap - 1, hole = index_find(idx->slots, idx->cap, key, fnv1a(key)), j = hole;
    struct index_entry *e = &idx->slots[hole];

    if (!e->key || e->size != size || strcmp(e->target_etag, target_etag) != 0) return;
    free(e->key);
    e->key = NULL;
    idx->count--;
    for (;;) {
        size_t home;

        j = (j + 1) & mask;
        if (!idx->slots[j].key) break;
        home = (size_t)idx->slots[j].hash & mask;
        /* stays if its home lies cyclically in (hole, j] */
        if (hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)) continue;
        idx->slots[hole] = idx->slots[j];
        idx->slots[j].key = NULL;
        hole = j;
    }
}

const char *manifest_index_get(const struct manifest_index *idx, const char *target_key, uint64_t size,
                               const char *target_etag)
{
    const struct index_entry *e;

    if (!idx || !target_key || !target_etag) return NULL;
    e = &idx->slots[index_find(idx->slots, idx->cap, target_key, fnv1a(target_key))];
    if (!e->key || e->size != size || strcmp(e->target_etag, target_etag) != 0) return NULL;
    return e->source_etag;
}

size_t manifest_index_count(const struct manifest_index *idx)
{
    return idx ? idx->count : 0;
}

/* Reads every object record of path into idx through take (corrupt lines counted). 0, or -1 with errno. */
static int index_load_with(struct manifest_index *idx, const char *path, int *corrupt,
                           int (*take)(struct manifest_index *idx, const struct manifest_object *o))
{
    struct manifest_reader *r;
    struct manifest_record rec;
    int rc, saved;

    if (!idx || !path) {
        errno = EINVAL;
        return -1;
    }
    r = manifest_reader_open(path, NULL, 0);
    if (!r) return -1;
    while ((rc = manifest_reader_next(r, &rec, NULL, 0)) != 0) {
        if (rc < 0) {
            if (corrupt && *corrupt < INT_MAX) (*corrupt)++;
            continue;
        }
        if (rec.type != MANIFEST_REC_OBJECT) continue;
        if (take(idx, &rec.object) != 0) {
            saved = errno;
            manifest_reader_close(r);
            errno = saved;
            return -1;
        }
    }
    manifest_reader_close(r);
    return 0;
}

static int take_etag(struct manifest_index *idx, const struct manifest_object *o)
{
    if (strcmp(o->target_etag, o->etag) == 0) {
        /* A later record says this very target object (size, ETag) matches its source's ETag now: the mapping
         * is stale. A record about another state of the key leaves the mapping alone, so loading older files
         * after newer ones cannot erase a newer mapping. */
        index_remove_if(idx, o->target_key, o->size, o->target_etag);
        return 0;
    }
    return manifest_index_put(idx, o->target_key, o->size, o->target_etag, o->etag);
}

int manifest_index_load(struct manifest_index *idx, const char *path, int *corrupt)
{
    return index_load_with(idx, path, corrupt, take_etag);
}

/* A record without a checksum says nothing against one recorded for the same target object elsewhere. */
static int take_checksum(struct manifest_index *idx, const struct manifest_object *o)
{
    if (!o->checksum_algorithm || !o->checksum) return 0;
    char v[96];
    snprintf(v, sizeof v, "%s %s", o->checksum_algorithm, o->checksum); /* the reader bounds both */
    return manifest_index_put(idx, o->target_key, o->size, o->target_etag, v);
}

int manifest_index_load_checksums(struct manifest_index *idx, const char *path, int *corrupt)
{
    return index_load_with(idx, path, corrupt, take_checksum);
}
