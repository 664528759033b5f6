/* The source-ETag index: target key -> (size, target ETag, source ETag) for objects whose target ETag is not
 * the source's, so change detection needs no HEAD. What the loads read goes through the external sort
 * (manifest/sort.c) into one key-sorted file (an unlinked temporary file) read by blocks through a sparse
 * in-memory block index and a small cache of decoded blocks; what is put during a run stays in an in-memory
 * hash table (an overlay consulted first). Owns: the sorted file's format, the merge rules of the loads (the
 * newest record of a key wins; a record with equal ETags removes a mapping of the same target object), the
 * overlay. Must not: hold memory in proportion to what was loaded (only one block index entry per block). */
#include "manifest/manifest.h"
#include "manifest/point.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "manifest/sort.h"

#define TABLE_INITIAL_CAP 64     /* a power of two; the capacity stays one */
#define LOAD_BATCH 32768         /* records sorted in memory at once while loading */
#define BLOCK_ENTRIES 1024       /* a block of the sorted file ends after this many entries... */
#define BLOCK_BYTES (64 * 1024)  /* ...or once it holds this many bytes */
#define CACHE_BLOCKS 32          /* decoded blocks kept: the join reads up to 16 key ranges side by side */
#define ENTRY_HEAD 20            /* an entry: size (8), key, target ETag and source ETag lengths (4 each) */
#define KIND_SET 0               /* a sort record: this mapping (f[0] key, f[1] target ETag, f[2] source's) */
#define KIND_REMOVE 1            /* a sort record: drop the key's mapping if it has this size and target ETag */

/* ---- the overlay: open addressing with linear probing, FNV-1a, doubling ---- */

struct table_entry {
    char *key;               /* NULL marks an empty slot; one allocation holds key, target and source ETag */
    const char *target_etag; /* points into key's allocation */
    const char *source_etag; /* points into key's allocation */
    uint64_t hash;
    uint64_t size;
};

struct table {
    struct table_entry *slots;
    size_t cap;   /* power of two */
    size_t count; /* occupied slots; kept at most 3/4 of cap */
};

/* One block of the sorted file: where it is and its first key (the sparse index). */
struct block_ref {
    char *first;
    uint64_t off;
    uint32_t len, n;
};

struct entry {
    const char *key, *target_etag, *source_etag; /* point into the block's buffer */
    uint64_t size;
};

struct cached_block {
    size_t block; /* which block; buf NULL = an empty slot */
    uint64_t used;
    char *buf;
    struct entry *e;
    uint32_t n;
};

struct manifest_index {
    struct table overlay;        /* put during the run: newer than everything loaded */
    size_t overlay_new;          /* overlay keys the sorted file does not hold */
    struct manifest_sort *loads; /* what loads read since the last seal; NULL when none */
    bool sets_seen;              /* a mapping was ever added: removals cannot be no-ops */
    bool broken;                 /* sealing failed: only the overlay answers */
    int fd;                      /* the sorted file, or -1 */
    struct block_ref *blocks;
    size_t nblocks, cap_blocks;
    uint64_t sorted_count;       /* entries in the sorted file */
    struct cached_block cache[CACHE_BLOCKS];
    uint64_t tick;
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
static size_t table_find(const struct table_entry *slots, size_t cap, const char *key, uint64_t hash)
{
    size_t mask = cap - 1, i = (size_t)hash & mask;

    while (slots[i].key && (slots[i].hash != hash || strcmp(slots[i].key, key) != 0))
        i = (i + 1) & mask;
    return i;
}

static const struct table_entry *table_get(const struct table *t, const char *key)
{
    const struct table_entry *e = &t->slots[table_find(t->slots, t->cap, key, fnv1a(key))];
    return e->key ? e : NULL;
}

static int table_init(struct table *t)
{
    t->cap = TABLE_INITIAL_CAP;
    t->count = 0;
    t->slots = calloc(t->cap, sizeof *t->slots);
    return t->slots ? 0 : -1;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; t->slots && i < t->cap; i++) free(t->slots[i].key);
    free(t->slots);
    t->slots = NULL;
}

static int table_grow(struct table *t)
{
    size_t cap = t->cap * 2;
    struct table_entry *slots;

    if (cap < t->cap || cap > SIZE_MAX / sizeof *slots || !(slots = calloc(cap, sizeof *slots))) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].key) slots[table_find(slots, cap, t->slots[i].key, t->slots[i].hash)] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

/* Adds or replaces key's mapping. 0, or -1 (ENOMEM). */
static int table_put(struct table *t, const char *key, uint64_t size, const char *target_etag,
                     const char *source_etag)
{
    /* Grow before inserting so the table always keeps a free slot (load factor <= 3/4). */
    if ((t->count + 1) > t->cap / 4 * 3 && table_grow(t) != 0) return -1;
    size_t klen = strlen(key), tlen = strlen(target_etag), slen = strlen(source_etag);
    char *block = malloc(klen + tlen + slen + 3);
    if (!block) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(block, key, klen + 1);
    memcpy(block + klen + 1, target_etag, tlen + 1);
    memcpy(block + klen + 1 + tlen + 1, source_etag, slen + 1);
    uint64_t hash = fnv1a(key);
    struct table_entry *e = &t->slots[table_find(t->slots, t->cap, key, hash)];
    if (e->key)
        free(e->key); /* replace: the newest mapping for a key wins */
    else
        t->count++;
    *e = (struct table_entry){.key = block, .target_etag = block + klen + 1,
                              .source_etag = block + klen + 1 + tlen + 1, .hash = hash, .size = size};
    return 0;
}

/* ---- the sorted file: blocks of entries (ENTRY_HEAD, then key, target and source ETag, each NUL-ended) ---- */

static void sorted_drop(struct manifest_index *idx)
{
    for (int i = 0; i < CACHE_BLOCKS; i++) {
        free(idx->cache[i].buf);
        free(idx->cache[i].e);
    }
    memset(idx->cache, 0, sizeof idx->cache);
    for (size_t i = 0; i < idx->nblocks; i++) free(idx->blocks[i].first);
    free(idx->blocks);
    idx->blocks = NULL;
    idx->nblocks = idx->cap_blocks = 0;
    idx->sorted_count = 0;
    if (idx->fd >= 0) close(idx->fd);
    idx->fd = -1;
}

/* Reads block b into buf (len bytes) and decodes it into e (n entries). 0, or -1 (EIO: the file is corrupt). */
static int block_read(const struct manifest_index *idx, size_t b, char *buf, struct entry *e)
{
    const struct block_ref *r = &idx->blocks[b];
    size_t at = 0;
    if (pread(idx->fd, buf, r->len, (off_t)r->off) != (ssize_t)r->len) goto corrupt;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t l[3];
        if (r->len - at < ENTRY_HEAD) goto corrupt;
        memcpy(&e[i].size, buf + at, 8);
        memcpy(l, buf + at + 8, 12);
        at += ENTRY_HEAD;
        if ((uint64_t)l[0] + l[1] + l[2] + 3 > r->len - at) goto corrupt;
        e[i].key = buf + at;
        e[i].target_etag = e[i].key + l[0] + 1;
        e[i].source_etag = e[i].target_etag + l[1] + 1;
        at += (size_t)l[0] + l[1] + l[2] + 3;
    }
    return 0;

corrupt:
    errno = EIO;
    return -1;
}

/* Block b decoded, from the cache or read into its least recently used slot. NULL on error. */
static const struct cached_block *block_get(struct manifest_index *idx, size_t b)
{
    struct cached_block *c = NULL;
    for (int i = 0; i < CACHE_BLOCKS; i++) {
        struct cached_block *s = &idx->cache[i];
        if (s->buf && s->block == b) {
            s->used = ++idx->tick;
            return s;
        }
        if (!c || !s->buf || (c->buf && s->used < c->used)) c = s;
    }
    free(c->buf);
    free(c->e);
    *c = (struct cached_block){.block = b, .used = ++idx->tick, .n = idx->blocks[b].n};
    c->buf = malloc(idx->blocks[b].len ? idx->blocks[b].len : 1);
    c->e = calloc(c->n ? c->n : 1, sizeof *c->e);
    if (!c->buf || !c->e || block_read(idx, b, c->buf, c->e) != 0) {
        free(c->buf);
        free(c->e);
        memset(c, 0, sizeof *c);
        return NULL;
    }
    return c;
}

/* The sorted file's entry for key, or NULL. */
static const struct entry *sorted_find(struct manifest_index *idx, const char *key)
{
    size_t lo = 0, hi = idx->nblocks; /* the last block whose first key is <= key */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(idx->blocks[mid].first, key) <= 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return NULL;
    const struct cached_block *c = block_get(idx, lo - 1);
    if (!c) return NULL;
    size_t l = 0, h = c->n;
    while (l < h) {
        size_t mid = l + (h - l) / 2;
        int cmp = strcmp(c->e[mid].key, key);
        if (cmp == 0) return &c->e[mid];
        if (cmp < 0) l = mid + 1;
        else h = mid;
    }
    return NULL;
}

/* The sorted file being written. */
struct sorted_writer {
    FILE *f;
    uint64_t off; /* bytes written */
};

/* Appends one entry to the sorted file being written, starting a block when the current one is full. */
static int sorted_add(struct manifest_index *idx, struct sorted_writer *w, const struct manifest_sort_rec *r)
{
    struct block_ref *b = idx->nblocks ? &idx->blocks[idx->nblocks - 1] : NULL;
    uint32_t l[3] = {(uint32_t)strlen(r->f[0]), (uint32_t)strlen(r->f[1]), (uint32_t)strlen(r->f[2])};
    uint32_t need = ENTRY_HEAD + l[0] + l[1] + l[2] + 3;
    if (!b || b->n == BLOCK_ENTRIES || b->len + need > BLOCK_BYTES) {
        if (idx->nblocks == idx->cap_blocks) {
            size_t cap = idx->cap_blocks ? idx->cap_blocks * 2 : 64;
            struct block_ref *nb = realloc(idx->blocks, cap * sizeof *nb);
            if (!nb) return -1;
            idx->blocks = nb;
            idx->cap_blocks = cap;
        }
        b = &idx->blocks[idx->nblocks];
        *b = (struct block_ref){.first = strdup(r->f[0]), .off = w->off};
        if (!b->first) return -1;
        idx->nblocks++;
    }
    if (fwrite(&r->size, 8, 1, w->f) != 1 || fwrite(l, 12, 1, w->f) != 1) return -1;
    for (int i = 0; i < 3; i++)
        if (fwrite(r->f[i], 1, (size_t)l[i] + 1, w->f) != (size_t)l[i] + 1) return -1;
    b->len += need;
    b->n++;
    w->off += need;
    idx->sorted_count++;
    return 0;
}

/* Applies one key's records in the order loaded: a mapping replaces, a removal drops a mapping of the same
 * target object (size and target ETag). The mapping left, or NULL. */
static const struct manifest_sort_rec *apply_group(const struct manifest_sort_rec *g, size_t n)
{
    const struct manifest_sort_rec *m = NULL;
    for (size_t i = 0; i < n; i++) {
        if (g[i].kind == KIND_SET) m = &g[i];
        else if (m && m->size == g[i].size && strcmp(m->f[1], g[i].f[1]) == 0) m = NULL;
    }
    return m;
}

/* The last mapping of a key's records replaces whatever came before it: only it and what follows matter. */
static size_t keep_from_last_set(const struct manifest_sort_rec *g, size_t n)
{
    for (size_t i = n; i-- > 0;)
        if (g[i].kind == KIND_SET) return i;
    return 0;
}

/* ---- sealing: the loads merged into the sorted file ---- */

int manifest_index_seal(struct manifest_index *idx)
{
    if (!idx) {
        errno = EINVAL;
        return -1;
    }
    if (!idx->loads) return idx->broken ? (errno = EIO, -1) : 0;
    struct manifest_sort *s = idx->loads;
    const struct manifest_sort_rec *g;
    size_t n;
    int got = -1, saved;
    idx->loads = NULL; /* the sorted file was dropped when these loads began (index_unseal) */
    struct sorted_writer w = {.f = manifest_sort_finish(s, NULL, 0) == 0 ? manifest_sort_temp_file(NULL) : NULL};
    while (w.f && (got = manifest_sort_next(s, &g, &n, NULL, 0)) == 1) {
        const struct manifest_sort_rec *m = apply_group(g, n);
        if (m && sorted_add(idx, &w, m) != 0) got = -1;
        if (got < 0) break;
    }
    if (got == 0 && fflush(w.f) == 0 && (idx->fd = dup(fileno(w.f))) >= 0) {
        fclose(w.f);
        manifest_sort_free(s);
        return 0;
    }
    saved = errno ? errno : EIO;
    if (w.f) fclose(w.f);
    manifest_sort_free(s);
    sorted_drop(idx);
    idx->broken = true;
    errno = saved;
    return -1;
}

/* Adds one record to the loads. 0, or -1 with errno. */
static int loads_add(struct manifest_index *idx, unsigned char kind, const char *key, uint64_t size,
                     const char *target_etag, const char *source_etag)
{
    struct manifest_sort_rec r = {.f = {strdup(key), strdup(target_etag), source_etag ? strdup(source_etag) : NULL},
                                  .size = size, .kind = kind};
    if (!r.f[0] || !r.f[1] || (source_etag && !r.f[2])) {
        manifest_sort_rec_clear(&r);
        errno = ENOMEM;
        return -1;
    }
    if (kind == KIND_SET) idx->sets_seen = true;
    errno = 0;
    if (manifest_sort_add(idx->loads, &r, NULL, 0) == 0) return 0;
    if (!errno) errno = EIO;
    return -1;
}

/* Before the first load after a seal: what the index holds (the sorted file, then the overlay, newer) goes
 * back into a new sort as mappings, so the loads that follow apply on top of it in order. 0, or -1. */
static int index_unseal(struct manifest_index *idx)
{
    if (!(idx->loads = manifest_sort_new(NULL, LOAD_BATCH, 3, keep_from_last_set))) return -1;
    bool ok = true;
    for (size_t b = 0; ok && b < idx->nblocks; b++) {
        const struct cached_block *c = block_get(idx, b);
        ok = c != NULL;
        for (uint32_t i = 0; ok && i < c->n; i++)
            ok = loads_add(idx, KIND_SET, c->e[i].key, c->e[i].size, c->e[i].target_etag, c->e[i].source_etag) == 0;
    }
    for (size_t i = 0; ok && i < idx->overlay.cap; i++) {
        const struct table_entry *e = &idx->overlay.slots[i];
        if (e->key) ok = loads_add(idx, KIND_SET, e->key, e->size, e->target_etag, e->source_etag) == 0;
    }
    if (!ok) { /* the index stays as it was */
        int saved = errno;
        manifest_sort_free(idx->loads);
        idx->loads = NULL;
        errno = saved;
        return -1;
    }
    sorted_drop(idx);
    table_free(&idx->overlay);
    idx->overlay_new = 0;
    return table_init(&idx->overlay) == 0 ? 0 : (errno = ENOMEM, -1);
}

/* ---- the public calls ---- */

struct manifest_index *manifest_index_new(void)
{
    struct manifest_index *idx = calloc(1, sizeof *idx);

    if (!idx) goto error_clean_up;
    idx->fd = -1;
    if (table_init(&idx->overlay) != 0) goto error_clean_up;
    return idx;

error_clean_up:
    manifest_index_free(idx);
    errno = ENOMEM;
    return NULL;
}

void manifest_index_free(struct manifest_index *idx)
{
    if (!idx) return;
    table_free(&idx->overlay);
    manifest_sort_free(idx->loads);
    sorted_drop(idx);
    free(idx);
}

int manifest_index_put(struct manifest_index *idx, const char *target_key, uint64_t size,
                       const char *target_etag, const char *source_etag)
{
    if (!idx || !target_key || !target_etag || !source_etag) {
        errno = EINVAL;
        return -1;
    }
    if (idx->loads) manifest_index_seal(idx); /* a failure leaves the overlay, which still takes this */
    bool fresh = !table_get(&idx->overlay, target_key) && !(idx->fd >= 0 && sorted_find(idx, target_key));
    if (table_put(&idx->overlay, target_key, size, target_etag, source_etag) != 0) return -1;
    if (fresh) idx->overlay_new++;
    return 0;
}

const char *manifest_index_get(struct manifest_index *idx, const char *target_key, uint64_t size,
                               const char *target_etag)
{
    if (!idx || !target_key || !target_etag) return NULL;
    if (idx->loads) manifest_index_seal(idx);
    const struct table_entry *o = table_get(&idx->overlay, target_key);
    if (o) return o->size == size && strcmp(o->target_etag, target_etag) == 0 ? o->source_etag : NULL;
    const struct entry *e = idx->fd >= 0 ? sorted_find(idx, target_key) : NULL;
    return e && e->size == size && strcmp(e->target_etag, target_etag) == 0 ? e->source_etag : NULL;
}

size_t manifest_index_count(struct manifest_index *idx)
{
    if (!idx) return 0;
    if (idx->loads) manifest_index_seal(idx);
    return (size_t)idx->sorted_count + idx->overlay_new;
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
    if (!idx->loads && index_unseal(idx) != 0) goto failed;
    while ((rc = manifest_reader_next(r, &rec, NULL, 0)) != 0) {
        if (rc < 0) {
            if (corrupt && *corrupt < INT_MAX) (*corrupt)++;
            continue;
        }
        if (rec.type != MANIFEST_REC_OBJECT) continue;
        if (take(idx, &rec.object) != 0) goto failed;
    }
    manifest_reader_close(r);
    return 0;

failed:
    saved = errno;
    manifest_reader_close(r);
    errno = saved;
    return -1;
}

static int take_etag(struct manifest_index *idx, const struct manifest_object *o)
{
    if (strcmp(o->target_etag, o->etag) == 0) {
        /* A later record says this very target object (size, ETag) matches its source's ETag now: the mapping
         * is stale. A record about another state of the key leaves the mapping alone, so loading older files
         * after newer ones cannot erase a newer mapping. Before any mapping there is nothing to remove. */
        return idx->sets_seen ? loads_add(idx, KIND_REMOVE, o->target_key, o->size, o->target_etag, NULL) : 0;
    }
    return loads_add(idx, KIND_SET, o->target_key, o->size, o->target_etag, o->etag);
}

int manifest_index_load(struct manifest_index *idx, const char *path, int *corrupt)
{
    return index_load_with(idx, path, corrupt, take_etag);
}

int manifest_index_load_point(struct manifest_index *idx, struct manifest_point *p)
{
    if (!idx || !p) {
        errno = EINVAL;
        return -1;
    }
    if (!idx->sets_seen && manifest_point_stats(p)->etag_differs == 0)
        return 0; /* every entry's ETags are equal: take_etag would add nothing (the common case: no read) */
    if ((!idx->loads && index_unseal(idx) != 0) || manifest_point_rewind(p) != 0) return -1;
    const struct manifest_point_entry *e;
    int got;
    while ((got = manifest_point_next(p, &e, NULL, 0)) == 1) {
        struct manifest_object o = {.key = e->key, .target_key = e->target_key, .size = e->size, .etag = e->etag,
                                    .target_etag = e->target_etag};
        if (take_etag(idx, &o) != 0) return -1;
    }
    if (got < 0) errno = EIO;
    return got < 0 || manifest_point_rewind(p) != 0 ? -1 : 0;
}

/* A record without a checksum says nothing against one recorded for the same target object elsewhere. */
static int take_checksum(struct manifest_index *idx, const struct manifest_object *o)
{
    if (!o->checksum_algorithm || !o->checksum) return 0;
    char v[96];
    snprintf(v, sizeof v, "%s %s", o->checksum_algorithm, o->checksum); /* the reader bounds both */
    return loads_add(idx, KIND_SET, o->target_key, o->size, o->target_etag, v);
}

int manifest_index_load_checksums(struct manifest_index *idx, const char *path, int *corrupt)
{
    return index_load_with(idx, path, corrupt, take_checksum);
}
