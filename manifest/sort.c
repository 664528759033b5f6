/* External sort of records by key: sorted runs in unlinked temporary files, merged on the fly. See
 * manifest/sort.h. Owns: the in-memory batch, the run files and their format, the merge. Must not: know what
 * the fields mean, hold more than max_records records (plus one key's group per run) in memory. */
#include "manifest/sort.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIELD_MAX (1u << 20) /* a field longer than this in a run file means the file is corrupt */

/* A sorted run file and its current head. */
struct run {
    FILE *f;
    long start; /* where its records begin (an adopted file may have a header before them) */
    struct manifest_sort_rec head;
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
    bool finished;
    struct manifest_sort_rec *group; /* the records handed out by manifest_sort_next */
    size_t ngroup, group_cap;
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
    for (int i = 0; i < MANIFEST_SORT_MAX_FIELDS; i++) free(r->f[i]);
    memset(r, 0, sizeof *r);
}

static int rec_cmp(const void *a, const void *b)
{
    const struct manifest_sort_rec *x = a, *y = b;
    int c = strcmp(x->f[0], y->f[0]);
    if (c) return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- run files: each field as a 32-bit length (0xffffffff = NULL) and its bytes, then size and kind ---- */

static bool put_field(FILE *f, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : UINT32_MAX;
    return fwrite(&n, sizeof n, 1, f) == 1 && (!s || fwrite(s, 1, n, f) == n);
}

static bool put_rec(FILE *f, const struct manifest_sort_rec *r, int nfields)
{
    for (int i = 0; i < nfields; i++)
        if (!put_field(f, r->f[i])) return false;
    return fwrite(&r->size, sizeof r->size, 1, f) == 1 && fwrite(&r->kind, 1, 1, f) == 1;
}

/* 1 read, 0 end of file, -1 error. */
static int get_rec(FILE *f, struct manifest_sort_rec *r, int nfields)
{
    manifest_sort_rec_clear(r);
    for (int i = 0; i < nfields; i++) {
        uint32_t n;
        if (fread(&n, sizeof n, 1, f) != 1) {
            if (i == 0 && feof(f)) return 0;
            return -1;
        }
        if (n == UINT32_MAX) continue;
        if (n > FIELD_MAX || !(r->f[i] = malloc((size_t)n + 1))) return -1;
        if (n && fread(r->f[i], 1, n, f) != n) return -1;
        r->f[i][n] = '\0';
    }
    if (fread(&r->size, sizeof r->size, 1, f) != 1 || fread(&r->kind, 1, 1, f) != 1) return -1;
    return r->f[0] ? 1 : -1;
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
    if (!(s->batch = calloc(max_records, sizeof *s->batch))) goto error_clean_up;
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

static void group_clear(struct manifest_sort *s)
{
    for (size_t i = 0; i < s->ngroup; i++) manifest_sort_rec_clear(&s->group[i]);
    s->ngroup = 0;
}

static void runs_close(struct manifest_sort *s)
{
    for (int i = 0; i < s->nruns; i++) {
        manifest_sort_rec_clear(&s->runs[i].head);
        if (s->runs[i].f) fclose(s->runs[i].f);
    }
    s->nruns = 0;
}

void manifest_sort_free(struct manifest_sort *s)
{
    if (!s) return;
    for (size_t i = 0; s->batch && i < s->n; i++) manifest_sort_rec_clear(&s->batch[i]);
    free(s->batch);
    group_clear(s);
    free(s->group);
    runs_close(s);
    free(s->runs);
    free(s);
}

/* Writes one key's records (from where keep says) to f. */
static bool put_group(const struct manifest_sort *s, FILE *f, const struct manifest_sort_rec *g, size_t n)
{
    for (size_t i = s->keep ? s->keep(g, n) : 0; i < n; i++)
        if (!put_rec(f, &g[i], s->nfields)) return false;
    return true;
}

static FILE *new_file(struct manifest_sort *s, char *err, size_t errlen)
{
    FILE *f = manifest_sort_temp_file(s->tmpdir);
    if (!f) temp_fail(s, err, errlen, "cannot create");
    return f;
}

static int file_done(struct manifest_sort *s, FILE *f, bool ok, char *err, size_t errlen)
{
    if (ok && fflush(f) == 0) return 0;
    return temp_fail(s, err, errlen, "writing");
}

/* Writes the merge of every run to f from where it stands: one run, in key order. 0, or -1 (err). */
static int write_merged(struct manifest_sort *s, FILE *f, char *err, size_t errlen)
{
    const struct manifest_sort_rec *g;
    size_t n;
    int got = 0;
    bool ok = manifest_sort_rewind(s) == 0;
    while (ok && (got = manifest_sort_next(s, &g, &n, err, errlen)) == 1) ok = put_group(s, f, g, n);
    if (ok && got < 0) ok = false;
    group_clear(s);
    return file_done(s, f, ok, err, errlen);
}

int manifest_sort_write_run(struct manifest_sort *s, FILE *f, char *err, size_t errlen)
{
    if (!s->finished) {
        errno = EINVAL;
        return temp_fail(s, err, errlen, "writing an unfinished sort to");
    }
    int rc = write_merged(s, f, err, errlen);
    return manifest_sort_rewind(s) == 0 ? rc : temp_fail(s, err, errlen, "reading");
}

int manifest_sort_adopt_run(struct manifest_sort *s, FILE *f, char *err, size_t errlen)
{
    struct run *nr = s->finished || s->n || s->nruns ? NULL : realloc(s->runs, sizeof *nr);
    if (!nr) {
        errno = s->finished || s->n || s->nruns ? EINVAL : ENOMEM;
        return temp_fail(s, err, errlen, "adopting");
    }
    s->runs = nr;
    s->runs[0] = (struct run){.f = f, .start = ftell(f)};
    s->nruns = 1;
    s->finished = true;
    if (s->runs[0].start >= 0 && manifest_sort_rewind(s) == 0) return 0;
    manifest_sort_rec_clear(&s->runs[0].head);
    s->nruns = 0; /* not taken */
    s->finished = false;
    return temp_fail(s, err, errlen, "reading");
}

/* Merges every run into one (what a run file holds stays bounded in number). */
static int compact(struct manifest_sort *s, char *err, size_t errlen)
{
    FILE *f = new_file(s, err, errlen);
    if (!f) return -1;
    if (write_merged(s, f, err, errlen) != 0) {
        fclose(f);
        return -1;
    }
    runs_close(s);
    s->runs[0] = (struct run){.f = f};
    s->nruns = 1;
    s->written++;
    return 0;
}

/* Sorts the batch and writes it as the newest run. */
static int flush_batch(struct manifest_sort *s, char *err, size_t errlen)
{
    if (s->nruns == MANIFEST_SORT_MAX_RUNS && compact(s, err, errlen) != 0) return -1;
    qsort(s->batch, s->n, sizeof *s->batch, rec_cmp);
    struct run *nr = realloc(s->runs, (size_t)(s->nruns + 1) * sizeof *nr);
    if (!nr) return temp_fail(s, err, errlen, "no memory to add");
    s->runs = nr;
    FILE *f = new_file(s, err, errlen);
    if (!f) return -1;
    s->runs[s->nruns++] = (struct run){.f = f};
    s->written++;
    bool ok = true;
    for (size_t i = 0, j; ok && i < s->n; i = j) {
        for (j = i + 1; j < s->n && strcmp(s->batch[j].f[0], s->batch[i].f[0]) == 0; j++) continue;
        ok = put_group(s, f, &s->batch[i], j - i);
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

int manifest_sort_rewind(struct manifest_sort *s)
{
    group_clear(s);
    for (int i = 0; i < s->nruns; i++) {
        struct run *r = &s->runs[i];
        if (fseek(r->f, r->start, SEEK_SET) != 0) return -1;
        int g = get_rec(r->f, &r->head, s->nfields);
        if (g < 0) return -1;
        r->have = g == 1;
    }
    return 0;
}

/* Appends run r's head to the group and reads its next record. 0 or -1. */
static int take_head(struct manifest_sort *s, struct run *r)
{
    if (s->ngroup == s->group_cap) {
        size_t cap = s->group_cap ? s->group_cap * 2 : 8;
        struct manifest_sort_rec *g = realloc(s->group, cap * sizeof *g);
        if (!g) return -1;
        s->group = g;
        s->group_cap = cap;
    }
    s->group[s->ngroup++] = r->head;
    memset(&r->head, 0, sizeof r->head);
    int g = get_rec(r->f, &r->head, s->nfields);
    if (g < 0) return -1;
    r->have = g == 1;
    return 0;
}

int manifest_sort_next(struct manifest_sort *s, const struct manifest_sort_rec **group, size_t *n, char *err,
                       size_t errlen)
{
    group_clear(s);
    int best = -1;
    for (int i = 0; i < s->nruns; i++)
        if (s->runs[i].have && (best < 0 || strcmp(s->runs[i].head.f[0], s->runs[best].head.f[0]) < 0)) best = i;
    if (best < 0) return 0;
    char *key = strdup(s->runs[best].head.f[0]);
    if (!key) return temp_fail(s, err, errlen, "no memory to read");
    /* older runs first, and within a run in the order written: the order the records were added */
    errno = 0;
    for (int i = best; i < s->nruns; i++) {
        struct run *r = &s->runs[i];
        while (r->have && strcmp(r->head.f[0], key) == 0) {
            if (take_head(s, r) != 0) {
                free(key);
                return temp_fail(s, err, errlen, "reading");
            }
        }
    }
    free(key);
    *group = s->group;
    *n = s->ngroup;
    return 1;
}

int manifest_sort_runs(const struct manifest_sort *s)
{
    return s->written;
}
