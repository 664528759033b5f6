/* Parsing of S3 XML response bodies other than listings (those are s3/xml_list.c) into plain C structs, and the
 * request bodies we send: one struct sax_doc of hooks per document type, run by the SAX2 driver in s3/xml_sax.c.
 * See s3/xml.h for the contract. Must not: keep a tree, or fetch anything (no network, no entities). */
#include "s3/xml.h"

#include <stdlib.h>
#include <string.h>

#include "s3/xml_sax.h"

/* ---- errors ---- */

void s3_error_info_free(struct s3_error_info *e)
{
    if (!e) return;
    free(e->code);
    free(e->message);
    free(e->resource);
    free(e->request_id);
    free(e->region);
    free(e->server_time);
    memset(e, 0, sizeof *e);
}

/* ---- documents of named children of the root ----
 * <Error>, the multipart and copy results, <VersioningConfiguration>: each wanted child of the root goes into
 * a string slot. `once`: a second element of that name is an error; otherwise the first one counts. */

struct flat_field {
    const char *name;
    char **slot;
    bool once;
};

struct flat_parse {
    const struct flat_field *fields;
    size_t n;
};

static int flat_open(struct sax *s, const char *name, unsigned depth)
{
    const struct flat_parse *f = s->user;

    if (depth != 2 || !name) return -1;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(name, f->fields[i].name) == 0)
            return f->fields[i].once ? sax_once(s, f->fields[i].slot) : sax_first(s, f->fields[i].slot);
    return -1;
}

static enum s3_err parse_flat(const char *body, size_t len, const char *const *roots,
                              const struct flat_field *fields, size_t n)
{
    struct flat_parse f = {fields, n};
    struct sax_doc doc = {roots, flat_open, NULL, NULL};
    enum s3_err err = sax_parse(body, len, &doc, &f);

    if (err != S3_OK) {
        for (size_t i = 0; i < n; i++) {
            free(*fields[i].slot);
            *fields[i].slot = NULL;
        }
    }
    return err;
}

enum s3_err s3_xml_parse_error(const char *body, size_t len, struct s3_error_info *out)
{
    static const char *const roots[] = {"Error", NULL};

    if (!out) return S3_ERR_INVALID;
    memset(out, 0, sizeof *out);
    const struct flat_field fields[] = {
        {"Code", &out->code, true},         {"Message", &out->message, true},
        {"Resource", &out->resource, true}, {"RequestId", &out->request_id, true},
        {"Region", &out->region, true},     {"ServerTime", &out->server_time, true},
    };
    return parse_flat(body, len, roots, fields, sizeof fields / sizeof *fields);
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && s3x_is_space(*p))
        p++;
    return p;
}

bool s3_xml_is_error(const char *body, size_t len)
{
    if (!body) return false;
    const char *p = body, *end = body + len;

    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* UTF-8 byte order mark */
    p = skip_space(p, end);
    if ((size_t)(end - p) >= 5 && memcmp(p, "<?xml", 5) == 0) {
        p = s3x_skip_past(p + 5, end, "?>");
        if (!p) return false;
        p = skip_space(p, end); /* AWS may pad with whitespace while a long copy runs */
    }
    if ((size_t)(end - p) < 7 || memcmp(p, "<Error", 6) != 0) return false;
    return p[6] == '>' || p[6] == '/' || s3x_is_space(p[6]);
}

/* ---- single-value results ---- */

enum s3_err s3_xml_parse_initiate(const char *body, size_t len, char **upload_id)
{
    static const char *const roots[] = {"InitiateMultipartUploadResult", NULL};
    enum s3_err err;

    if (!upload_id) return S3_ERR_INVALID;
    *upload_id = NULL;
    const struct flat_field fields[] = {{"UploadId", upload_id, false}};
    err = parse_flat(body, len, roots, fields, 1);
    if (err == S3_OK && (!*upload_id || !(*upload_id)[0])) {
        free(*upload_id);
        *upload_id = NULL;
        err = S3_ERR_XML;
    }
    return err;
}

/* Shared by Complete and Copy: ETag required (quotes stripped, may be "": RGW 16.2 sends an empty <ETag> in
 * CompleteMultipartUploadResult), LastModified optional. */
static enum s3_err parse_etag_result(const char *body, size_t len, const char *const *roots, char **etag,
                                     char **last_modified)
{
    enum s3_err err;
    char *lm = NULL;

    if (!etag) return S3_ERR_INVALID;
    *etag = NULL;
    if (last_modified) *last_modified = NULL;
    const struct flat_field fields[] = {{"ETag", etag, false}, {"LastModified", &lm, false}};
    err = parse_flat(body, len, roots, fields, last_modified ? 2 : 1);
    if (err == S3_OK && !*etag) {
        free(lm);
        lm = NULL;
        err = S3_ERR_XML;
    }
    if (err != S3_OK) return err;
    s3x_strip_quotes(*etag);
    if (last_modified) *last_modified = lm;
    return S3_OK;
}

enum s3_err s3_xml_parse_complete(const char *body, size_t len, char **etag)
{
    static const char *const roots[] = {"CompleteMultipartUploadResult", NULL};
    return parse_etag_result(body, len, roots, etag, NULL);
}

enum s3_err s3_xml_parse_copy(const char *body, size_t len, char **etag, char **last_modified)
{
    static const char *const roots[] = {"CopyObjectResult", "CopyPartResult", NULL};
    return parse_etag_result(body, len, roots, etag, last_modified);
}

enum s3_err s3_xml_parse_versioning(const char *body, size_t len, char **status)
{
    static const char *const roots[] = {"VersioningConfiguration", NULL};
    enum s3_err err;

    if (!status) return S3_ERR_INVALID;
    *status = NULL;
    const struct flat_field fields[] = {{"Status", status, false}};
    err = parse_flat(body, len, roots, fields, 1);
    if (err != S3_OK) return err;
    if (!*status) return (*status = calloc(1, 1)) ? S3_OK : S3_ERR_NOMEM; /* never versioned: no <Status> */
    if (strcmp(*status, "Enabled") != 0 && strcmp(*status, "Suspended") != 0 && (*status)[0] != '\0') {
        free(*status);
        *status = NULL;
        return S3_ERR_XML;
    }
    return S3_OK;
}

enum s3_err s3_xml_parse_object_lock(const char *body, size_t len, bool *enabled)
{
    static const char *const roots[] = {"ObjectLockConfiguration", NULL};
    char *value = NULL;

    if (!enabled) return S3_ERR_INVALID;
    *enabled = false;
    const struct flat_field fields[] = {{"ObjectLockEnabled", &value, true}};
    enum s3_err err = parse_flat(body, len, roots, fields, 1);
    if (err == S3_OK) *enabled = value && strcmp(value, "Enabled") == 0;
    free(value);
    return err;
}

/* ---- request bodies ---- */

struct xml_out {
    char *data;
    size_t len, alloc;
    bool failed;
};

static void out_append(struct xml_out *o, const char *s, size_t n)
{
    if (o->failed) return;
    if (n >= o->alloc - o->len || !o->data) {
        size_t want = o->alloc ? o->alloc : 256;
        while (want - o->len <= n) {
            if (want > SIZE_MAX / 2) {
                o->failed = true;
                return;
            }
            want *= 2;
        }
        char *p = realloc(o->data, want);
        if (!p) {
            o->failed = true;
            return;
        }
        o->data = p;
        o->alloc = want;
    }
    memcpy(o->data + o->len, s, n);
    o->len += n;
    o->data[o->len] = '\0';
}

static void out_str(struct xml_out *o, const char *s)
{
    out_append(o, s, strlen(s));
}

/* Escaped element content. Only printable ASCII is taken: S3 ETags are hex digits, '-' and a part count,
 * control characters cannot appear in XML 1.0, and other bytes could make the body invalid UTF-8. */
static void out_escaped(struct xml_out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && !o->failed; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '&')
            out_str(o, "&amp;");
        else if (c == '<')
            out_str(o, "&lt;");
        else if (c == '>')
            out_str(o, "&gt;");
        else if (c == '"')
            out_str(o, "&quot;");
        else if (c < 0x20 || c >= 0x7f)
            o->failed = true;
        else
            out_append(o, s + i, 1);
    }
}

static char *out_finish(struct xml_out *o, size_t *len_out)
{
    if (o->failed) {
        free(o->data);
        if (len_out) *len_out = 0;
        return NULL;
    }
    if (len_out) *len_out = o->len;
    return o->data;
}

/* ---- object tags ---- */

/* Percent-encodes s for a query string (RFC 3986 unreserved characters kept) onto o. */
static void out_query_escaped(struct xml_out *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~') {
            out_append(o, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            out_append(o, e, 3);
        }
    }
}

/* <Tagging><TagSet><Tag><Key/><Value/></Tag>...: the last <TagSet> counts (an earlier one, even a bad one,
 * is forgotten), and in each <Tag> the first <Key> (required) and the first <Value> (absent means ""). */
struct tag_parse {
    struct xml_out o;
    int n;
    enum s3_err set_err; /* the first error in the current <TagSet> */
    bool in_set, in_tag;
    char *key, *value;
};

static int tag_open(struct sax *s, const char *name, unsigned depth)
{
    struct tag_parse *t = s->user;

    if (!name) return -1;
    if (depth == 2 && strcmp(name, "TagSet") == 0) {
        free(t->o.data);
        memset(&t->o, 0, sizeof t->o);
        t->n = 0;
        t->set_err = S3_OK;
        t->in_set = true;
    } else if (depth == 3 && t->in_set && strcmp(name, "Tag") == 0) {
        t->in_tag = true;
    } else if (depth == 4 && t->in_tag) {
        if (strcmp(name, "Key") == 0) return sax_first(s, &t->key);
        if (strcmp(name, "Value") == 0) return sax_first(s, &t->value);
    }
    return -1;
}

static void tag_close(struct sax *s, unsigned depth)
{
    struct tag_parse *t = s->user;

    if (depth == 2) {
        t->in_set = false;
    } else if (depth == 3 && t->in_tag) {
        t->in_tag = false;
        if (t->set_err == S3_OK && !t->key) t->set_err = S3_ERR_XML;
        if (t->set_err == S3_OK) {
            if (t->n++) out_append(&t->o, "&", 1);
            out_query_escaped(&t->o, t->key);
            out_append(&t->o, "=", 1);
            out_query_escaped(&t->o, t->value ? t->value : "");
        }
        free(t->key);
        free(t->value);
        t->key = t->value = NULL;
    }
}

enum s3_err s3_xml_parse_tagging(const char *body, size_t len, char **query)
{
    static const char *const roots[] = {"Tagging", NULL};
    static const struct sax_doc doc = {roots, tag_open, NULL, tag_close};
    struct tag_parse t = {0};
    enum s3_err err;

    if (!query) return S3_ERR_INVALID;
    *query = NULL;
    err = sax_parse(body, len, &doc, &t);
    if (err == S3_OK) err = t.set_err;
    if (err == S3_OK) {
        *query = t.o.failed ? NULL : t.o.data ? t.o.data : calloc(1, 1);
        if (!*query)
            err = S3_ERR_NOMEM;
        else
            t.o.data = NULL;
    }
    free(t.o.data);
    free(t.key);
    free(t.value);
    return err;
}

#define S3_MAX_PARTS 10000

char *s3_xml_build_complete(const char *const *etags, size_t nparts, size_t *len_out)
{
    struct xml_out o = {0};
    char num[32];

    if (len_out) *len_out = 0;
    if (!etags || nparts == 0 || nparts > S3_MAX_PARTS) return NULL;
    out_str(&o, "<CompleteMultipartUpload xmlns=\"" S3_XML_NS "\">");
    for (size_t i = 0; i < nparts && !o.failed; i++) {
        const char *e = etags[i];
        if (!e) {
            o.failed = true;
            break;
        }
        size_t n = strlen(e);
        if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
            e++;
            n -= 2;
        }
        snprintf(num, sizeof num, "%zu", i + 1);
        out_str(&o, "<Part><PartNumber>");
        out_str(&o, num);
        out_str(&o, "</PartNumber><ETag>\""); /* S3 expects the quotes, literally */
        out_escaped(&o, e, n);
        out_str(&o, "\"</ETag></Part>");
    }
    out_str(&o, "</CompleteMultipartUpload>");
    return out_finish(&o, len_out);
}

char *s3_xml_build_versioning(const char *status, size_t *len_out)
{
    struct xml_out o = {0};

    if (len_out) *len_out = 0;
    if (!status || (strcmp(status, "Enabled") != 0 && strcmp(status, "Suspended") != 0)) return NULL;
    out_str(&o, "<VersioningConfiguration xmlns=\"" S3_XML_NS "\"><Status>");
    out_escaped(&o, status, strlen(status));
    out_str(&o, "</Status></VersioningConfiguration>");
    return out_finish(&o, len_out);
}

char *s3_xml_build_retention(const char *mode, const char *until, size_t *len_out)
{
    struct xml_out o = {0};

    if (len_out) *len_out = 0;
    if (!mode || !until || (strcmp(mode, "GOVERNANCE") != 0 && strcmp(mode, "COMPLIANCE") != 0)) return NULL;
    out_str(&o, "<Retention xmlns=\"" S3_XML_NS "\"><Mode>");
    out_str(&o, mode);
    out_str(&o, "</Mode><RetainUntilDate>");
    out_escaped(&o, until, strlen(until));
    out_str(&o, "</RetainUntilDate></Retention>");
    return out_finish(&o, len_out);
}
