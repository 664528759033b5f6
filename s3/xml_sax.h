/* Internal to s3/xml.c, s3/xml_list.c and s3/xml_sax.c (not part of the s3/xml.h contract): the hardened
 * libxml2 SAX2 driver that reads S3 bodies with no tree, and the value helpers the document parsers share. A
 * document type is a struct sax_doc of hooks; sax_parse runs it over a body. See s3/xml_sax.c for how results
 * stay those of a tree. Must not: be included outside those three files. */
#ifndef S3_XML_SAX_H
#define S3_XML_SAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libxml/tree.h>

#include "s3/error.h"

#define S3_XML_NS "http://s3.amazonaws.com/doc/2006-03-01/"

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


/* An open hook's return value: collect the element's text into s->slot (set by sax_once / sax_first). */
#define SAX_TAKE 0

/* Parses body as `doc`, the hooks getting `user`. S3_OK only for a well-formed document with one of the root
 * names and no error from the hooks; the caller then checks what must be present. */
enum s3_err sax_parse(const char *body, size_t len, const struct sax_doc *doc, void *user);
/* Records the first error of a parse (later events are then ignored). */
void sax_fail(struct sax *s, enum s3_err err);
/* The field's text as a new string in *slot. */
void sax_take(struct sax *s, char **slot, const char *text, size_t len);
/* For open hooks: collect the element's text into *slot, unless one was already seen, which is an error
 * (sax_once) or leaves the first one (sax_first). */
int sax_once(struct sax *s, char **slot);
int sax_first(struct sax *s, char **slot);

/* Values as S3 writes them. */
bool s3x_is_space(char c);
const char *s3x_skip_past(const char *p, const char *end, const char *tok);
enum s3_err s3x_parse_u64(const char *s, uint64_t *out); /* decimal, optional surrounding whitespace */
enum s3_err s3x_parse_bool(const char *s, bool *out);    /* true/false/1/0 */
enum s3_err s3x_url_decode(char *s);                     /* EncodingType=url, in place */
void s3x_strip_quotes(char *s);                          /* "abc" -> abc */

#endif
