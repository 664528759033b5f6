/* Parsing of S3 XML response bodies with libxml2 (hardened: no network, no DTD, no entities, size cap,
 * silent errors) into plain C structs, and the two request bodies we send. See s3/xml.h for the contract.
 * Bodies are read with libxml2's SAX2 interface straight into the structs, no tree (see "SAX parsing"). */
#include "s3/xml.h"

#include <stdlib.h>
#include <string.h>

#include <libxml/SAX2.h>
#include <libxml/dict.h>
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

/* The full scan: one linear pass over the raw bytes before libxml2 sees them (they are read as UTF-8, so byte
 * view and parser view agree): refuses markup declarations (<!DOCTYPE, <!ENTITY, ...) and more than
 * XML_MAX_ATTRIBUTES attributes. Anything malformed is left for libxml2 to reject. */
static enum s3_err xml_prescan_tags(const char *body, size_t len)
{
    /* in a tag: what ends a run of ordinary bytes */
    static const unsigned char tag_stop[256] = {['>'] = 1, ['"'] = 2, ['\''] = 2, ['='] = 3};
    const char *p = body, *end = body + len;
    unsigned attrs = 0;

    while (p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        size_t left = (size_t)(end - p);
        if (left >= 2 && p[1] == '!') {
            if (left >= 4 && memcmp(p, "<!--", 4) == 0)
                p = skip_past(p + 4, end, "-->");
            else if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0)
                p = skip_past(p + 9, end, "]]>");
            else
                return S3_ERR_XML;
        } else if (left >= 2 && p[1] == '?') {
            p = skip_past(p + 2, end, "?>");
        } else {
            /* a tag: count '=' outside quoted attribute values */
            const unsigned char *q = (const unsigned char *)p + 1, *e = (const unsigned char *)end;
            for (;;) {
                while (q < e && !tag_stop[*q])
                    q++;
                if (q == e || *q == '>') break;
                if (tag_stop[*q] == 2) {
                    q = memchr(q + 1, *q, (size_t)(e - q - 1));
                    if (!q) return S3_OK; /* unterminated: libxml2 refuses it */
                } else if (++attrs > XML_MAX_ATTRIBUTES) {
                    return S3_ERR_XML;
                }
                q++;
            }
            p = (const char *)q;
        }
        if (!p) break;
    }
    return S3_OK;
}

/* Position of the '<' of the first "<c" in [p, end), or NULL. */
static const char *find_pair(const char *p, const char *end, char c)
{
    for (const char *q = p + 1; q < end && (q = memchr(q, c, (size_t)(end - q))) != NULL; q++)
        if (q[-1] == '<') return q - 1;
    return NULL;
}

/* What xml_prescan_tags decides, cheaper. Every attribute is name="value": with at most XML_MAX_ATTRIBUTES
 * '=' followed by a quote (after optional blanks) in the whole body, no tag can have too many, and then only
 * "<!" and "<?" matter: comments, CDATA and PIs are skipped, any other "<!" refused. The full scan also skips
 * quoted attribute values, but a '<' in one is malformed, so the two differ only on bodies libxml2 refuses
 * anyway. Other bodies get the full scan. */
static enum s3_err xml_prescan(const char *body, size_t len)
{
    const char *p = body, *end = body + len, *bang, *pi;
    size_t eq = 0;

    for (const char *q = body; eq <= XML_MAX_ATTRIBUTES && (q = memchr(q, '=', (size_t)(end - q))) != NULL;) {
        for (q++; q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'); q++) {
        }
        if (q < end && (*q == '"' || *q == '\'')) eq++;
    }
    if (eq > XML_MAX_ATTRIBUTES) return xml_prescan_tags(body, len);
    bang = find_pair(p, end, '!');
    pi = find_pair(p, end, '?');
    while (bang || pi) {
        if (pi && (!bang || pi < bang)) {
            p = skip_past(pi + 2, end, "?>");
        } else if ((size_t)(end - bang) >= 4 && memcmp(bang, "<!--", 4) == 0) {
            p = skip_past(bang + 4, end, "-->");
        } else if ((size_t)(end - bang) >= 9 && memcmp(bang, "<![CDATA[", 9) == 0) {
            p = skip_past(bang + 9, end, "]]>");
        } else {
            return S3_ERR_XML;
        }
        if (!p) break;
        if (bang && bang < p) bang = find_pair(p, end, '!');
        if (pi && pi < p) pi = find_pair(p, end, '?');
    }
    return S3_OK;
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

/* ---- SAX parsing ----
 *
 * No tree: libxml2 tokenizes and checks well-formedness, and our SAX2 callbacks hand each document type's
 * hooks (struct sax_doc) the elements by local name and depth and the text of the elements they ask for.
 * Building and freeing a DOM was most of the cost of a listing (a node per element and per text run), and a
 * parser context per document most of the cost of a small result; the context is now kept and reused.
 *
 * Same results as a tree with XML_PARSE_NOBLANKS: libxml2 drops a whitespace-only text run as "ignorable"
 * from a guess that looks at the node under construction (areBlanks() in parser.c: is its first or last
 * child a text node, is the next character '<'). With no tree, ctxt->node would be NULL and every blank run
 * would be kept, so <Key><![CDATA[a]]> </Key> would read "a " instead of "a". We point ctxt->node at a
 * stand-in element whose first and last children are stand-ins of the kinds the tree would have there, so
 * libxml2's own rule decides, and it sends dropped runs to ignorableWhitespace rather than characters.
 * Nothing else in the parser dereferences ctxt->node when there is no DTD (record_info is off). */

enum child_kind { CHILD_NONE, CHILD_TEXT, CHILD_OTHER };

struct sax_level {
    unsigned char first, last; /* enum child_kind of the element's first and last child so far */
};

struct sax;

/* One document type: its root element names and hooks, called only while no error has been recorded.
 * Names are local names in any namespace (S3 uses a default namespace, RGW errors none); an element with an
 * undeclared prefix is passed as NULL, since a tree would have named it "prefix:name". Depth 1 is the root.
 */
struct sax_doc {
    const char *const *roots;
    /* element opened; returns a field id >= 0 to have its own text collected (then nothing nested in it is
     * reported), -1 otherwise. SAX_TAKE (see sax_once): the text is stored as a new string in *s->slot. */
    int (*open)(struct sax *s, const char *name, unsigned depth);
    /* any other field's text: its text and CDATA children concatenated, NUL-terminated, when it closes */
    void (*text)(struct sax *s, int field, const char *text, size_t len);
    /* element closed (NULL: nothing to do) */
    void (*close)(struct sax *s, unsigned depth);
};

#define SAX_LEVELS_INLINE 16 /* S3 documents are 4 deep at most; libxml2 refuses more than 256 */

struct sax {
    const struct sax_doc *doc;
    void *user;      /* the document type's state */
    enum s3_err err; /* first error from a hook or an allocation; later events are ignored */
    bool saw_doctype, saw_root;
    unsigned depth; /* open elements */
    int field;      /* field being collected, or -1 */
    unsigned field_depth;
    char **slot; /* where a SAX_TAKE field goes */
    char *text;  /* the field's text so far */
    size_t len, alloc;
    struct sax_level *levels, inline_levels[SAX_LEVELS_INLINE];
    size_t nlevels;
    xmlNode node, text_child, other_child; /* stand-ins for areBlanks(), see above */
};

static void sax_fail(struct sax *s, enum s3_err err)
{
    if (s->err == S3_OK) s->err = err;
}

static xmlNode *sax_stand_in(struct sax *s, unsigned kind)
{
    return kind == CHILD_TEXT ? &s->text_child : kind == CHILD_OTHER ? &s->other_child : NULL;
}

/* A child of this kind was appended to the open element: update the stand-in ctxt->node points at. */
static void sax_child(struct sax *s, enum child_kind kind)
{
    if (!s->depth) return; /* outside the root: the tree's ctxt->node is NULL there too */
    struct sax_level *l = &s->levels[s->depth - 1];
    if (l->first == CHILD_NONE) l->first = (unsigned char)kind;
    l->last = (unsigned char)kind;
    s->node.children = sax_stand_in(s, l->first);
    s->node.last = sax_stand_in(s, l->last);
}

#define SAX_TAKE 0

/* The field's text as a new string in *slot. */
static void sax_take(struct sax *s, char **slot, const char *text, size_t len)
{
    char *p = malloc(len + 1);
    if (!p) {
        sax_fail(s, S3_ERR_NOMEM);
        return;
    }
    memcpy(p, text, len + 1);
    *slot = p;
}

/* For open hooks: collect the element's text into *slot, unless one was already seen, which is an error
 * (sax_once) or leaves the first one (sax_first). */
static int sax_once(struct sax *s, char **slot)
{
    if (*slot) {
        sax_fail(s, S3_ERR_XML);
        return -1;
    }
    s->slot = slot;
    return SAX_TAKE;
}

static int sax_first(struct sax *s, char **slot)
{
    if (*slot) return -1;
    s->slot = slot;
    return SAX_TAKE;
}

static void sax_start(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri,
                      int nb_namespaces, const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
                      const xmlChar **attributes)
{
    xmlParserCtxtPtr ctxt = ctx;
    struct sax *s = ctxt->_private;
    const char *name = prefix && !uri ? NULL : (const char *)localname;

    if (s->depth == s->nlevels) {
        size_t n = s->nlevels * 2;
        struct sax_level *l =
            s->levels == s->inline_levels ? malloc(n * sizeof *l) : realloc(s->levels, n * sizeof *l);
        if (!l) {
            sax_fail(s, S3_ERR_NOMEM);
            xmlStopParser(ctxt); /* the stand-in can no longer follow the tree */
            return;
        }
        if (s->levels == s->inline_levels) memcpy(l, s->inline_levels, sizeof s->inline_levels);
        s->levels = l;
        s->nlevels = n;
    }
    s->levels[s->depth].first = s->levels[s->depth].last = CHILD_NONE;
    s->depth++;
    s->node.children = s->node.last = NULL;
    ctxt->node = &s->node;

    if (s->err != S3_OK || (s->field >= 0 && s->depth > s->field_depth)) return;
    if (s->depth == 1) {
        for (const char *const *r = s->doc->roots; name && *r; r++)
            if (strcmp(name, *r) == 0) s->saw_root = true;
        if (!s->saw_root) sax_fail(s, S3_ERR_XML);
        return;
    }
    int field = s->doc->open(s, name, s->depth);
    if (field >= 0 && s->err == S3_OK) {
        s->field = field;
        s->field_depth = s->depth;
        s->len = 0;
    }
}

static void sax_end(void *ctx, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    xmlParserCtxtPtr ctxt = ctx;
    struct sax *s = ctxt->_private;

    if (!s->depth) return;
    if (s->err == S3_OK && s->field >= 0 && s->depth == s->field_depth) {
        int field = s->field;
        s->field = -1;
        if (!s->text && !(s->text = malloc(s->alloc = 64))) {
            sax_fail(s, S3_ERR_NOMEM);
        } else {
            s->text[s->len] = '\0';
            if (field == SAX_TAKE)
                sax_take(s, s->slot, s->text, s->len);
            else
                s->doc->text(s, field, s->text, s->len);
        }
    }
    if (s->err == S3_OK && s->field < 0 && s->depth > 1 && s->doc->close) s->doc->close(s, s->depth);
    s->depth--;
    if (s->depth) {
        sax_child(s, CHILD_OTHER); /* the element just closed, as a child of its parent */
    } else {
        ctxt->node = NULL;
    }
}

/* Text and CDATA: kept in the field being collected when directly inside it. */
static void sax_append(struct sax *s, const xmlChar *ch, int len)
{
    if (s->err != S3_OK || s->field < 0 || s->depth != s->field_depth || len <= 0) return;
    if ((size_t)len >= s->alloc - s->len || !s->text) {
        size_t want = s->alloc ? s->alloc : 64;
        while (want - s->len <= (size_t)len)
            want *= 2; /* bodies are at most S3_XML_MAX_BODY: no overflow */
        char *p = realloc(s->text, want);
        if (!p) {
            sax_fail(s, S3_ERR_NOMEM);
            return;
        }
        s->text = p;
        s->alloc = want;
    }
    memcpy(s->text + s->len, ch, (size_t)len);
    s->len += (size_t)len;
}

static void sax_characters(void *ctx, const xmlChar *ch, int len)
{
    struct sax *s = ((xmlParserCtxtPtr)ctx)->_private;
    sax_child(s, CHILD_TEXT);
    sax_append(s, ch, len);
}

static void sax_cdata(void *ctx, const xmlChar *ch, int len)
{
    struct sax *s = ((xmlParserCtxtPtr)ctx)->_private;
    sax_child(s, CHILD_OTHER); /* a CDATA node is not a text node to areBlanks() */
    sax_append(s, ch, len);
}

static void sax_comment(void *ctx, const xmlChar *value)
{
    (void)value;
    sax_child(((xmlParserCtxtPtr)ctx)->_private, CHILD_OTHER);
}

static void sax_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
    (void)target;
    (void)data;
    sax_child(((xmlParserCtxtPtr)ctx)->_private, CHILD_OTHER);
}

/* Only for entities declared in a DTD, which we never have; the tree would get an entity-reference node. */
static void sax_reference(void *ctx, const xmlChar *name)
{
    (void)name;
    sax_child(((xmlParserCtxtPtr)ctx)->_private, CHILD_OTHER);
}

/* SAX hook for <!DOCTYPE: S3 never sends one, and it is the door to entity tricks. Stop right there, before
 * the internal subset is read (xml_prescan refuses it first; this is the second line). */
static void xml_on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
                           const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = ctx;
    (void)name;
    (void)external_id;
    (void)system_id;
    ((struct sax *)ctxt->_private)->saw_doctype = true;
    xmlStopParser(ctxt);
}

/* The reused context: one per thread (libxml2 contexts are not shared), taken while a parse runs. It is
 * dropped after any document that did not parse cleanly (the reset does not undo everything, e.g. the
 * namespace stack of an unfinished element) and once its dictionary, which holds element, attribute and
 * prefix names and namespace URIs but never text, has grown past XML_DICT_MAX names: memory stays bounded
 * whatever the server sends. */
#define XML_DICT_MAX 1024
static _Thread_local xmlParserCtxtPtr cached_ctxt;

static xmlParserCtxtPtr sax_context(void)
{
    xmlParserCtxtPtr ctxt = cached_ctxt;

    cached_ctxt = NULL;
    if (ctxt) return ctxt;
    ctxt = xmlNewParserCtxt();
    if (!ctxt) return NULL;
    xmlSAXHandler *h = ctxt->sax; /* allocated per context; xmlCtxtReadMemory keeps it */
    memset(h, 0, sizeof *h);
    h->initialized = XML_SAX2_MAGIC;
    h->startElementNs = sax_start;
    h->endElementNs = sax_end;
    h->characters = sax_characters;
    h->ignorableWhitespace = xmlSAX2IgnorableWhitespace; /* what XML_PARSE_NOBLANKS sets: drop */
    h->cdataBlock = sax_cdata;
    h->comment = sax_comment;
    h->processingInstruction = sax_pi;
    h->reference = sax_reference;
    h->getEntity = xmlSAX2GetEntity; /* the predefined entities, as with the default handler */
    h->internalSubset = xml_on_doctype;
    h->serror = xml_silent; /* per context: other libxml2 users keep their handlers */
    return ctxt;
}

/* Parses body as `doc`, the hooks getting `user`. S3_OK only for a well-formed document with one of the
 * root names and no error from the hooks; the caller then checks what must be present.
 * The same libxml2 call as the tree version had, forced "UTF-8" included, so the parser sees the bytes as
 * before: no encoding guessed from the first bytes, the same buffering and limits. Its price is on small
 * bodies: libxml2 polls the UTF-8 "converter" on each GROW, ~45% of a CopyObjectResult's instructions. */
static enum s3_err sax_parse(const char *body, size_t len, const struct sax_doc *doc, void *user)
{
    enum s3_err err;
    xmlParserCtxtPtr ctxt;
    struct sax s = {.doc = doc, .user = user, .field = -1, .nlevels = SAX_LEVELS_INLINE};

    if (len > S3_XML_MAX_BODY) return S3_ERR_TOO_LARGE;
    if (!body || len == 0) return S3_ERR_XML;
    err = xml_prescan(body, len);
    if (err != S3_OK) return err;

    xmlInitParser();
    ctxt = sax_context();
    if (!ctxt) return S3_ERR_NOMEM;
    s.levels = s.inline_levels;
    s.node.type = XML_ELEMENT_NODE;
    s.text_child.type = XML_TEXT_NODE;
    s.other_child.type = XML_COMMENT_NODE;
    ctxt->_private = &s;
    xmlDocPtr tree = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, "UTF-8", XML_OPTIONS);
    xmlFreeDoc(tree); /* always NULL: no handler builds one */
    ctxt->_private = NULL;
    ctxt->node = NULL;

    if (!ctxt->wellFormed)
        err = ctxt->errNo == XML_ERR_NO_MEMORY ? S3_ERR_NOMEM : S3_ERR_XML;
    else if (s.saw_doctype || !s.saw_root)
        err = S3_ERR_XML;
    else
        err = s.err;

    if (ctxt->wellFormed && ctxt->errNo == XML_ERR_OK && !s.saw_doctype && s.err == S3_OK && !cached_ctxt &&
        ctxt->nsNr == 0 && xmlDictSize(ctxt->dict) <= XML_DICT_MAX)
        cached_ctxt = ctxt;
    else
        xmlFreeParserCtxt(ctxt);
    free(s.text);
    if (s.levels != s.inline_levels) free(s.levels);
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

/* Elements of a listing: entries (<Contents>, <Version>, <DeleteMarker>) and <CommonPrefixes> are children of
 * the root, the entries' fields and <Prefix> their children; anything deeper or unknown is ignored. */
enum list_field { LF_SIZE = 1, LF_IS_LATEST, LF_PREFIX };

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
    struct s3_object_info *o = &out->objects[out->count - 1];
    switch (name[0]) { /* the hot path: one strcmp per field */
    case 'K':
        if (strcmp(name, "Key") == 0) return sax_once(s, &o->key);
        break;
    case 'L':
        if (strcmp(name, "LastModified") == 0) return sax_once(s, &o->last_modified);
        break;
    case 'S': /* a DeleteMarker has no size, ETag or storage class: ignored if present */
        if (!l->marker && strcmp(name, "Size") == 0) {
            if (l->seen_size) sax_fail(s, S3_ERR_XML);
            l->seen_size = true;
            return LF_SIZE;
        }
        if (!l->marker && strcmp(name, "StorageClass") == 0) return sax_once(s, &o->storage_class);
        break;
    case 'E':
        if (!l->marker && strcmp(name, "ETag") == 0) return sax_once(s, &o->etag);
        break;
    case 'V':
        if (l->kind == LIST_VERSIONS && strcmp(name, "VersionId") == 0) return sax_once(s, &o->version_id);
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

static void list_text(struct sax *s, int field, const char *text, size_t len)
{
    struct list_parse *l = s->user;
    struct s3_list_page *out = l->out;

    if (field == LF_SIZE && parse_u64(text, &out->objects[out->count - 1].size) != S3_OK) {
        sax_fail(s, S3_ERR_XML);
    } else if (field == LF_IS_LATEST && parse_bool(text, &out->objects[out->count - 1].is_latest) != S3_OK) {
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
        if (o->etag) strip_quotes(o->etag);
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
            if (url_decode_inplace(out->objects[i].key) != S3_OK) goto out;
        for (size_t i = 0; i < out->nprefixes; i++)
            if (url_decode_inplace(out->common_prefixes[i]) != S3_OK) goto out;
        if (out->next_key_marker && url_decode_inplace(out->next_key_marker) != S3_OK) goto out;
    }
    /* A listing that does not say whether it is complete, or is truncated with no way to continue, would make
     * the caller stop early or start over: refuse it. */
    if (!l.truncated || parse_bool(l.truncated, &out->is_truncated) != S3_OK) goto out;
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
        {"Region", &out->region, true},
    };
    return parse_flat(body, len, roots, fields, sizeof fields / sizeof *fields);
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
    strip_quotes(*etag);
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
            if (url_decode_inplace(out->uploads[i].key) != S3_OK) goto out;
        if (out->next_key_marker && url_decode_inplace(out->next_key_marker) != S3_OK) goto out;
    }
    if (!p.truncated || parse_bool(p.truncated, &out->is_truncated) != S3_OK) goto out;
    if (out->is_truncated && (!out->next_key_marker || !out->next_key_marker[0])) goto out;
    err = S3_OK;
out:
    free(p.truncated);
    free(p.encoding);
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
