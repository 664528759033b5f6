/* The hardened libxml2 SAX2 driver behind s3/xml.c (no network, no DTD, no entities, size cap, silent errors,
 * one reused parser context) and the value helpers its document parsers share: see s3/xml_sax.h. Must not: load a
 * DTD, expand an entity or touch the network. */
#include "s3/xml_sax.h"
#include "s3/xml.h"

#include <stdlib.h>
#include <string.h>

#include <libxml/SAX2.h>
#include <libxml/dict.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlversion.h>

/* S3 bodies carry one attribute (xmlns on the root). libxml2 2.9 checks attribute and namespace uniqueness
 * pairwise, so a single start tag with 10^5 attributes costs minutes of CPU: cap them before parsing. */
#define XML_MAX_ATTRIBUTES 256

/* NONET: never fetch anything. NOBLANKS: drop indentation-only text. No NOENT, no DTDLOAD/DTDATTR/XINCLUDE.
 * IGNORE_ENC: the encoding an XML declaration names is ignored (S3 sends UTF-8 only; see read_as_utf8), so
 * no iconv conversion runs, whose errors would otherwise go to stderr through the global error channel. */
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
const char *s3x_skip_past(const char *p, const char *end, const char *tok)
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
                p = s3x_skip_past(p + 4, end, "-->");
            else if (left >= 9 && memcmp(p, "<![CDATA[", 9) == 0)
                p = s3x_skip_past(p + 9, end, "]]>");
            else
                return S3_ERR_XML;
        } else if (left >= 2 && p[1] == '?') {
            p = s3x_skip_past(p + 2, end, "?>");
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
            p = s3x_skip_past(pi + 2, end, "?>");
        } else if ((size_t)(end - bang) >= 4 && memcmp(bang, "<!--", 4) == 0) {
            p = s3x_skip_past(bang + 4, end, "-->");
        } else if ((size_t)(end - bang) >= 9 && memcmp(bang, "<![CDATA[", 9) == 0) {
            p = s3x_skip_past(bang + 9, end, "]]>");
        } else {
            return S3_ERR_XML;
        }
        if (!p) break;
        if (bang && bang < p) bang = find_pair(p, end, '!');
        if (pi && pi < p) pi = find_pair(p, end, '?');
    }
    return S3_OK;
}

bool s3x_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Decimal uint64 with optional surrounding whitespace; signs, other characters and overflow are errors. */
enum s3_err s3x_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    bool digits = false;

    while (s3x_is_space(*s))
        s++;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return S3_ERR_XML;
        v = v * 10 + d;
        digits = true;
    }
    while (s3x_is_space(*s))
        s++;
    if (!digits || *s) return S3_ERR_XML;
    *out = v;
    return S3_OK;
}

/* xsd:boolean as S3 writes it: "true" or "false" (also 1/0), optional surrounding whitespace. */
enum s3_err s3x_parse_bool(const char *s, bool *out)
{
    size_t n;

    while (s3x_is_space(*s))
        s++;
    for (n = strlen(s); n && s3x_is_space(s[n - 1]); n--) {
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
enum s3_err s3x_url_decode(char *s)
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
void s3x_strip_quotes(char *s)
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


void sax_fail(struct sax *s, enum s3_err err)
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

/* The field's text as a new string in *slot. */
void sax_take(struct sax *s, char **slot, const char *text, size_t len)
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
int sax_once(struct sax *s, char **slot)
{
    if (*slot) {
        sax_fail(s, S3_ERR_XML);
        return -1;
    }
    s->slot = slot;
    return SAX_TAKE;
}

int sax_first(struct sax *s, char **slot)
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

void s3_xml_init(void)
{
    xmlInitParser();
}

void s3_xml_thread_end(void)
{
    xmlFreeParserCtxt(cached_ctxt);
    cached_ctxt = NULL;
}

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

/* Whether libxml2, given no encoding, reads the body as UTF-8 (as the prescan does): it guesses an encoding
 * only from the first four bytes (xmlDetectCharEncoding), and every guess other than UTF-8 starts with a NUL
 * byte among them, a UTF-16 byte order mark or EBCDIC's "<?xm". S3 sends UTF-8 only; such a body is refused
 * as a forced "UTF-8" refused it (as not proper UTF-8). */
static bool read_as_utf8(const unsigned char *b, size_t len)
{
    if (len >= 2 && ((b[0] == 0xFE && b[1] == 0xFF) || (b[0] == 0xFF && b[1] == 0xFE))) return false;
    if (len >= 4 && b[0] == 0x4C && b[1] == 0x6F && b[2] == 0xA7 && b[3] == 0x94) return false;
    return memchr(b, 0, len < 4 ? len : 4) == NULL;
}

/* Parses body as `doc`, the hooks getting `user`. S3_OK only for a well-formed document with one of the
 * root names and no error from the hooks; the caller then checks what must be present.
 * No encoding is forced: with IGNORE_ENC and a body read_as_utf8 accepts, libxml2 parses the bytes in place
 * as UTF-8 (checking each sequence: invalid UTF-8 is not well-formed). A forced "UTF-8" gave the same
 * results through its UTF-8 "converter", which copies the whole body once more and is polled on every GROW
 * (~45% of a small document's instructions, ~6% of a listing page's). */
enum s3_err sax_parse(const char *body, size_t len, const struct sax_doc *doc, void *user)
{
    enum s3_err err;
    xmlParserCtxtPtr ctxt;
    struct sax s = {.doc = doc, .user = user, .field = -1, .nlevels = SAX_LEVELS_INLINE};

    if (len > S3_XML_MAX_BODY) return S3_ERR_TOO_LARGE;
    if (!body || len == 0) return S3_ERR_XML;
    if (!read_as_utf8((const unsigned char *)body, len)) return S3_ERR_XML;
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
    xmlDocPtr tree = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, NULL, XML_OPTIONS);
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
