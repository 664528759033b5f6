/* External sort of records by key: sorted runs in unlinked temporary files, merged on the fly. See
 * manifest/sort.h. Owns: the in-memory batch, the run files and their format, the merge. Must not: know what
 * the fields mean, hold more than max_records records (plus one key's group per run) in memory. */
#include "manifest/sort.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIELD_MAX (1u << 20) /* a field longer than this in a run file means the file is corrupt */
#define READ_BUF (32u << 10)  /* each run file is read this much at a time */
#define WRITE_BUF (64u << 10) /* and written */

/* The bytes of one record read from a run file: its fields point into p. Reused from record to record, so a
 * merge allocates nothing once the buffers have grown to the longest record. */
struct recmem {
    char *p;
    size_t cap;
};

/* A sorted run file, its read buffer and its current head (whose fields point into mem). */
struct run {
    FILE *f;
    long start; /* where its records begin (an adopted file may have a header before them) */
    unsigned char *rb;
    size_t rpos, rlen;
    struct manifest_sort_rec head;
    struct recmem mem;
    bool have;
};

struct manifest_sort {
    struct manifest_sort_rec *batch; /* max records, n of them in use */
    size_t max, n;
    uint64_t seq;
    int nfields;
    manifest_sort_keep_fn keep;
    struct run *runs; /* oldest first */
    int nruns, written;
    int *heap; /* the runs that have a head, as a binary min-heap by (head key, run index) */
    int nheap;
    bool finished;
    struct manifest_sort_rec *group; /* the records handed out by manifest_sort_next */
    struct recmem *gmem;             /* group[i]'s bytes (swapped with a run's when its head is taken) */
    size_t ngroup, group_cap;
    struct wbuf *out; /* the file being written */
    char tmpdir[4096];
};

/* Says in err what failed on the temporary files ("writing", ...) and why (errno; 0 = a corrupt file). -1. */
static int temp_fail(const struct manifest_sort *s, char *err, size_t errlen, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s a temporary file in %s: %s", what, s->tmpdir, errno ? strerror(errno) : "corrupt");
    return -1;
}

void manifest_sort_rec_clear(struct manifest_sort_rec *r)
{
    for (int i = 0; i < (r->packed ? 1 : MANIFEST_SORT_MAX_FIELDS); i++) free(r->f[i]);
    memset(r, 0, sizeof *r);
}

int manifest_sort_rec_pack(struct manifest_sort_rec *r, const char *const *v, int n)
{
    size_t len[MANIFEST_SORT_MAX_FIELDS], total = 0;
    for (int i = 0; i < n; i++) total += (len[i] = v[i] ? strlen(v[i]) + 1 : 0);
    char *p = v[0] ? malloc(total) : NULL;
    for (int i = 0; i < MANIFEST_SORT_MAX_FIELDS; i++) r->f[i] = NULL;
    r->packed = p != NULL;
    if (!p) return -1;
    for (int i = 0; i < n; i++) {
        if (!v[i]) continue;
        memcpy(p, v[i], len[i]);
        r->f[i] = p;
        p += len[i];
    }
    return 0;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct manifest_sort_rec *x = a, *y = b;
    int c = strcmp(x->f[0], y->f[0]);
    if (c) return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- run files: each field as a 32-bit length (0xffffffff = NULL) and its bytes, then size and kind ---- */

/* Records are written through one buffer per sort (a few large writes, not one per field). */
struct wbuf {
    FILE *f;
    struct manifest_sort_sum *sum; /* what was written is counted and checksummed here, or NULL */
    manifest_sort_visit_fn visit;  /* called with each record written, or NULL */
    void *arg;
    size_t n;
    unsigned char b[WRITE_BUF];
};

static void sum_add(struct manifest_sort_sum *sum, const unsigned char *p, size_t n)
{
    if (!sum) return;
    sum->bytes += n;
    sum->crc = crc32_iscsi((unsigned char *)(uintptr_t)p, (int)n, sum->crc); /* n <= READ_BUF, WRITE_BUF */
}

static bool wb_flush(struct wbuf *w)
{
    bool ok = w->n == 0 || fwrite(w->b, 1, w->n, w->f) == w->n;
    sum_add(w->sum, w->b, w->n);
    w->n = 0;
    return ok;
}

static bool wb_put(struct wbuf *w, const void *p, size_t n)
{
    const unsigned char *c = p;
    while (n > 0) {
        if (w->n == sizeof w->b && !wb_flush(w)) return false;
        size_t k = sizeof w->b - w->n < n ? sizeof w->b - w->n : n;
        memcpy(w->b + w->n, c, k);
        w->n += k;
        c += k;
        n -= k;
    }
    return true;
}

static bool put_field(struct wbuf *w, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX;
    return wb_put(w, &n, sizeof n) && (!s || wb_put(w, s, n));
}

static bool put_rec(struct wbuf *w, const struct manifest_sort_rec *r, int nfields)
{
    for (int i = 0; i < nfields; i++)
        if (!put_field(w, r->f[i])) return false;
    return wb_put(w, &r->size, sizeof r->size) && wb_put(w, &r->kind, 1);
}

/* Copies n bytes of run r to dst, refilling its buffer as needed. 1 done, 0 the file ended before the first
 * byte, -1 it ended part-way or failed. */
static int run_read_slow(struct run *r, void *dst, size_t n)
{
    unsigned char *d = dst;
    size_t done = 0;
    while (done < n) {
        if (r->rpos == r->rlen) {
            r->rpos = 0;
            r->rlen = fread(r->rb, 1, READ_BUF, r->f);
            if (r->rlen == 0) return done == 0 && feof(r->f) ? 0 : -1;
        }
        size_t k = r->rlen - r->rpos < n - done ? r->rlen - r->rpos : n - done;
        memcpy(d + done, r->rb + r->rpos, k);
        r->rpos += k;
        done += k;
    }
    return 1;
}

/* run_read_slow, with the common case (the bytes are in the buffer) inline: ~14 calls per record. */
static inline int run_read(struct run *r, void *dst, size_t n)
{
    if (r->rlen - r->rpos < n) return run_read_slow(r, dst, n);
    memcpy(dst, r->rb + r->rpos, n);
    r->rpos += n;
    return 1;
}

static bool mem_reserve(struct recmem *m, size_t need)
{
    if (need <= m->cap) return true;
    size_t cap = m->cap ? m->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(m->p, cap);
    if (!p) return false;
    m->p = p;
    m->cap = cap;
    return true;
}

/* Reads run r's next record into its head (fields in r->mem). 1 read, 0 end of file, -1 error. */
static int get_rec(struct run *r, int nfields)
{
    size_t off[MANIFEST_SORT_MAX_FIELDS], used = 0;
    struct manifest_sort_rec *h = &r->head;
    memset(h, 0, sizeof *h);
    for (int i = 0; i < nfields; i++) {
        uint32_t n;
        int g = run_read(r, &n, sizeof n);
        if (g <= 0) return i == 0 ? g : -1;
        if (n == UINT32_MAX) {
            off[i] = SIZE_MAX;
            continue;
        }
        if (n > FIELD_MAX || !mem_reserve(&r->mem, used + n + 1) || run_read(r, r->mem.p + used, n) != 1) return -1;
        r->mem.p[used + n] = '\0';
        off[i] = used;
        used += (size_t)n + 1;
    }
    if (run_read(r, &h->size, sizeof h->size) != 1 || run_read(r, &h->kind, 1) != 1) return -1;
    for (int i = 0; i < nfields; i++) h->f[i] = off[i] == SIZE_MAX ? NULL : r->mem.p + off[i];
    return h->f[0] ? 1 : -1;
}

FILE *manifest_sort_temp_file(const char *dir)
{
    if (!dir || !dir[0]) dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = "/tmp";
    char path[4200];
    snprintf(path, sizeof path, "%s/replicate-sort-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    unlink(path); /* nothing is left behind, whatever happens to the process */
    FILE *f = fdopen(fd, "w+");
    if (!f) close(fd);
    return f;
}

struct manifest_sort *manifest_sort_new(const char *tmpdir, size_t max_records, int nfields,
                                        manifest_sort_keep_fn keep)
{
    struct manifest_sort *s = calloc(1, sizeof *s);
    if (!s || nfields < 1 || nfields > MANIFEST_SORT_MAX_FIELDS || !max_records) goto error_clean_up;
    if (!(s->batch = calloc(max_records, sizeof *s->batch)) || !(s->out = malloc(sizeof *s->out))) goto error_clean_up;
    s->max = max_records;
    s->nfields = nfields;
    s->keep = keep;
    if (!tmpdir || !tmpdir[0]) tmpdir = getenv("TMPDIR");
    snprintf(s->tmpdir, sizeof s->tmpdir, "%s", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    return s;

error_clean_up:
    manifest_sort_free(s);
    errno = ENOMEM;
    return NULL;
}

/* The group's records point into s->gmem, which stays for the next group. */
static void group_clear(struct manifest_sort *s)
{
    s->ngroup = 0;
}

static void runs_close(struct manifest_sort *s)
{
    for (int i = 0; i < s->nruns; i++) {
        if (s->runs[i].f) fclose(s->runs[i].f);
        free(s->runs[i].rb);
        free(s->runs[i].mem.p);
    }
    s->nruns = 0;
    s->nheap = 0;
}

/* Room in the heap for one more run than there is. */
static bool grow_heap(struct manifest_sort *s)
{
    int *h = realloc(s->heap, (size_t)(s->nruns + 1) * sizeof *h);
    if (h) s->heap = h;
    return h != NULL;
}

/* A run of file f starting at start, with its read buffer (f is not closed on failure). */
static int run_init(struct run *r, FILE *f, long start)
{
    *r = (struct run){.f = f, .start = start, .rb = malloc(READ_BUF)};
    return r->rb ? 0 : -1;
}

void manifest_sort_free(struct manifest_sort *s)
{
    if (!s) return;
    for (size_t i = 0; s->batch && i < s->n; i++) manifest_sort_rec_clear(&s->batch[i]);
    free(s->batch);
    for (size_t i = 0; i < s->group_cap; i++) free(s->gmem[i].p);
    free(s->gmem);
    free(s->group);
    runs_close(s);
    free(s->runs);
    free(s->heap);
    free(s->out);
    free(s);
}

/* Writes one key's records (from where keep says) to the file being written. */
static bool put_group(const struct manifest_sort *s, const struct manifest_sort_rec *g, size_t n)
{
    for (size_t i = s->keep ? s->keep(g, n) : 0; i < n; i++) {
        if (!put_rec(s->out, &g[i], s->nfields)) return false;
        if (s->out->visit) s->out->visit(s->out->arg, &g[i]);
    }
    return true;
}

static FILE *new_file(struct manifest_sort *s, char *err, size_t errlen)
{
    FILE *f = manifest_sort_temp_file(s->tmpdir);
    if (!f) temp_fail(s, err, errlen, "cannot create");
    return f;
}

/* Starts writing records to f. */
static void file_begin(struct manifest_sort *s, FILE *f)
{
    s->out->f = f;
    s->out->n = 0;
    s->out->sum = NULL;
    s->out->visit = NULL;
}

static int file_done(struct manifest_sort *s, FILE *f, bool ok, char *err, size_t errlen)
{
    ok = wb_flush(s->out) && ok;
    if (ok && fflush(f) == 0) return 0;
    return temp_fail(s, err, errlen, "writing");
}

/* Writes the merge of every run to f from where it stands: one run, in key order. 0, or -1 (err). */
static int write_merged(struct manifest_sort *s, FILE *f, struct manifest_sort_sum *sum, manifest_sort_visit_fn visit,
                        void *arg, char *err, size_t errlen)
{
    const struct manifest_sort_rec *g;
    size_t n;
    int got = 0;
    bool ok = manifest_sort_rewind(s) == 0;
    file_begin(s, f);
    s->out->sum = sum;
    s->out->visit = visit;
    s->out->arg = arg;
    while (ok && (got = manifest_sort_next(s, &g, &n, err, errlen)) == 1) ok = put_group(s, g, n);
    if (ok && got < 0) ok = false;
    group_clear(s);
    return file_done(s, f, ok, err, errlen);
}

/* The bytes of run r from its start to its end appended to f: a run file written by put_group already holds
 * each group as the keep rule leaves it, so a merge of it alone would write the same bytes. 0 or -1. */
static int copy_run(struct manifest_sort *s, struct run *r, FILE *f, struct manifest_sort_sum *sum, char *err,
                    size_t errlen)
{
    if (fseek(r->f, r->start, SEEK_SET) != 0) return temp_fail(s, err, errlen, "reading");
    size_t n;
    while ((n = fread(r->rb, 1, READ_BUF, r->f)) > 0) {
        if (fwrite(r->rb, 1, n, f) != n) return temp_fail(s, err, errlen, "writing");
        sum_add(sum, r->rb, n);
    }
    if (ferror(r->f)) return temp_fail(s, err, errlen, "reading");
    return fflush(f) == 0 ? 0 : temp_fail(s, err, errlen, "writing");
}

int manifest_sort_write_run(struct manifest_sort *s, FILE *f, struct manifest_sort_sum *sum, char *err, size_t errlen)
{
    if (!s->finished) {
        errno = EINVAL;
        return temp_fail(s, err, errlen, "writing an unfinished sort to");
    }
    if (sum) *sum = (struct manifest_sort_sum){.crc = MANIFEST_SORT_SUM_INIT};
    int rc = s->nruns == 1 ? copy_run(s, &s->runs[0], f, sum, err, errlen)
                           : write_merged(s, f, sum, NULL, NULL, err, errlen);
    return manifest_sort_rewind(s) == 0 ? rc : temp_fail(s, err, errlen, "reading");
}

int manifest_sort_adopt_run(struct manifest_sort *s, FILE *f, char *err, size_t errlen)
{
    bool busy = s->finished || s->n || s->nruns;
    struct run *nr = busy ? NULL : realloc(s->runs, sizeof *nr);
    if (nr) s->runs = nr;
    if (!nr || run_init(&s->runs[0], f, ftell(f)) != 0 || !grow_heap(s)) {
        if (nr) free(s->runs[0].rb);
        errno = busy ? EINVAL : ENOMEM;
        return temp_fail(s, err, errlen, "adopting");
    }
    s->nruns = 1;
    s->finished = true;
    if (s->runs[0].start >= 0 && manifest_sort_rewind(s) == 0) return 0;
    s->runs[0].f = NULL; /* not taken */
    runs_close(s);
    s->finished = false;
    return temp_fail(s, err, errlen, "reading");
}

/* Merges every run into one (what a run file holds stays bounded in number). */
static int compact(struct manifest_sort *s, manifest_sort_visit_fn visit, void *arg, char *err, size_t errlen)
{
    FILE *f = new_file(s, err, errlen);
    if (!f) return -1;
    if (write_merged(s, f, NULL, visit, arg, err, errlen) != 0) {
        fclose(f);
        return -1;
    }
    runs_close(s);
    if (run_init(&s->runs[0], f, 0) != 0) {
        fclose(f);
        return temp_fail(s, err, errlen, "no memory to read");
    }
    s->nruns = 1;
    s->written++;
    return 0;
}

/* Sorts the batch and writes it as the newest run. */
static int flush_batch(struct manifest_sort *s, char *err, size_t errlen)
{
    if (s->nruns == MANIFEST_SORT_MAX_RUNS && compact(s, NULL, NULL, err, errlen) != 0) return -1;
    qsort(s->batch, s->n, sizeof *s->batch, rec_cmp);
    struct run *nr = realloc(s->runs, (size_t)(s->nruns + 1) * sizeof *nr);
    if (!nr) return temp_fail(s, err, errlen, "no memory to add");
    s->runs = nr;
    if (!grow_heap(s)) return temp_fail(s, err, errlen, "no memory to add");
    FILE *f = new_file(s, err, errlen);
    if (!f) return -1;
    if (run_init(&s->runs[s->nruns], f, 0) != 0) {
        fclose(f);
        return temp_fail(s, err, errlen, "no memory to add");
    }
    s->nruns++;
    s->written++;
    bool ok = true;
    file_begin(s, f);
    for (size_t i = 0, j; ok && i < s->n; i = j) {
        for (j = i + 1; j < s->n && strcmp(s->batch[j].f[0], s->batch[i].f[0]) == 0; j++) continue;
        ok = put_group(s, &s->batch[i], j - i);
    }
    for (size_t i = 0; i < s->n; i++) manifest_sort_rec_clear(&s->batch[i]);
    s->n = 0;
    return file_done(s, f, ok, err, errlen);
}

int manifest_sort_add(struct manifest_sort *s, struct manifest_sort_rec *r, char *err, size_t errlen)
{
    if (s->finished || !r->f[0]) {
        manifest_sort_rec_clear(r);
        errno = EINVAL;
        return temp_fail(s, err, errlen, "adding a record after the end or without a key to");
    }
    r->seq = s->seq++;
    s->batch[s->n++] = *r;
    memset(r, 0, sizeof *r);
    return s->n == s->max ? flush_batch(s, err, errlen) : 0;
}

int manifest_sort_finish(struct manifest_sort *s, char *err, size_t errlen)
{
    if (!s->finished && (s->n || s->nruns == 0) && flush_batch(s, err, errlen) != 0) return -1;
    s->finished = true;
    if (manifest_sort_rewind(s) != 0) {
        return temp_fail(s, err, errlen, "reading");
    }
    return 0;
}

/* ---- the merge: a binary min-heap of the runs by (head key, run index), so equal keys come out oldest run
 * first, and within a run in the order written: the order the records were added ---- */

static bool run_before(const struct manifest_sort *s, int a, int b)
{
    int c = strcmp(s->runs[a].head.f[0], s->runs[b].head.f[0]);
    return c < 0 || (c == 0 && a < b);
}

static void sift_down(struct manifest_sort *s, int i)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < s->nheap && run_before(s, s->heap[l], s->heap[m])) m = l;
        if (l + 1 < s->nheap && run_before(s, s->heap[l + 1], s->heap[m])) m = l + 1;
        if (m == i) return;
        int t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

int manifest_sort_rewind(struct manifest_sort *s)
{
    group_clear(s);
    s->nheap = 0;
    for (int i = 0; i < s->nruns; i++) {
        struct run *r = &s->runs[i];
        if (fseek(r->f, r->start, SEEK_SET) != 0) return -1;
        r->rpos = r->rlen = 0;
        int g = get_rec(r, s->nfields);
        if (g < 0) return -1;
        r->have = g == 1;
        if (r->have) s->heap[s->nheap++] = i;
    }
    for (int i = s->nheap / 2 - 1; i >= 0; i--) sift_down(s, i);
    return 0;
}

/* Appends run r's head to the group (its bytes change hands: the group's spare buffer becomes the run's) and
 * reads the run's next record. 0 or -1. */
static int take_head(struct manifest_sort *s, struct run *r)
{
    if (s->ngroup == s->group_cap) {
        size_t cap = s->group_cap ? s->group_cap * 2 : 8;
        struct manifest_sort_rec *g = realloc(s->group, cap * sizeof *g);
        if (g) s->group = g;
        struct recmem *m = g ? realloc(s->gmem, cap * sizeof *m) : NULL;
        if (!m) return -1;
        s->gmem = m;
        memset(m + s->group_cap, 0, (cap - s->group_cap) * sizeof *m);
        s->group_cap = cap;
    }
    struct recmem spare = s->gmem[s->ngroup];
    s->gmem[s->ngroup] = r->mem;
    r->mem = spare;
    s->group[s->ngroup++] = r->head;
    int g = get_rec(r, s->nfields);
    if (g < 0) return -1;
    r->have = g == 1;
    return 0;
}

int manifest_sort_next(struct manifest_sort *s, const struct manifest_sort_rec **group, size_t *n, char *err,
                       size_t errlen)
{
    group_clear(s);
    if (s->nheap == 0) return 0;
    errno = 0;
    const char *key = NULL; /* the group's key: its first record's, which stays where it is until the next call */
    while (s->nheap > 0) {
        struct run *r = &s->runs[s->heap[0]];
        if (key && strcmp(r->head.f[0], key) != 0) break;
        do {
            if (take_head(s, r) != 0) return temp_fail(s, err, errlen, "reading");
            key = s->group[0].f[0];
        } while (r->have && strcmp(r->head.f[0], key) == 0);
        if (!r->have) s->heap[0] = s->heap[--s->nheap];
        sift_down(s, 0);
    }
    *group = s->group;
    *n = s->ngroup;
    return 1;
}

int manifest_sort_merge_runs(struct manifest_sort *s, manifest_sort_visit_fn visit, void *arg, char *err,
                             size_t errlen)
{
    if (!s->finished) {
        errno = EINVAL;
        return temp_fail(s, err, errlen, "merging an unfinished sort in");
    }
    if (s->nruns > 1) {
        if (compact(s, visit, arg, err, errlen) != 0) return -1;
    } else if (visit) { /* already one run: its groups are as the keep rule leaves them */
        const struct manifest_sort_rec *g;
        size_t n;
        int got;
        if (manifest_sort_rewind(s) != 0) return temp_fail(s, err, errlen, "reading");
        while ((got = manifest_sort_next(s, &g, &n, err, errlen)) == 1)
            for (size_t i = s->keep ? s->keep(g, n) : 0; i < n; i++) visit(arg, &g[i]);
        if (got < 0) return -1;
    }
    return manifest_sort_rewind(s) == 0 ? 0 : temp_fail(s, err, errlen, "reading");
}

int manifest_sort_runs(const struct manifest_sort *s)
{
    return s->written;
}
