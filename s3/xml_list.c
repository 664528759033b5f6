/* Parsing of S3's listing bodies (ListObjectsV2, ListObjectVersions, ListMultipartUploads) into pages of plain
 * C structs, with their url-decoding (EncodingType=url), through the SAX2 driver of s3/xml_sax.c. See s3/xml.h.
 * Must not: keep a tree, fetch anything, or accept a page whose markers do not let the listing go on. */
#include "s3/xml.h"

#include <stdlib.h>
#include <string.h>

#include "s3/xml_sax.h"

/* ---- listings ---- */

enum list_kind { LIST_V2, LIST_VERSIONS };

/* The strings of a page's objects, in blocks: a listing page is 1,000 objects of five strings each, so one
 * allocation per string was a fifth of a listing's parse. */
#define STRINGS_BLOCK (32u << 10)

struct s3_list_strings {
    struct s3_list_strings *next;
    size_t used, cap;
    char data[];
};

/* A copy of text[0..len] (NUL included) in the page's blocks, or NULL (out of memory). */
static char *page_strdup(struct s3_list_page *page, const char *text, size_t len)
{
    struct s3_list_strings *b = page->strings;
    if (!b || b->cap - b->used < len + 1) {
        size_t cap = len + 1 > STRINGS_BLOCK ? len + 1 : STRINGS_BLOCK;
        if (!(b = malloc(sizeof *b + cap))) return NULL;
        *b = (struct s3_list_strings){.next = page->strings, .cap = cap};
        page->strings = b;
    }
    char *p = b->data + b->used;
    memcpy(p, text, len);
    p[len] = '\0';
    b->used += len + 1;
    return p;
}

void s3_list_page_free(struct s3_list_page *page)
{
    if (!page) return;
    for (struct s3_list_strings *b = page->strings, *n; b; b = n) {
        n = b->next;
        free(b);
    }
    free(page->objects);
    free(page->next_token);
    free(page->next_key_marker);
    free(page->next_version_marker);
    for (size_t i = 0; i < page->nprefixes; i++)
        free(page->common_prefixes[i]);
    free(page->common_prefixes);
    memset(page, 0, sizeof *page);
}

/* Elements of a listing: entries (<Contents>, <Version>, <DeleteMarker>) and <CommonPrefixes> are children of
 * the root, the entries' fields and <Prefix> their children; anything deeper or unknown is ignored. */
enum list_field { LF_SIZE = 1, LF_IS_LATEST, LF_PREFIX, LF_KEY, LF_LAST_MODIFIED, LF_STORAGE_CLASS, LF_ETAG,
                  LF_VERSION_ID };

struct list_parse {
    enum list_kind kind;
    struct s3_list_page *out;
    size_t objects_alloc, prefixes_alloc;
    char *truncated, *encoding;
    bool in_entry, marker, seen_size, seen_latest; /* the entry being read is out->objects[out->count - 1] */
    bool in_prefixes, any_prefix;
};

/* Room for one more element of `size` bytes in *array holding n of *alloc. */
static bool grow(void **array, size_t n, size_t *alloc, size_t size)
{
    if (n < *alloc) return true;
    size_t want = *alloc ? *alloc * 2 : 16;
    void *p = realloc(*array, want * size);
    if (!p) return false;
    *array = p;
    *alloc = want;
    return true;
}

static int list_open(struct sax *s, const char *name, unsigned depth)
{
    struct list_parse *l = s->user;
    struct s3_list_page *out = l->out;

    if (!name) return -1;
    if (depth == 2) {
        if (l->kind == LIST_V2 ? strcmp(name, "Contents") == 0
                               : strcmp(name, "Version") == 0 || strcmp(name, "DeleteMarker") == 0) {
            if (!grow((void **)&out->objects, out->count, &l->objects_alloc, sizeof *out->objects)) {
                sax_fail(s, S3_ERR_NOMEM);
                return -1;
            }
            memset(&out->objects[out->count++], 0, sizeof *out->objects); /* counted now: freed on error */
            l->in_entry = true;
            l->marker = l->kind == LIST_VERSIONS && name[0] == 'D';
            l->seen_size = l->seen_latest = false;
        } else if (strcmp(name, "CommonPrefixes") == 0) {
            l->in_prefixes = true;
            l->any_prefix = false;
        } else if (strcmp(name, "IsTruncated") == 0) {
            return sax_once(s, &l->truncated);
        } else if (strcmp(name, "EncodingType") == 0) {
            return sax_once(s, &l->encoding);
        } else if (l->kind == LIST_V2 && strcmp(name, "NextContinuationToken") == 0) {
            return sax_once(s, &out->next_token);
        } else if (l->kind == LIST_VERSIONS && strcmp(name, "NextKeyMarker") == 0) {
            return sax_once(s, &out->next_key_marker);
        } else if (l->kind == LIST_VERSIONS && strcmp(name, "NextVersionIdMarker") == 0) {
            return sax_once(s, &out->next_version_marker);
        }
        return -1;
    }
    if (depth == 3 && l->in_prefixes && strcmp(name, "Prefix") == 0) {
        l->any_prefix = true; /* several in one <CommonPrefixes> are all taken */
        return LF_PREFIX;
    }
    if (depth != 3 || !l->in_entry) return -1;
    switch (name[0]) { /* the hot path: one strcmp per field */
    case 'K':
        if (strcmp(name, "Key") == 0) return LF_KEY;
        break;
    case 'L':
        if (strcmp(name, "LastModified") == 0) return LF_LAST_MODIFIED;
        break;
    case 'S': /* a DeleteMarker has no size, ETag or storage class: ignored if present */
        if (!l->marker && strcmp(name, "Size") == 0) {
            if (l->seen_size) sax_fail(s, S3_ERR_XML);
            l->seen_size = true;
            return LF_SIZE;
        }
        if (!l->marker && strcmp(name, "StorageClass") == 0) return LF_STORAGE_CLASS;
        break;
    case 'E':
        if (!l->marker && strcmp(name, "ETag") == 0) return LF_ETAG;
        break;
    case 'V':
        if (l->kind == LIST_VERSIONS && strcmp(name, "VersionId") == 0) return LF_VERSION_ID;
        break;
    case 'I':
        if (l->kind == LIST_VERSIONS && strcmp(name, "IsLatest") == 0) {
            if (l->seen_latest) sax_fail(s, S3_ERR_XML);
            l->seen_latest = true;
            return LF_IS_LATEST;
        }
        break;
    }
    return -1;
}

/* An entry's string field (NULL for the other fields): a second one of the same name is an error, as
 * sax_once has it. Only an entry's fields index the page's newest object. */
static char **entry_slot(struct s3_list_page *out, int field)
{
    if (field < LF_KEY) return NULL;
    struct s3_object_info *o = &out->objects[out->count - 1];
    switch (field) {
    case LF_KEY: return &o->key;
    case LF_LAST_MODIFIED: return &o->last_modified;
    case LF_STORAGE_CLASS: return &o->storage_class;
    case LF_ETAG: return &o->etag;
    case LF_VERSION_ID: return &o->version_id;
    }
    return NULL;
}

static void list_text(struct sax *s, int field, const char *text, size_t len)
{
    struct list_parse *l = s->user;
    struct s3_list_page *out = l->out;
    char **slot = entry_slot(out, field);

    if (slot) {
        if (*slot) sax_fail(s, S3_ERR_XML);
        else if (!(*slot = page_strdup(out, text, len))) sax_fail(s, S3_ERR_NOMEM);
    } else if (field == LF_SIZE && s3x_parse_u64(text, &out->objects[out->count - 1].size) != S3_OK) {
        sax_fail(s, S3_ERR_XML);
    } else if (field == LF_IS_LATEST && s3x_parse_bool(text, &out->objects[out->count - 1].is_latest) != S3_OK) {
        sax_fail(s, S3_ERR_XML);
    } else if (field == LF_PREFIX) {
        if (!grow((void **)&out->common_prefixes, out->nprefixes, &l->prefixes_alloc,
                  sizeof *out->common_prefixes)) {
            sax_fail(s, S3_ERR_NOMEM);
            return;
        }
        out->common_prefixes[out->nprefixes] = NULL;
        sax_take(s, &out->common_prefixes[out->nprefixes], text, len);
        if (out->common_prefixes[out->nprefixes]) out->nprefixes++;
    }
}

/* An entry is complete: required are Key and LastModified; for objects also Size and ETag; for versions also
 * VersionId. Keys are url-decoded at the end (EncodingType may come after the entries); an encoded key is
 * empty exactly when the decoded one is, so the 1..1024-byte check can be made here. */
static void list_close(struct sax *s, unsigned depth)
{
    struct list_parse *l = s->user;

    if (depth != 2) return;
    if (l->in_entry) {
        struct s3_object_info *o = &l->out->objects[l->out->count - 1];
        l->in_entry = false;
        if (!o->key || !o->key[0] || !o->last_modified || (!l->marker && (!l->seen_size || !o->etag)) ||
            (l->kind == LIST_VERSIONS && !o->version_id)) {
            sax_fail(s, S3_ERR_XML);
            return;
        }
        if (o->etag) s3x_strip_quotes(o->etag);
        o->delete_marker = l->marker;
    } else if (l->in_prefixes) {
        l->in_prefixes = false;
        if (!l->any_prefix) sax_fail(s, S3_ERR_XML);
    }
}

static const char *const list_v2_roots[] = {"ListBucketResult", NULL};
static const char *const list_versions_roots[] = {"ListVersionsResult", NULL};
static const struct sax_doc list_v2_doc = {list_v2_roots, list_open, list_text, list_close};
static const struct sax_doc list_versions_doc = {list_versions_roots, list_open, list_text, list_close};

/* <EncodingType>: *url = true for "url"; absent or empty means none; anything else is an encoding we cannot
 * undo. */
static enum s3_err check_encoding(const char *enc, bool *url)
{
    *url = false;
    if (!enc || !enc[0]) return S3_OK;
    if (strcmp(enc, "url") != 0 && strcmp(enc, "URL") != 0) return S3_ERR_XML;
    *url = true;
    return S3_OK;
}

static enum s3_err parse_listing(const char *body, size_t len, enum list_kind kind, struct s3_list_page *out)
{
    struct list_parse l = {.kind = kind, .out = out};
    enum s3_err err;
    bool url = false;

    if (!out) return S3_ERR_INVALID;
    memset(out, 0, sizeof *out);
    err = sax_parse(body, len, kind == LIST_V2 ? &list_v2_doc : &list_versions_doc, &l);
    if (err == S3_OK) err = check_encoding(l.encoding, &url);
    if (err != S3_OK) goto out;

    err = S3_ERR_XML;
    if (url) {
        for (size_t i = 0; i < out->count; i++)
            if (s3x_url_decode(out->objects[i].key) != S3_OK) goto out;
        for (size_t i = 0; i < out->nprefixes; i++)
            if (s3x_url_decode(out->common_prefixes[i]) != S3_OK) goto out;
        if (out->next_key_marker && s3x_url_decode(out->next_key_marker) != S3_OK) goto out;
    }
    /* A listing that does not say whether it is complete, or is truncated with no way to continue, would make
     * the caller stop early or start over: refuse it. */
    if (!l.truncated || s3x_parse_bool(l.truncated, &out->is_truncated) != S3_OK) goto out;
    if (out->is_truncated) {
        if (kind == LIST_V2 && (!out->next_token || !out->next_token[0])) goto out;
        if (kind == LIST_VERSIONS && (!out->next_key_marker || !out->next_key_marker[0])) goto out;
    }
    err = S3_OK;
out:
    free(l.truncated);
    free(l.encoding);
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

struct upload_parse {
    struct s3_upload_list *out;
    size_t alloc;
    char *truncated, *encoding;
    bool in_upload; /* the upload being read is out->uploads[out->count - 1] */
};

static int upload_open(struct sax *s, const char *name, unsigned depth)
{
    struct upload_parse *p = s->user;
    struct s3_upload_list *out = p->out;

    if (!name) return -1;
    if (depth == 2) {
        if (strcmp(name, "Upload") == 0) {
            if (!grow((void **)&out->uploads, out->count, &p->alloc, sizeof *out->uploads)) {
                sax_fail(s, S3_ERR_NOMEM);
                return -1;
            }
            memset(&out->uploads[out->count++], 0, sizeof *out->uploads); /* counted now: freed on error */
            p->in_upload = true;
        } else if (strcmp(name, "IsTruncated") == 0) {
            return sax_once(s, &p->truncated);
        } else if (strcmp(name, "EncodingType") == 0) {
            return sax_once(s, &p->encoding);
        } else if (strcmp(name, "NextKeyMarker") == 0) {
            return sax_once(s, &out->next_key_marker);
        } else if (strcmp(name, "NextUploadIdMarker") == 0) {
            return sax_once(s, &out->next_upload_id_marker);
        }
        return -1;
    }
    if (depth != 3 || !p->in_upload) return -1;
    struct s3_upload_info *u = &out->uploads[out->count - 1];
    if (strcmp(name, "Key") == 0) return sax_once(s, &u->key);
    if (strcmp(name, "UploadId") == 0) return sax_once(s, &u->upload_id);
    if (strcmp(name, "Initiated") == 0) return sax_once(s, &u->initiated);
    return -1;
}

/* Key (non-empty; url-decoded at the end) and a non-empty UploadId are required. */
static void upload_close(struct sax *s, unsigned depth)
{
    struct upload_parse *p = s->user;

    if (depth != 2 || !p->in_upload) return;
    p->in_upload = false;
    const struct s3_upload_info *u = &p->out->uploads[p->out->count - 1];
    if (!u->key || !u->key[0] || !u->upload_id || !u->upload_id[0]) sax_fail(s, S3_ERR_XML);
}

enum s3_err s3_xml_parse_uploads(const char *body, size_t len, struct s3_upload_list *out)
{
    static const char *const roots[] = {"ListMultipartUploadsResult", NULL};
    static const struct sax_doc doc = {roots, upload_open, NULL, upload_close};
    struct upload_parse p = {.out = out};
    enum s3_err err;
    bool url = false;

    if (!out) return S3_ERR_INVALID;
    memset(out, 0, sizeof *out);
    err = sax_parse(body, len, &doc, &p);
    if (err == S3_OK) err = check_encoding(p.encoding, &url);
    if (err != S3_OK) goto out;
    err = S3_ERR_XML;
    if (url) {
        for (size_t i = 0; i < out->count; i++)
            if (s3x_url_decode(out->uploads[i].key) != S3_OK) goto out;
        if (out->next_key_marker && s3x_url_decode(out->next_key_marker) != S3_OK) goto out;
    }
    if (!p.truncated || s3x_parse_bool(p.truncated, &out->is_truncated) != S3_OK) goto out;
    if (out->is_truncated && (!out->next_key_marker || !out->next_key_marker[0])) goto out;
    err = S3_OK;
out:
    free(p.truncated);
    free(p.encoding);
    if (err != S3_OK) s3_upload_list_free(out);
    return err;
}
