/* Sharding, the pure part: balanced key ranges from a key-distribution sample, and runs made of shard
 * manifests. The records in the target and what a run does with them: replicator/shard_records.c. Must not: make a
 * request. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "replicator/result.h"
#include "replicator/shard.h"

#define SAMPLE_KEYS_MAX 4096  /* keys a stored sample keeps over all its segments */

/* ---- the key-distribution sample ---- */

static void segment_free(struct shard_segment *g)
{
    free(g->start_after);
    free(g->end_before);
    for (size_t i = 0; i < g->n; i++) free(g->keys[i]);
    free(g->keys);
    memset(g, 0, sizeof *g);
}

void shard_sample_free(struct shard_sample *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nseg; i++) segment_free(&s->seg[i]);
    free(s->seg);
    free(s->source);
    memset(s, 0, sizeof *s);
}

static char *opt_dup(const char *s, bool *ok)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *ok = false;
    return d;
}

static const char *json_str(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Range order: NULL start_after sorts first. */
static int cmp_lower(const char *a, const char *b)
{
    if (!a || !b) return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

static int cmp_segment(const void *a, const void *b)
{
    const struct shard_segment *x = a, *y = b;
    return cmp_lower(x->start_after, y->start_after);
}

int shard_sample_parse(const char *text, size_t len, struct shard_sample *out)
{
    memset(out, 0, sizeof *out);
    cJSON *j = cJSON_ParseWithLength(text, len);
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(j, "segments");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(j, "format");
    if (!cJSON_IsArray(segs) || !cJSON_IsNumber(fmt) || fmt->valuedouble != 1) {
        cJSON_Delete(j);
        return -1;
    }
    bool ok = true;
    out->source = opt_dup(json_str(j, "source"), &ok);
    int ns = cJSON_GetArraySize(segs);
    out->seg = ns ? calloc((size_t)ns, sizeof *out->seg) : NULL;
    if (ns && !out->seg) ok = false;
    const cJSON *e;
    cJSON_ArrayForEach(e, segs) {
        if (!ok) break;
        const cJSON *keys = cJSON_GetObjectItemCaseSensitive(e, "keys");
        const cJSON *objs = cJSON_GetObjectItemCaseSensitive(e, "objects");
        if (!cJSON_IsArray(keys) || !cJSON_IsNumber(objs) || objs->valuedouble < 0) {
            ok = false;
            break;
        }
        struct shard_segment *g = &out->seg[out->nseg++];
        g->start_after = opt_dup(json_str(e, "start_after"), &ok);
        g->end_before = opt_dup(json_str(e, "end_before"), &ok);
        g->objects = (uint64_t)objs->valuedouble;
        int nk = cJSON_GetArraySize(keys);
        g->keys = nk ? calloc((size_t)nk, sizeof *g->keys) : NULL;
        if (nk && !g->keys) ok = false;
        const cJSON *k;
        cJSON_ArrayForEach(k, keys) {
            if (!ok) break;
            /* sorted and inside the segment, or the record is not trusted */
            if (!cJSON_IsString(k) || (g->n && strcmp(g->keys[g->n - 1], k->valuestring) >= 0) ||
                (g->start_after && strcmp(k->valuestring, g->start_after) <= 0) ||
                (g->end_before && strcmp(k->valuestring, g->end_before) > 0)) {
                ok = false;
                break;
            }
            if (!(g->keys[g->n] = strdup(k->valuestring))) ok = false;
            else g->n++;
        }
    }
    cJSON_Delete(j);
    if (ok && out->nseg > 1) qsort(out->seg, out->nseg, sizeof *out->seg, cmp_segment);
    if (!ok) shard_sample_free(out);
    return ok ? 0 : -1;
}

char *shard_sample_json(const struct shard_sample *s, const char *target, const char *run_id, int64_t now)
{
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "format", 1);
    cJSON_AddStringToObject(j, "tool", "replicate");
    if (s->source) cJSON_AddStringToObject(j, "source", s->source);
    if (target) cJSON_AddStringToObject(j, "target", target);
    if (run_id) cJSON_AddStringToObject(j, "run_id", run_id);
    cJSON_AddNumberToObject(j, "updated", (double)now);
    cJSON *segs = cJSON_AddArrayToObject(j, "segments");
    for (size_t i = 0; segs && i < s->nseg; i++) {
        const struct shard_segment *g = &s->seg[i];
        cJSON *e = cJSON_CreateObject();
        if (!e) break;
        if (g->start_after) cJSON_AddStringToObject(e, "start_after", g->start_after);
        if (g->end_before) cJSON_AddStringToObject(e, "end_before", g->end_before);
        cJSON_AddNumberToObject(e, "objects", (double)g->objects);
        cJSON *k = cJSON_AddArrayToObject(e, "keys");
        for (size_t x = 0; k && x < g->n; x++) cJSON_AddItemToArray(k, cJSON_CreateString(g->keys[x]));
        cJSON_AddItemToArray(segs, e);
    }
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

/* Whether (a_sa, a_eb] and (b_sa, b_eb] overlap (NULL = unbounded). */
static bool overlaps(const char *a_sa, const char *a_eb, const char *b_sa, const char *b_eb)
{
    bool a_before_b = a_eb && b_sa && strcmp(a_eb, b_sa) <= 0;
    bool b_before_a = b_eb && a_sa && strcmp(b_eb, a_sa) <= 0;
    return !a_before_b && !b_before_a;
}

int shard_sample_merge(struct shard_sample *s, const char *source, const char *sa, const char *eb,
                       const struct key_sample *ks)
{
    if (source && (!s->source || strcmp(s->source, source) != 0)) {
        shard_sample_free(s);
        if (!(s->source = strdup(source))) return -1;
    }
    /* segments overlapping the range keep what lies outside it, their counts in proportion to their keys;
     * at most two parts (left, right) per segment, plus the new one */
    struct shard_segment *out = calloc(2 * s->nseg + 1, sizeof *out);
    if (!out) return -1;
    size_t k = 0;
    bool ok = true;
    for (size_t i = 0; i < s->nseg; i++) {
        struct shard_segment *g = &s->seg[i];
        if (!overlaps(g->start_after, g->end_before, sa, eb)) {
            out[k++] = *g;
            memset(g, 0, sizeof *g);
            continue;
        }
        for (int side = 0; side < 2 && ok; side++) {
            const char *cut = side == 0 ? sa : eb; /* left: (g.sa, sa]; right: (eb, g.eb] */
            if (!cut) continue;
            if (side == 0 ? (g->start_after && strcmp(g->start_after, cut) >= 0)
                          : (g->end_before && strcmp(g->end_before, cut) <= 0))
                continue;
            struct shard_segment *p = &out[k++];
            p->start_after = opt_dup(side == 0 ? g->start_after : cut, &ok);
            p->end_before = opt_dup(side == 0 ? cut : g->end_before, &ok);
            p->keys = g->n ? calloc(g->n, sizeof *p->keys) : NULL;
            if (g->n && !p->keys) ok = false;
            for (size_t x = 0; ok && x < g->n; x++) {
                int c = strcmp(g->keys[x], cut);
                if ((side == 0 && c > 0) || (side == 1 && c <= 0)) continue;
                if (!(p->keys[p->n] = strdup(g->keys[x]))) ok = false;
                else p->n++;
            }
            p->objects = g->n ? (uint64_t)((double)g->objects * (double)p->n / (double)g->n) : 0;
        }
        segment_free(g);
    }
    free(s->seg);
    s->seg = out;
    s->nseg = k;
    if (!ok) return -1;
    struct shard_segment *ns = realloc(s->seg, (s->nseg + 1) * sizeof *ns);
    if (!ns) return -1;
    s->seg = ns;
    struct shard_segment *g = &s->seg[s->nseg];
    memset(g, 0, sizeof *g);
    g->start_after = opt_dup(sa, &ok);
    g->end_before = opt_dup(eb, &ok);
    g->objects = ks->seen;
    g->keys = ks->n ? calloc(ks->n, sizeof *g->keys) : NULL;
    if (ks->n && !g->keys) ok = false;
    for (size_t i = 0; ok && i < ks->n; i++) {
        if (!(g->keys[i] = strdup(ks->keys[i]))) ok = false;
        else g->n++;
    }
    s->nseg++;
    if (!ok) return -1;
    qsort(s->seg, s->nseg, sizeof *s->seg, cmp_segment);
    /* many shards' segments: thin each to its share of SAMPLE_KEYS_MAX, evenly spaced (counts stay) */
    size_t total = 0, share = SAMPLE_KEYS_MAX / s->nseg ? SAMPLE_KEYS_MAX / s->nseg : 1;
    for (size_t i = 0; i < s->nseg; i++) total += s->seg[i].n;
    for (size_t i = 0; total > SAMPLE_KEYS_MAX && i < s->nseg; i++) {
        struct shard_segment *t = &s->seg[i];
        if (t->n <= share) continue;
        size_t kept = 0;
        for (size_t x = 0; x < t->n; x++) {
            bool keep = kept < share && x + 1 >= (kept + 1) * t->n / share;
            if (keep) t->keys[kept++] = t->keys[x];
            else free(t->keys[x]);
        }
        t->n = kept;
    }
    return 0;
}

void shard_bounds_free(char **b, int n)
{
    for (int i = 0; b && i < n - 1; i++) free(b[i]);
    free(b);
}

char **shard_bounds(const struct shard_sample *s, int n)
{
    char **b = calloc(n > 1 ? (size_t)n - 1 : 1, sizeof *b);
    if (!b) return NULL;
    double total = 0;
    for (size_t i = 0; s && i < s->nseg; i++)
        if (s->seg[i].n) total += (double)s->seg[i].objects;
    int j = 1; /* the next boundary to place: after about j * total / n objects */
    double cum = 0;
    for (size_t i = 0; total > 0 && s && i < s->nseg && j < n; i++) {
        const struct shard_segment *g = &s->seg[i];
        double w = g->n ? (double)g->objects / (double)g->n : 0; /* each sampled key stands for this many */
        for (size_t x = 0; x < g->n && j < n; x++) {
            cum += w;
            while (j < n && cum >= (double)j * total / n - 1e-9) {
                if (!(b[j - 1] = strdup(g->keys[x]))) goto nomem;
                j++;
            }
        }
    }
    /* an empty bucket: fixed two-character keys over printable ASCII; a sample too coarse to place every
     * boundary repeats the last one (the shards after it are empty) */
    for (; j < n; j++) {
        int span = 94 * 94, v = (int)((long)span * j / n);
        char k[3] = {(char)(0x21 + v / 94), (char)(0x21 + v % 94), 0};
        if (!(b[j - 1] = strdup(j > 1 && total > 0 ? b[j - 2] : k))) goto nomem;
    }
    return b;
nomem:
    shard_bounds_free(b, n);
    return NULL;
}

int shard_range(char *const *bounds, int n, int i, const char *prefix, char **sa, char **eb)
{
    *sa = *eb = NULL;
    bool ok = true;
    if (i > 0 && asprintf(sa, "%s%s", prefix, bounds[i - 1]) < 0) {
        *sa = NULL;
        ok = false;
    }
    if (ok && i < n - 1 && asprintf(eb, "%s%s\x01", prefix, bounds[i]) < 0) {
        *eb = NULL;
        ok = false;
    }
    if (!ok) {
        free(*sa);
        *sa = NULL;
    }
    return ok ? 0 : -1;
}

/* ---- runs made of shard manifests ---- */

void shard_manifest_name(char *out, size_t len, const char *run_id, int i, int n)
{
    snprintf(out, len, "%s.shard-%04d-of-%04d", run_id, i, n);
}

bool shard_parse_name(const char *key, char *run, size_t runlen, int *i, int *n)
{
    const char *name = strrchr(key, '/');
    name = name ? name + 1 : key;
    const char *dot = strstr(name, ".shard-");
    if (!dot || (size_t)(dot - name) >= runlen || dot == name) return false;
    int used = 0;
    if (sscanf(dot, ".shard-%4d-of-%4d.jsonl%n", i, n, &used) != 2 || dot[used] || *n < 1 || *i < 0 || *i >= *n)
        return false;
    memcpy(run, name, (size_t)(dot - name));
    run[dot - name] = '\0';
    return true;
}

struct shard_group *shard_group_new(const struct manifest_summary *s)
{
    struct shard_group *g = calloc(1, sizeof *g);
    if (!g || s->shard_count < 1 || !s->run_id) goto fail;
    g->count = s->shard_count;
    g->run_id = strdup(s->run_id);
    g->state = calloc((size_t)g->count, 1);
    g->result = calloc((size_t)g->count, sizeof *g->result);
    bool ok = true;
    g->agg.run_id = opt_dup(s->run_id, &ok);
    g->agg.source = opt_dup(s->source, &ok);
    g->agg.target = opt_dup(s->target, &ok);
    g->agg.tool_version = opt_dup(s->tool_version, &ok);
    g->agg.started = s->started;
    g->agg.shard_count = s->shard_count;
    g->agg.trailer.maintenance = true; /* until a shard's final pass ran without the flag */
    if (!ok || !g->run_id || !g->state || !g->result) goto fail;
    shard_group_add(g, s);
    return g;
fail:
    shard_group_free(g);
    return NULL;
}

bool shard_group_add(struct shard_group *g, const struct manifest_summary *s)
{
    if (s->shard_count != g->count || !s->run_id || strcmp(s->run_id, g->run_id) != 0) return false;
    int i = s->shard_index;
    if (g->state[i] != SHARD_MISSING) return true; /* a second copy (local and target): the first one counts */
    bool ok = s->trailer_found && rep_result_successful(rep_result_from_name(s->result));
    g->state[i] = !s->trailer_found ? SHARD_UNFINISHED : ok ? SHARD_OK : SHARD_FAILED;
    g->result[i] = strdup(s->trailer_found && s->result ? s->result : "unfinished");
    struct manifest_summary *a = &g->agg;
    if (s->started < a->started) a->started = s->started;
    a->corrupt_lines += s->corrupt_lines;
    a->objects_recorded += s->objects_recorded;
    if (s->passes > a->passes) a->passes = s->passes;
    if (s->trailer_found) {
        struct manifest_trailer *t = &a->trailer;
        if (s->trailer.ended > t->ended) t->ended = s->trailer.ended;
        t->objects += s->trailer.objects;
        t->bytes += s->trailer.bytes;
        t->failed += s->trailer.failed;
        t->archived += s->trailer.archived;
        if (s->trailer.passes > t->passes) t->passes = s->trailer.passes;
        if (s->trailer.gap > t->gap) t->gap = s->trailer.gap; /* the run's gap is its widest shard's */
        if (!s->trailer.maintenance) t->maintenance = false;
    }
    return true;
}

int shard_group_finish(struct shard_group *g)
{
    int bad = 0, done = 0;
    for (int i = 0; i < g->count; i++) {
        if (g->state[i] != SHARD_OK) bad++;
        if (g->state[i] == SHARD_OK || g->state[i] == SHARD_FAILED) done++;
    }
    free(g->agg.result);
    /* a run is ok only when every shard is; otherwise the first failed shard's result, or "incomplete" */
    const char *r = NULL;
    for (int i = 0; bad && i < g->count && !r; i++)
        if (g->state[i] == SHARD_FAILED && g->result[i]) r = g->result[i];
    if (!r) r = bad ? "incomplete" : rep_result_name(REP_RESULT_OK); /* --status's name, written by no run */
    g->agg.result = strdup(r);
    g->agg.trailer.result = g->agg.result;
    g->agg.trailer_found = done > 0 && g->agg.result;
    /* the gap is zero only when every shard's final pass ran under the maintenance flag */
    g->agg.trailer.maintenance = g->agg.trailer.maintenance && !bad;
    return bad;
}

void shard_group_problems(const struct shard_group *g, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < g->count && used + 1 < len; i++) {
        const char *why = g->state[i] == SHARD_OK ? NULL
                          : g->state[i] == SHARD_MISSING
                              ? "missing: no manifest in the target (it never started, or its first write failed)"
                          : g->state[i] == SHARD_UNFINISHED
                              ? "unfinished: its manifest has no trailer (it was killed, or it is still running)"
                              : NULL;
        char buf[200];
        if (g->state[i] == SHARD_FAILED) {
            snprintf(buf, sizeof buf, "failed: its run ended \"%s\"", g->result[i] ? g->result[i] : "?");
            why = buf;
        }
        if (!why) continue;
        int w = snprintf(out + used, len - used, "%sshard %d of %d: %s", used ? "\n" : "", i, g->count, why);
        if (w < 0) break;
        used += (size_t)w < len - used ? (size_t)w : len - used - 1;
    }
}

void shard_group_free(struct shard_group *g)
{
    if (!g) return;
    for (int i = 0; g->result && i < g->count; i++) free(g->result[i]);
    free(g->result);
    free(g->state);
    free(g->run_id);
    manifest_summary_free(&g->agg);
    free(g);
}
