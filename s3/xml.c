/* Parsing of S3 XML response bodies with libxml2 (hardened: no network, no DTD, no entities, size cap,
 * silent errors) into plain C structs, and the two request bodies we send. See s3/xml.h for the contract. */
#include "s3/xml.h"

#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlversion.h>

#define S3_XML_NS "http://s3.amazonaws.com/doc/2006-03-01/"

/* S3 bodies carry one attribute (xmlns on the root). libxml2 2.9 checks attribute and namespace uniqueness
 * pairwise, so a single start tag with 10^5 attributes costs minutes of CPU: cap them before parsing. */
#define XML_MAX_ATTRIBUTES 256

/* NONET: never fetch anything. NOBLANKS: drop indentation-only text. No NOENT, no DTDLOAD/DTDATTR/XINCLUDE.
 * IGNORE_ENC with the forced "UTF-8" below: S3 sends UTF-8 only, and libxml2's iconv conversion errors
 * would otherwise go to stderr through the global error channel. */
#define XML_OPTIONS                                                                                          \
    (XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_IGNORE_ENC)

/* ---- loading ---- */

#if LIBXML_VERSION >= 21200
static void xml_silent(void *ctx, const xmlError *err)
#else
static void xml_silent(void *ctx, xmlErrorPtr err)
#endif
{
    (void)ctx;
    (void)err;
}

/* SAX hook for <!DOCTYPE: S3 never sends one, and it is the door to entity tricks. Stop right there, before
 * the internal subset is read. The parser context's user data is the context itself. */
static void xml_on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                           const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = ctx;
    (void)name;
    (void)external_id;
    (void)system_id;
    if (ctxt->_private) *(bool *)ctxt->_private = true;
    xmlStopParser(ctxt);
}

/* Position just past the next occurrence of `tok` (a few bytes) in [p, end), or NULL when there is none.
 * Plain C11 rather than memmem, so the file builds the same without _GNU_SOURCE (the fuzz build). */
static const char *skip_past(const char *p, const char *end, const char *tok)
{
    size_t n = strlen(tok);
    while ((size_t)(end - p) >= n) {
        const char *hit = memchr(p, tok[0], (size_t)(end - p) - n + 1);
        if (!hit) return NULL;
        if (memcmp(hit, tok, n) == 0) return hit + n;
        p = hit + 1;
    }
    return NULL;
}

/* One linear pass over the raw bytes before libxml2 sees them (they are read as UTF-8, so byte view and
 * parser view agree): refuses markup declarations (<!DOCTYPE, <!ENTITY, ...) and more than
 * XML_MAX_ATTRIBUTES attributes. Anything malformed is left for libxml2 to reject. */
static enum s3_err xml_prescan(const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    unsigned attrs = 0;

    while (p && p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        size_t left = (size_t)(end - p);
        if (left >= 4 && memcmp(p, "<!--", 4) == 0) {
            p = skip_past(p + 4, end, "-->");
        } else if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            p = skip_past(p + 9, end, "]]>");
        } else if (left >= 2 && p[1] == '?') {
            p = skip_past(p + 2, end, "?>");
        } else if (left >= 2 && p[1] == '!') {
            return S3_ERR_XML;
        } else {
            /* a tag: count '=' outside quoted attribute values */
            for (p++; p < end && *p != '>'; p++) {
                if (*p == '"' || *p == '\'') {
                    p = memchr(p + 1, *p, (size_t)(end - p - 1));
                    if (!p) break;
                } else if (*p == '=' && ++attrs > XML_MAX_ATTRIBUTES) {
                    return S3_ERR_XML;
                }
            }
        }
    }
    return S3_OK;
}

/* Parses body into a tree whose root element's local name is one of root_names (NULL-terminated list).
 * On success the caller frees *doc_out with xmlFreeDoc. */
static enum s3_err xml_load(const char *body, size_t len, const char *const *root_names, xmlDocPtr *doc_out,
                            xmlNodePtr *root_out)
{
    enum s3_err err = S3_ERR_XML;
    xmlParserCtxtPtr ctxt = NULL;
    xmlDocPtr doc = NULL;
    xmlNodePtr root;
    bool saw_doctype = false;

    *doc_out = NULL;
    *root_out = NULL;
    if (len > S3_XML_MAX_BODY) return S3_ERR_TOO_LARGE;
    if (!body || len == 0) return S3_ERR_XML;
    err = xml_prescan(body, len);
    if (err != S3_OK) return err;

    xmlInitParser();
    ctxt = xmlNewParserCtxt();
    if (!ctxt) return S3_ERR_NOMEM;
    ctxt->sax->serror = xml_silent; /* per context: other libxml2 users keep their handlers */
    ctxt->sax->internalSubset = xml_on_doctype;
    ctxt->_private = &saw_doctype;

    doc = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, "UTF-8", XML_OPTIONS);
    if (!doc) {
        err = ctxt->errNo == XML_ERR_NO_MEMORY ? S3_ERR_NOMEM : S3_ERR_XML;
        goto out;
    }
    err = S3_ERR_XML;
    if (saw_doctype || !ctxt->wellFormed || doc->intSubset || doc->extSubset) goto out;
    root = xmlDocGetRootElement(doc);
    if (!root || !root->name) goto out;
    for (const char *const *n = root_names; *n; n++) {
        if (strcmp((const char *)root->name, *n) == 0) {
            *root_out = root;
            break;
        }
    }
    if (!*root_out) goto out;
    *doc_out = doc;
    doc = NULL;
    err = S3_OK;
out:
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return err;
}

/* ---- node helpers ---- */

/* Element with this local name (any namespace: S3 uses a default namespace, RGW errors use none). */
static bool node_is(const xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->name && strcmp((const char *)n->name, name) == 0;
}

/* malloc'd concatenation of the element's own text and CDATA children ("" for an empty element). */
static enum s3_err node_text(const xmlNode *n, char **out)
{
    size_t total = 0, off = 0;
    const xmlNode *c;

    for (c = n->children; c; c = c->next)
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            total += strlen((const char *)c->content);
    char *s = malloc(total + 1);
    if (!s) return S3_ERR_NOMEM;
    for (c = n->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content) {
            size_t k = strlen((const char *)c->content);
            memcpy(s + off, c->content, k);
            off += k;
        }
    }
    s[off] = '\0';
    *out = s;
    return S3_OK;
}

/* Stores the element's text in *slot; an element that appears twice is malformed. */
static enum s3_err take_text(const xmlNode *n, char **slot)
{
    if (*slot) return S3_ERR_XML;
    return node_text(n, slot);
}

static bool is_xml_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Decimal uint64 with optional surrounding whitespace; signs, other characters and overflow are errors. */
static enum s3_err parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    bool digits = false;

    while (is_xml_space(*s))
        s++;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return S3_ERR_XML;
        v = v * 10 + d;
        digits = true;
    }
    while (is_xml_space(*s))
        s++;
    if (!digits || *s) return S3_ERR_XML;
    *out = v;
    return S3_OK;
}

/* xsd:boolean as S3 writes it: "true" or "false" (also 1/0), optional surrounding whitespace. */
static enum s3_err parse_bool(const char *s, bool *out)
{
    size_t n;

    while (is_xml_space(*s))
        s++;
    for (n = strlen(s); n && is_xml_space(s[n - 1]); n--) {
    }
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 1 && *s == '1')) {
        *out = true;
    } else if ((n == 5 && memcmp(s, "false", 5) == 0) || (n == 1 && *s == '0')) {
        *out = false;
    } else {
        return S3_ERR_XML;
    }
    return S3_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* In-place decoding of EncodingType=url values. AWS has written a space as '+' (form encoding) and encodes a
 * literal '+' as %2B, as does RGW, so '+' means space. A bad escape, or one decoding to NUL (which a C string
 * key cannot carry), is an error rather than a silently different key. */
static enum s3_err url_decode_inplace(char *s)
{
    char *w = s;
    const char *r = s;

    while (*r) {
        if (*r == '%') {
            int hi = hex_value(r[1]);
            int lo = hi >= 0 ? hex_value(r[2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0)) return S3_ERR_XML;
            *w++ = (char)(hi << 4 | lo);
            r += 3;
        } else if (*r == '+') {
            *w++ = ' ';
            r++;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return S3_OK;
}

/* ETags arrive as "abc" (libxml2 has already turned &quot; into '"'); RGW sends some without quotes. */
static void strip_quotes(char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        memmove(s, s + 1, n - 2);
        s[n - 2] = '\0';
    }
}

/* <EncodingType> among root's children: *url = true for "url"; absent or empty means none; anything else is
 * an encoding we cannot undo. */
static enum s3_err find_encoding(const xmlNode *root, bool *url)
{
    enum s3_err err = S3_OK;
    char *enc = NULL;

    *url = false;
    for (const xmlNode *c = root->children; c; c = c->next) {
        if (!node_is(c, "EncodingType")) continue;
        err = take_text(c, &enc);
        if (err != S3_OK) goto out;
    }
    if (enc && enc[0]) {
        if (strcmp(enc, "url") != 0 && strcmp(enc, "URL") != 0) {
            err = S3_ERR_XML;
            goto out;
        }
        *url = true;
    }
out:
    free(enc);
    return err;
}

/* ---- listings ---- */

enum list_kind { LIST_V2, LIST_VERSIONS };

static void object_info_free(struct s3_object_info *o)
{
    free(o->key);
    free(o->etag);
    free(o->last_modified);
    free(o->version_id);
    free(o->storage_class);
}

void s3_list_page_free(struct s3_list_page *page)
{
    if (!page) return;
    for (size_t i = 0; i < page->count; i++)
        object_info_free(&page->objects[i]);
    free(page->objects);
    free(page->next_token);
    free(page->next_key_marker);
    free(page->next_version_marker);
    for (size_t i = 0; i < page->nprefixes; i++)
        free(page->common_prefixes[i]);
    free(page->common_prefixes);
    memset(page, 0, sizeof *page);
}

/* One <Contents>, <Version> or <DeleteMarker>. Required: Key and LastModified; for objects also Size and
 * ETag; for versions also VersionId. On error *o keeps what was filled, for the caller to free. */
static enum s3_err parse_object(const xmlNode *entry, enum list_kind kind, bool url, struct s3_object_info *o)
{
    enum s3_err err = S3_OK;
    char *size = NULL, *latest = NULL;
    bool marker = node_is(entry, "DeleteMarker");

    for (const xmlNode *c = entry->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (node_is(c, "Key"))
            err = take_text(c, &o->key);
        else if (node_is(c, "LastModified"))
            err = take_text(c, &o->last_modified);
        else if (!marker && node_is(c, "Size"))
            err = take_text(c, &size);
        else if (!marker && node_is(c, "ETag"))
            err = take_text(c, &o->etag);
        else if (!marker && node_is(c, "StorageClass"))
            err = take_text(c, &o->storage_class);
        else if (kind == LIST_VERSIONS && node_is(c, "VersionId"))
            err = take_text(c, &o->version_id);
        else if (kind == LIST_VERSIONS && node_is(c, "IsLatest"))
            err = take_text(c, &latest);
        if (err != S3_OK) goto out;
    }

    err = S3_ERR_XML;
    if (!o->key || !o->last_modified) goto out;
    if (!marker && (!size || !o->etag)) goto out;
    if (kind == LIST_VERSIONS && !o->version_id) goto out;
    if (url && url_decode_inplace(o->key) != S3_OK) goto out;
    if (!o->key[0]) goto out; /* S3 keys are 1..1024 bytes */
    if (size && parse_u64(size, &o->size) != S3_OK) goto out;
    if (latest && parse_bool(latest, &o->is_latest) != S3_OK) goto out;
    if (o->etag) strip_quotes(o->etag);
    o->delete_marker = marker;
    err = S3_OK;
out:
    free(size);
    free(latest);
    return err;
}

static bool is_list_entry(const xmlNode *n, enum list_kind kind)
{
    if (kind == LIST_V2) return node_is(n, "Contents");
    return node_is(n, "Version") || node_is(n, "DeleteMarker");
}

static enum s3_err parse_listing(const char *body, size_t len, enum list_kind kind, struct s3_list_page *out)
{
    static const char *const v2_root[] = {"ListBucketResult", NULL};
    static const char *const versions_root[] = {"ListVersionsResult", NULL};
    enum s3_err err;
    xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;
    char *truncated = NULL;
    size_t nobjects = 0, nprefixes = 0;
    bool url = false;

    if (!out) return S3_ERR_INVALID;
    memset(out, 0, sizeof *out);
    err = xml_load(body, len, kind == LIST_V2 ? v2_root : versions_root, &doc, &root);
    if (err != S3_OK) goto out;
    err = find_encoding(root, &url);
    if (err != S3_OK) goto out;

    /* Count first so each array is allocated once. */
    for (const xmlNode *c = root->children; c; c = c->next) {
        if (is_list_entry(c, kind)) {
            nobjects++;
        } else if (node_is(c, "CommonPrefixes")) {
            for (const xmlNode *p = c->children; p; p = p->next)
                if (node_is(p, "Prefix")) nprefixes++;
        }
    }
    err = S3_ERR_NOMEM;
    if (nobjects && !(out->objects = calloc(nobjects, sizeof *out->objects))) goto out;
    if (nprefixes && !(out->common_prefixes = calloc(nprefixes, sizeof *out->common_prefixes))) goto out;

    err = S3_OK;
    for (const xmlNode *c = root->children; c && err == S3_OK; c = c->next) {
        if (is_list_entry(c, kind)) {
            err = parse_object(c, kind, url, &out->objects[out->count]);
            out->count++; /* counted even on error so cleanup frees the partial entry */
        } else if (node_is(c, "CommonPrefixes")) {
            bool any = false;
            for (const xmlNode *p = c->children; p && err == S3_OK; p = p->next) {
                if (!node_is(p, "Prefix")) continue;
                any = true;
                err = node_text(p, &out->common_prefixes[out->nprefixes]);
                if (err != S3_OK) break;
                out->nprefixes++;
                if (url) err = url_decode_inplace(out->common_prefixes[out->nprefixes - 1]);
            }
            if (err == S3_OK && !any) err = S3_ERR_XML;
        } else if (node_is(c, "IsTruncated")) {
            err = take_text(c, &truncated);
        } else if (kind == LIST_V2 && node_is(c, "NextContinuationToken")) {
            err = take_text(c, &out->next_token); /* opaque: never url-decoded */
        } else if (kind == LIST_VERSIONS && node_is(c, "NextKeyMarker")) {
            err = take_text(c, &out->next_key_marker);
            if (err == S3_OK && url) err = url_decode_inplace(out->next_key_marker);
        } else if (kind == LIST_VERSIONS && node_is(c, "NextVersionIdMarker")) {
            err = take_text(c, &out->next_version_marker);
        }
    }
    if (err != S3_OK) goto out;

    /* A listing that does not say whether it is complete, or is truncated with no way to continue, would make
     * the caller stop early or start over: refuse it. */
    err = S3_ERR_XML;
    if (!truncated || parse_bool(truncated, &out->is_truncated) != S3_OK) goto out;
    if (out->is_truncated) {
        if (kind == LIST_V2 && (!out->next_token || !out->next_token[0])) goto out;
        if (kind == LIST_VERSIONS && (!out->next_key_marker || !out->next_key_marker[0])) goto out;
    }
    err = S3_OK;
out:
    free(truncated);
    xmlFreeDoc(doc);
    if (err != S3_OK) s3_list_page_free(out);
    return err;
}

enum s3_err s3_xml_parse_list_v2(const char *body, size_t len, struct s3_list_page *out)
{
    return parse_listing(body, len, LIST_V2, out);
}

enum s3_err s3_xml_parse_list_versions(const char *body, size_t len, struct s3_list_page *out)
{
    return parse_listing(body, len, LIST_VERSIONS, out);
}

/* ---- errors ---- */

void s3_error_info_free(struct s3_error_info *e)
{
    if (!e) return;
    free(e->code);
    free(e->message);
    free(e->resource);
    free(e->request_id);
    free(e->region);
    memset(e, 0, sizeof *e);
}

enum s3_err s3_xml_parse_error(const char *body, size_t len, struct s3_error_info *out)
{
    static const char *const roots[] = {"Error", NULL};
    enum s3_err err;
    xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;

    if (!out) return S3_ERR_INVALID;
    memset(out, 0, sizeof *out);
    err = xml_load(body, len, roots, &doc, &root);
    if (err != S3_OK) goto out;
    for (const xmlNode *c = root->children; c && err == S3_OK; c = c->next) {
        if (node_is(c, "Code"))
            err = take_text(c, &out->code);
        else if (node_is(c, "Message"))
            err = take_text(c, &out->message);
        else if (node_is(c, "Resource"))
            err = take_text(c, &out->resource);
        else if (node_is(c, "RequestId"))
            err = take_text(c, &out->request_id);
        else if (node_is(c, "Region"))
            err = take_text(c, &out->region);
    }
out:
    xmlFreeDoc(doc);
    if (err != S3_OK) s3_error_info_free(out);
    return err;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && is_xml_space(*p))
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
        p = skip_past(p + 5, end, "?>");
        if (!p) return false;
        p = skip_space(p, end); /* AWS may pad with whitespace while a long copy runs */
    }
    if ((size_t)(end - p) < 7 || memcmp(p, "<Error", 6) != 0) return false;
    return p[6] == '>' || p[6] == '/' || is_xml_space(p[6]);
}

/* ---- single-value results ---- */

/* The text of root's first child element named `name` into *out (malloc'd); S3_ERR_XML when absent. */
static enum s3_err child_text(const xmlNode *root, const char *name, char **out)
{
    for (const xmlNode *c = root->children; c; c = c->next)
        if (node_is(c, name)) return take_text(c, out);
    return S3_ERR_XML;
}

enum s3_err s3_xml_parse_initiate(const char *body, size_t len, char **upload_id)
{
    static const char *const roots[] = {"InitiateMultipartUploadResult", NULL};
    enum s3_err err;
    xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;

    if (!upload_id) return S3_ERR_INVALID;
    *upload_id = NULL;
    err = xml_load(body, len, roots, &doc, &root);
    if (err == S3_OK) err = child_text(root, "UploadId", upload_id);
    if (err == S3_OK && !(*upload_id)[0]) err = S3_ERR_XML;
    xmlFreeDoc(doc);
    if (err != S3_OK) {
        free(*upload_id);
        *upload_id = NULL;
    }
    return err;
}

/* Shared by Complete and Copy: ETag required (quotes stripped, may be "": RGW 16.2 sends an empty <ETag> in
 * CompleteMultipartUploadResult), LastModified optional. */
static enum s3_err parse_etag_result(const char *body, size_t len, const char *const *roots, char **etag,
                                     char **last_modified)
{
    enum s3_err err;
    xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;

    if (!etag) return S3_ERR_INVALID;
    *etag = NULL;
    if (last_modified) *last_modified = NULL;
    err = xml_load(body, len, roots, &doc, &root);
    if (err != S3_OK) goto out;
    err = child_text(root, "ETag", etag);
    if (err != S3_OK) goto out;
    strip_quotes(*etag);
    if (last_modified) {
        err = child_text(root, "LastModified", last_modified);
        if (err == S3_ERR_XML && !*last_modified) err = S3_OK; /* absent is fine */
    }
out:
    xmlFreeDoc(doc);
    if (err != S3_OK) {
        free(*etag);
        *etag = NULL;
        if (last_modified) {
            free(*last_modified);
            *last_modified = NULL;
        }
    }
    return err;
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
    xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;

    if (!status) return S3_ERR_INVALID;
    *status = NULL;
    err = xml_load(body, len, roots, &doc, &root);
    if (err != S3_OK) goto out;
    err = child_text(root, "Status", status);
    if (err == S3_ERR_XML && !*status) {
        /* never versioned: no <Status> at all */
        err = (*status = calloc(1, 1)) ? S3_OK : S3_ERR_NOMEM;
        goto out;
    }
    if (err != S3_OK) goto out;
    if (strcmp(*status, "Enabled") != 0 && strcmp(*status, "Suspended") != 0 && (*status)[0] != '\0')
        err = S3_ERR_XML;
out:
    xmlFreeDoc(doc);
    if (err != S3_OK) {
        free(*status);
        *status = NULL;
    }
    return err;
}

/* ---- multipart upload listing ---- */

void s3_upload_list_free(struct s3_upload_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->count; i++) {
        free(l->uploads[i].key);
        free(l->uploads[i].upload_id);
        free(l->uploads[i].initiated);
    }
    free(l->uploads);
    free(l->next_key_marker);
    free(l->next_upload_id_marker);
    memset(l, 0, sizeof *l);
}

static enum s3_err parse_upload(const xmlNode *entry, bool url, struct s3_upload_info *u)
{
    enum s3_err err = S3_OK;

    for (const xmlNode *c = entry->children; c && err == S3_OK; c = c->next) {
        if (node_is(c, "Key"))
            err = take_text(c, &u->key);
        else if (node_is(c, "UploadId"))
            err = take_text(c, &u->upload_id);
        else if (node_is(c, "Initiated"))
            err = take_text(c, &u->initiated);
    }
    if (err != S3_OK) return err;
    if (!u->key || !u->upload_id || !u->upload_id[0]) return S3_ERR_XML;
    if (url && url_decode_inplace(u->key) != S3_OK) return S3_ERR_XML;
    return u->key[0] ? S3_OK : S3_ERR_XML;
}

enum s3_err s3_xml_parse_uploads(const char *body, size_t len, struct s3_upload_list *out)
{
    static const char *const roots[] = {"ListMultipartUploadsResult", NULL};
    enum s3_err err;
    xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;
    char *truncated = NULL;
    size_t n = 0;
    bool url = false;

    if (!out) return S3_ERR_INVALID;
    memset(out, 0, sizeof *out);
    err = xml_load(body, len, roots, &doc, &root);
    if (err != S3_OK) goto out;
    err = find_encoding(root, &url);
    if (err != S3_OK) goto out;
    for (const xmlNode *c = root->children; c; c = c->next)
        if (node_is(c, "Upload")) n++;
    if (n && !(out->uploads = calloc(n, sizeof *out->uploads))) {
        err = S3_ERR_NOMEM;
        goto out;
    }
    for (const xmlNode *c = root->children; c && err == S3_OK; c = c->next) {
        if (node_is(c, "Upload")) {
            err = parse_upload(c, url, &out->uploads[out->count]);
            out->count++;
        } else if (node_is(c, "IsTruncated")) {
            err = take_text(c, &truncated);
        } else if (node_is(c, "NextKeyMarker")) {
            err = take_text(c, &out->next_key_marker);
            if (err == S3_OK && url) err = url_decode_inplace(out->next_key_marker);
        } else if (node_is(c, "NextUploadIdMarker")) {
            err = take_text(c, &out->next_upload_id_marker);
        }
    }
    if (err != S3_OK) goto out;
    err = S3_ERR_XML;
    if (!truncated || parse_bool(truncated, &out->is_truncated) != S3_OK) goto out;
    if (out->is_truncated && (!out->next_key_marker || !out->next_key_marker[0])) goto out;
    err = S3_OK;
out:
    free(truncated);
    xmlFreeDoc(doc);
    if (err != S3_OK) s3_upload_list_free(out);
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

enum s3_err s3_xml_parse_tagging(const char *body, size_t len, char **query)
{
    static const char *const roots[] = {"Tagging", NULL};
    enum s3_err err;
    xmlDocPtr doc = NULL;
    xmlNodePtr root = NULL;
    struct xml_out o = {0};
    int n = 0;

    if (!query) return S3_ERR_INVALID;
    *query = NULL;
    err = xml_load(body, len, roots, &doc, &root);
    if (err != S3_OK) goto out;
    const xmlNode *set = NULL;
    for (const xmlNode *c = root->children; c; c = c->next)
        if (node_is(c, "TagSet")) set = c;
    for (const xmlNode *t = set ? set->children : NULL; t && err == S3_OK; t = t->next) {
        if (!node_is(t, "Tag")) continue;
        char *k = NULL, *v = NULL;
        err = child_text(t, "Key", &k);
        if (err == S3_OK) err = child_text(t, "Value", &v);
        if (err == S3_ERR_XML && k && !v) err = (v = calloc(1, 1)) ? S3_OK : S3_ERR_NOMEM; /* <Value/> */
        if (err == S3_OK) {
            if (n++) out_append(&o, "&", 1);
            out_query_escaped(&o, k);
            out_append(&o, "=", 1);
            out_query_escaped(&o, v);
        }
        free(k);
        free(v);
    }
    if (err != S3_OK) goto out;
    *query = o.failed ? NULL : o.data ? o.data : calloc(1, 1);
    if (!*query) err = S3_ERR_NOMEM;
    o.data = *query ? NULL : o.data;
out:
    xmlFreeDoc(doc);
    if (err != S3_OK) free(o.data);
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
