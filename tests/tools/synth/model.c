/* The synthetic endpoint's buckets: see model.h. */
#include "tests/tools/synth/model.h"

#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define NSIZES 48
#define NVAR 16
#define BASE_TIME 1730419200 /* 2024-11-01T00:00:00Z */

/* The key space in sorted order: each group holds its share (per mille) of the N keys. */
static const struct {
    const char *prefix;
    int permille;
} groups[] = {
    {"assets/css/", 2},        {"avatars/", 20},          {"thumbs/2024/11/", 50},
    {"uploads/2023/12/", 30},  {"uploads/2024/10/", 48},  {"uploads/2024/11/", 850},
};
#define NGROUPS (int)(sizeof groups / sizeof groups[0])

struct obj {
    char *key;
    int64_t idx; /* the generated key it overlays, or -1 */
    struct ver *vers;
};

static struct {
    struct model_opts o;
    uint64_t start[NGROUPS + 1], width[NGROUPS];
    uint32_t sizes[NSIZES];
    char etags[NSIZES][NVAR][33];
    int generation;
    uint64_t written;
    struct obj *ov[2];
    size_t nov[2], capov[2];
    struct ver gv; /* model_get's answer for a generated object */
} m;

/* ---- buffers ---- */

void sb_add(struct sbuf *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *d = realloc(b->d, cap);
        if (!d) abort();
        b->d = d;
        b->cap = cap;
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
    b->d[b->n] = '\0';
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) abort();
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)n);
    free(big);
}

/* Listings print two million of these per million keys: runs of characters that need no escaping are copied
 * whole. */
void sb_key(struct sbuf *b, const char *s, bool url)
{
    static const char hex[] = "0123456789ABCDEF";
    while (*s) {
        static const char unreserved[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/";
        size_t run = url ? strspn(s, unreserved) /* SigV4's rules: these and '/' stay */ : strcspn(s, "&<>\"");
        if (run) sb_add(b, s, run);
        s += run;
        if (!*s) break;
        unsigned char ch = (unsigned char)*s++;
        if (url) {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sb_add(b, e, 3);
        } else if (ch == '&') {
            sb_add(b, "&amp;", 5);
        } else if (ch == '<') {
            sb_add(b, "&lt;", 4);
        } else if (ch == '>') {
            sb_add(b, "&gt;", 4);
        } else {
            sb_add(b, "&quot;", 6);
        }
    }
}

void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

void sb_u64(struct sbuf *b, uint64_t v)
{
    char t[24];
    int n = sizeof t;
    do t[--n] = (char)('0' + v % 10); while ((v /= 10));
    sb_add(b, t + n, sizeof t - (size_t)n);
}

void md5_hex(const void *p, size_t n, char out[33])
{
    unsigned char d[16];
    unsigned int dl = 16;
    EVP_Digest(p, n, d, &dl, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* RFC 3339 in UTC with milliseconds; the civil date from the day number without gmtime (a listing formats a
 * million of these): H. Hinnant's civil_from_days, valid for every time_t after 1970. */
void iso_time(time_t t, char out[32])
{
    int64_t days = (int64_t)t / 86400, s = (int64_t)t % 86400;
    if (s < 0) s += 86400, days--;
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    int y = (int)(yoe + era * 400 + (mo <= 2));
    int f[6] = {y, mo, d, (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60)};
    for (int i = 3, yy = f[0]; i >= 0; i--, yy /= 10) out[i] = (char)('0' + yy % 10);
    static const char sep[] = "--T::";
    for (int i = 1; i < 6; i++) {
        out[4 + 3 * (i - 1)] = sep[i - 1];
        out[5 + 3 * (i - 1)] = (char)('0' + f[i] / 10);
        out[6 + 3 * (i - 1)] = (char)('0' + f[i] % 10);
    }
    out[19] = '.';
    memcpy(out + 20, "000Z", 5);
}

/* ---- the generated keys ---- */

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t h3(uint64_t a, uint64_t b, uint64_t c)
{
    return mix(mix(mix(m.o.seed ^ a) ^ b) ^ c);
}

static double unit(uint64_t h)
{
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

void model_init(const struct model_opts *o)
{
    m.o = *o;
    uint64_t at = 0;
    for (int g = 0; g < NGROUPS; g++) {
        uint64_t cnt = g + 1 < NGROUPS ? o->n * (uint64_t)groups[g].permille / 1000 : o->n - at;
        m.start[g] = at;
        m.width[g] = cnt ? UINT64_MAX / cnt : 0;
        at += cnt;
    }
    m.start[NGROUPS] = at;
    for (int c = 0; c < NSIZES; c++) m.sizes[c] = (uint32_t)lround(600.0 * pow(80.0, c / (double)(NSIZES - 1)));
}

const struct model_opts *model_opts(void)
{
    return &m.o;
}

int model_bucket(const char *name)
{
    for (int b = 0; b < 2; b++)
        if (strcmp(name, m.o.bucket[b]) == 0) return b;
    return -1;
}

int model_generation(void)
{
    return m.generation;
}

/* Whether the source's key i got new content in generation g (>= 1). */
static bool picked(uint64_t i, int g)
{
    return m.o.change > 0 && unit(h3(i, 'C', (uint64_t)g)) < m.o.change;
}

uint64_t model_next_generation(void)
{
    m.generation++;
    uint64_t n = 0;
    for (uint64_t i = 0; i < m.o.n; i++) n += picked(i, m.generation);
    return n;
}

static int group_of(uint64_t i)
{
    int g = 0;
    while (g + 1 < NGROUPS && i >= m.start[g + 1]) g++;
    return g;
}

/* digits lowercase hex digits of x at out + at; the new end */
static size_t put_hex(char *out, size_t at, uint64_t x, int digits)
{
    for (int d = digits - 1; d >= 0; d--, x >>= 4) out[at + (size_t)d] = "0123456789abcdef"[x & 15];
    return at + (size_t)digits;
}

size_t model_key(uint64_t i, char *out)
{
    int g = group_of(i);
    uint64_t j = i - m.start[g];
    uint64_t v = j * m.width[g] + h3((uint64_t)g, j, 1) % m.width[g], w = h3((uint64_t)g, j, 2);
    uint64_t x = h3((uint64_t)g, j, 3);
    const char *pre = groups[g].prefix, *ext;
    char tail[64];
    if (g == 0) ext = ".css";
    else if (g == 1) ext = x % 16 == 0 ? (snprintf(tail, sizeof tail, "/Profile photo (%u).png", (unsigned)(x >> 8) % 9 + 1), tail) : ".png";
    else if (g == 2) ext = "-320w.jpg";
    else ext = x % 100 < 70 ? ".jpg" : x % 100 < 90 ? ".png" : x % 100 < 98 ? ".webp" : ".heic";
    /* PREFIX + v as 8-4-4 hex digits + w as 4-12 + ext, like a uuid; digits by hand: listings build millions */
    size_t n = strlen(pre), el = strlen(ext);
    memcpy(out, pre, n);
    n = put_hex(out, n, v >> 32, 8);
    out[n++] = '-';
    n = put_hex(out, n, (v >> 16) & 0xffff, 4);
    out[n++] = '-';
    n = put_hex(out, n, v & 0xffff, 4);
    out[n++] = '-';
    n = put_hex(out, n, w >> 48, 4);
    out[n++] = '-';
    n = put_hex(out, n, w & (uint64_t)0xffffffffffff, 12);
    memcpy(out + n, ext, el + 1);
    return n + el;
}

int64_t model_index(const char *key)
{
    for (int g = 0; g < NGROUPS; g++) {
        size_t pl = strlen(groups[g].prefix);
        if (strncmp(key, groups[g].prefix, pl) != 0 || !m.width[g]) continue;
        unsigned a, b, c;
        if (sscanf(key + pl, "%8x-%4x-%4x", &a, &b, &c) != 3) return -1;
        uint64_t v = (uint64_t)a << 32 | (uint64_t)b << 16 | c, j = v / m.width[g];
        if (m.start[g] + j >= m.start[g + 1]) return -1;
        char k[KEY_MAX];
        model_key(m.start[g] + j, k);
        return strcmp(k, key) == 0 ? (int64_t)(m.start[g] + j) : -1;
    }
    return -1;
}

/* The first generated index whose key is >= s (or > s when strict). */
static uint64_t lower_bound(const char *s, bool strict)
{
    uint64_t lo = 0, hi = m.o.n;
    char k[KEY_MAX];
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        model_key(mid, k);
        int c = strcmp(k, s);
        if (c < 0 || (strict && c == 0)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* Content (size class, variant) as bytes: a fixed pseudo-random stream. */
static void gen_bytes(int cls, int var, uint64_t off, unsigned char *out, size_t len)
{
    uint64_t z = h3((uint64_t)cls, (uint64_t)var, 'B');
    for (size_t k = 0; k < len; k++) {
        uint64_t p = off + k;
        out[k] = (unsigned char)(mix(z + p / 8) >> (8 * (p % 8)));
    }
}

static const char *gen_etag(int cls, int var)
{
    char *e = m.etags[cls][var];
    if (!e[0]) {
        unsigned char *buf = malloc(m.sizes[cls]);
        if (!buf) abort();
        gen_bytes(cls, var, 0, buf, m.sizes[cls]);
        md5_hex(buf, m.sizes[cls], e);
        free(buf);
    }
    return e;
}

/* The generated object of index i in bucket b, into v; false when b does not hold it. */
static bool gen_fill(int b, uint64_t i, struct ver *v)
{
    uint64_t hi = h3(i, 'A', 0);
    int c0 = (int)(hi % NSIZES), var = (int)((hi >> 8) % NVAR), last = 0;
    if (b == SRC) {
        for (int g = 1; g <= m.generation; g++)
            if (picked(i, g)) var++, last = g;
    } else if (m.o.target_delta > 0) {
        double u = unit(h3(i, 'T', 0));
        if (u < m.o.target_delta / 2) return false;
        if (u < m.o.target_delta) var += NVAR / 2;
    }
    memset(v, 0, sizeof *v);
    v->var = var % NVAR;
    v->cls = (c0 + var) % NSIZES;
    v->size = m.sizes[v->cls];
    memcpy(v->etag, gen_etag(v->cls, v->var), 33);
    v->lm = BASE_TIME + (time_t)((hi >> 16) % (30 * 86400)) + (last ? 30 * 86400 + last * 3600 : 0);
    if (b == DST && m.o.target_etag_differs) {
        memcpy(v->etag + 32, "-1", 3);
        v->etag_differs = true;
    }
    if (b == DST) {
        v->vid[0] = 'g';
        v->vid[put_hex(v->vid, 1, h3(i, 'V', 0), 16)] = '\0';
    } else {
        memcpy(v->vid, "null", 5);
    }
    return true;
}

void model_read(const struct ver *v, uint64_t off, void *buf, size_t len)
{
    if (v->cls >= 0 && !v->body) gen_bytes(v->cls, v->var, off, buf, len);
    else if (v->body) memcpy(buf, v->body + off, len);
    else memset(buf, 0, len);
}

const char *model_content_type(const char *key)
{
    const char *dot = strrchr(key, '.');
    if (!dot) return "Content-Type: application/octet-stream\r\n";
    if (!strcmp(dot, ".jpg")) return "Content-Type: image/jpeg\r\n";
    if (!strcmp(dot, ".png")) return "Content-Type: image/png\r\n";
    if (!strcmp(dot, ".webp")) return "Content-Type: image/webp\r\n";
    if (!strcmp(dot, ".heic")) return "Content-Type: image/heic\r\n";
    if (!strcmp(dot, ".css")) return "Content-Type: text/css\r\n";
    return "Content-Type: application/octet-stream\r\n";
}

/* ---- the overlay ---- */

static size_t ov_pos(int b, const char *key, bool *found)
{
    size_t lo = 0, hi = m.nov[b];
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m.ov[b][mid].key, key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

const struct ver *model_get(int b, const char *key, const char *vid, bool *dm)
{
    bool found;
    size_t p = ov_pos(b, key, &found);
    const struct obj *o = found ? &m.ov[b][p] : NULL;
    *dm = false;
    if (o && o->vers && !vid) {
        if (o->vers->dm) *dm = true;
        return o->vers->dm ? NULL : o->vers;
    }
    for (const struct ver *v = o ? o->vers : NULL; v && vid; v = v->older)
        if (strcmp(v->vid, vid) == 0) return v->dm ? NULL : v;
    int64_t i = o ? o->idx : model_index(key);
    if (i < 0 || !gen_fill(b, (uint64_t)i, &m.gv)) return NULL;
    if (vid && strcmp(vid, m.gv.vid) != 0) return NULL;
    return &m.gv;
}

struct ver *model_put(int b, const char *key)
{
    bool found;
    size_t p = ov_pos(b, key, &found);
    if (!found) {
        if (m.nov[b] == m.capov[b]) {
            m.capov[b] = m.capov[b] ? 2 * m.capov[b] : 64;
            m.ov[b] = realloc(m.ov[b], m.capov[b] * sizeof *m.ov[b]);
            if (!m.ov[b]) abort();
        }
        memmove(&m.ov[b][p + 1], &m.ov[b][p], (m.nov[b] - p) * sizeof *m.ov[b]);
        m.ov[b][p] = (struct obj){strdup(key), model_index(key), NULL};
        m.nov[b]++;
    }
    struct ver *v = calloc(1, sizeof *v);
    if (!v) abort();
    v->cls = -1;
    m.written++;
    snprintf(v->vid, sizeof v->vid, "w%08" PRIx64 "%016" PRIx64, m.written, h3(m.written, 'W', 0));
    v->older = m.ov[b][p].vers;
    m.ov[b][p].vers = v;
    v->lm = time(NULL);
    return v;
}

/* ---- listings: the generated keys and the overlay merged in key order ---- */

struct kit {
    int b;
    uint64_t gi;
    size_t oi;
    const char *prefix;
    size_t plen;
};

/* Positions the iterator at the first key > s (or >= s when !strict), and at least the prefix. */
static void kit_seek(struct kit *k, const char *s, bool strict)
{
    if (!s || strcmp(s, k->prefix) < 0) s = k->prefix, strict = false;
    k->gi = lower_bound(s, strict);
    bool found;
    k->oi = ov_pos(k->b, s, &found);
    if (found && strict) k->oi++;
}

/* The next key: its overlay entry (or NULL) and whether a generated object is under it (*gen filled). */
static bool kit_next(struct kit *k, char *key, const struct obj **o, struct ver *gen, bool *has_gen)
{
    for (;;) {
        char gk[KEY_MAX];
        bool g_ok = k->gi < m.o.n, o_ok = k->oi < m.nov[k->b];
        if (g_ok) model_key(k->gi, gk);
        if (!g_ok && !o_ok) return false;
        const struct obj *ov = o_ok ? &m.ov[k->b][k->oi] : NULL;
        int c = !g_ok ? 1 : !o_ok ? -1 : strcmp(gk, ov->key);
        const char *cur = c <= 0 ? gk : ov->key;
        if (strncmp(cur, k->prefix, k->plen) != 0) return false; /* past the prefix: nothing more */
        strcpy(key, cur);
        *has_gen = c <= 0 && gen_fill(k->b, k->gi, gen);
        *o = c >= 0 ? ov : NULL;
        if (c <= 0) k->gi++;
        if (c >= 0) k->oi++;
        if (*has_gen || (*o && (*o)->vers)) return true;
    }
}

/* The key after every key that starts with s: s with its last byte raised (UTF-8 has no 0xff byte). */
static void successor(char *s)
{
    size_t n = strlen(s);
    if (n) s[n - 1] = (char)((unsigned char)s[n - 1] + 1);
}

static void entry(struct sbuf *out, const char *tag, const char *key, const struct ver *v, bool url, bool versions,
                  bool latest)
{
    char lm[32];
    iso_time(v->lm, lm);
    size_t tl = strlen(tag);
    sb_add(out, "<", 1);
    sb_add(out, tag, tl);
    sb_add(out, "><Key>", 6);
    sb_key(out, key, url);
    sb_add(out, "</Key>", 6);
    if (versions) {
        sb_add(out, "<VersionId>", 11);
        sb_str(out, v->vid);
        sb_str(out, latest ? "</VersionId><IsLatest>true</IsLatest>" : "</VersionId><IsLatest>false</IsLatest>");
    }
    sb_add(out, "<LastModified>", 14);
    sb_add(out, lm, 24);
    sb_add(out, "</LastModified>", 15);
    if (!v->dm) {
        sb_add(out, "<ETag>&quot;", 12);
        sb_str(out, v->etag);
        sb_add(out, "&quot;</ETag><Size>", 19);
        sb_u64(out, v->size);
        sb_str(out, "</Size><StorageClass>STANDARD</StorageClass>");
    }
    sb_str(out, "<Owner><ID>synth</ID><DisplayName>synth</DisplayName></Owner></");
    sb_add(out, tag, tl);
    sb_add(out, ">", 1);
}

static void opt_el(struct sbuf *out, const char *tag, const char *s, bool url)
{
    if (!s) return;
    sb_printf(out, "<%s>", tag);
    sb_key(out, s, url);
    sb_printf(out, "</%s>", tag);
}

static void hex_token(struct sbuf *out, const char *s)
{
    for (; *s; s++) sb_printf(out, "%02x", (unsigned char)*s);
}

void model_list(int b, const struct list_args *a, struct sbuf *out, unsigned long *keys)
{
    struct kit k = {.b = b, .prefix = a->prefix ? a->prefix : "", .plen = a->prefix ? strlen(a->prefix) : 0};
    char after[KEY_MAX + 2] = "";
    if (a->after) snprintf(after, sizeof after, "%s", a->after);
    size_t dl = a->delim ? strlen(a->delim) : 0;
    /* resuming after a common prefix skips everything under it */
    if (dl && strlen(after) > k.plen && strlen(after) >= dl && !strcmp(after + strlen(after) - dl, a->delim))
        successor(after);
    kit_seek(&k, a->after ? after : NULL, true);
    static struct sbuf body; /* reused: a page is ~300 KB, not worth fresh pages each time */
    body.n = 0;
    char key[KEY_MAX], last[KEY_MAX] = "";
    const struct obj *o;
    struct ver gen;
    bool has_gen, truncated = false;
    int n = 0;
    while (kit_next(&k, key, &o, &gen, &has_gen)) {
        const struct ver *v = o && o->vers ? o->vers : &gen;
        if (v->dm) continue;
        const char *d = dl ? strstr(key + k.plen, a->delim) : NULL;
        if (n == a->max) {
            truncated = true;
            break;
        }
        n++;
        if (d) { /* a common prefix stands for every key under it */
            size_t cl = (size_t)(d - key) + dl;
            key[cl] = '\0';
            sb_add(&body, "<CommonPrefixes><Prefix>", 24);
            sb_key(&body, key, a->url);
            sb_add(&body, "</Prefix></CommonPrefixes>", 26);
            snprintf(last, sizeof last, "%s", key);
            successor(key);
            kit_seek(&k, key, false);
            continue;
        }
        entry(&body, "Contents", key, v, a->url, false, true);
        snprintf(last, sizeof last, "%s", key);
        (*keys)++;
    }
    sb_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult "
                   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>%s</Name>", m.o.bucket[b]);
    sb_add(out, "<Prefix>", 8);
    sb_key(out, k.prefix, a->url);
    sb_add(out, "</Prefix>", 9);
    if (a->v2) {
        opt_el(out, "StartAfter", a->start_after, a->url);
        if (a->token_in) sb_printf(out, "<ContinuationToken>%s</ContinuationToken>", a->token_in);
        sb_printf(out, "<KeyCount>%d</KeyCount>", n);
    } else {
        sb_add(out, "<Marker>", 8);
        sb_key(out, a->marker ? a->marker : "", a->url);
        sb_add(out, "</Marker>", 9);
    }
    sb_printf(out, "<MaxKeys>%d</MaxKeys>", a->max);
    opt_el(out, "Delimiter", a->delim, a->url);
    if (a->url) sb_add(out, "<EncodingType>url</EncodingType>", 32);
    sb_printf(out, "<IsTruncated>%s</IsTruncated>", truncated ? "true" : "false");
    if (truncated && a->v2) {
        sb_add(out, "<NextContinuationToken>", 23);
        hex_token(out, last);
        sb_add(out, "</NextContinuationToken>", 24);
    } else if (truncated) {
        opt_el(out, "NextMarker", last, a->url);
    }
    if (body.n) sb_add(out, body.d, body.n);
    sb_add(out, "</ListBucketResult>", 19);
}

void model_list_versions(int b, const struct list_args *a, struct sbuf *out, unsigned long *keys)
{
    struct kit k = {.b = b, .prefix = a->prefix ? a->prefix : "", .plen = a->prefix ? strlen(a->prefix) : 0};
    /* with a version-id-marker, the marker key's versions after that one come first */
    kit_seek(&k, a->after, a->after && !a->vid_after);
    static struct sbuf body;
    body.n = 0;
    char key[KEY_MAX], last[KEY_MAX] = "", last_vid[40] = "";
    const struct obj *o;
    struct ver gen;
    bool has_gen, truncated = false;
    int n = 0;
    while (!truncated && kit_next(&k, key, &o, &gen, &has_gen)) {
        bool skipping = a->vid_after && a->after && !strcmp(key, a->after), latest = true;
        const struct ver *v = o ? o->vers : NULL;
        for (int step = 0;; step++) {
            const struct ver *cur = v ? v : (has_gen && step >= 0 ? &gen : NULL);
            if (!cur) break;
            if (!skipping) {
                if (n == a->max) {
                    truncated = true;
                    break;
                }
                n++;
                entry(&body, cur->dm ? "DeleteMarker" : "Version", key, cur, a->url, true, latest);
                snprintf(last, sizeof last, "%s", key);
                snprintf(last_vid, sizeof last_vid, "%s", cur->vid);
                if (latest && !cur->dm) (*keys)++;
            } else if (!strcmp(cur->vid, a->vid_after)) {
                skipping = false;
            }
            latest = false;
            if (v) v = v->older;
            else break;
        }
    }
    sb_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListVersionsResult "
                   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>%s</Name>", m.o.bucket[b]);
    sb_add(out, "<Prefix>", 8);
    sb_key(out, k.prefix, a->url);
    sb_add(out, "</Prefix>", 9);
    sb_add(out, "<KeyMarker>", 11);
    sb_key(out, a->after ? a->after : "", a->url);
    sb_printf(out, "</KeyMarker><VersionIdMarker>%s</VersionIdMarker>", a->vid_after ? a->vid_after : "");
    sb_printf(out, "<MaxKeys>%d</MaxKeys>", a->max);
    if (a->url) sb_add(out, "<EncodingType>url</EncodingType>", 32);
    sb_printf(out, "<IsTruncated>%s</IsTruncated>", truncated ? "true" : "false");
    if (truncated) {
        opt_el(out, "NextKeyMarker", last, a->url);
        sb_printf(out, "<NextVersionIdMarker>%s</NextVersionIdMarker>", last_vid);
    }
    if (body.n) sb_add(out, body.d, body.n);
    sb_add(out, "</ListVersionsResult>", 21);
}

/* ---- the bench's check ---- */

static const struct ver *latest_of(int b, const struct obj *o, uint64_t i, struct ver *tmp)
{
    if (o && o->vers) return o->vers->dm ? NULL : o->vers;
    return gen_fill(b, i, tmp) ? tmp : NULL;
}

void model_source_etag(const struct ver *v, char out[48])
{
    snprintf(out, 48, "%.*s", v->etag_differs ? 32 : 47, v->etag);
}

/* The target holds the source's object: same size, and its ETag or the one it recorded is the source's. */
static bool same(const struct ver *s, const struct ver *d)
{
    char de[48];
    if (!s || !d) return !s && !d;
    model_source_etag(d, de);
    return s->size == d->size && !strcmp(s->etag, de);
}

void model_diff(uint64_t *differ, uint64_t *extra)
{
    *differ = *extra = 0;
    size_t os = 0, od = 0;
    struct ver ts, td;
    for (uint64_t i = 0; i < m.o.n; i++) {
        while (os < m.nov[SRC] && m.ov[SRC][os].idx < (int64_t)i) os++;
        while (od < m.nov[DST] && m.ov[DST][od].idx < (int64_t)i) od++;
        const struct obj *so = os < m.nov[SRC] && m.ov[SRC][os].idx == (int64_t)i ? &m.ov[SRC][os] : NULL;
        const struct obj *dobj = od < m.nov[DST] && m.ov[DST][od].idx == (int64_t)i ? &m.ov[DST][od] : NULL;
        *differ += !same(latest_of(SRC, so, i, &ts), latest_of(DST, dobj, i, &td));
    }
    /* keys that are not generated ones: written to the source (must be in the target) or only in the target */
    bool dm;
    for (size_t p = 0; p < m.nov[SRC]; p++) {
        const struct obj *o = &m.ov[SRC][p];
        if (o->idx >= 0 || !o->vers || o->vers->dm) continue;
        const struct ver *d = model_get(DST, o->key, NULL, &dm);
        *differ += !same(o->vers, d);
    }
    for (size_t p = 0; p < m.nov[DST]; p++) {
        const struct obj *o = &m.ov[DST][p];
        if (o->idx >= 0 || !o->vers || o->vers->dm || !strncmp(o->key, ".replicate/", 11)) continue;
        if (!model_get(SRC, o->key, NULL, &dm)) (*extra)++;
    }
}
