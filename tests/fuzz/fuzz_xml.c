/* libFuzzer target for s3/xml.c: the input goes to every parser and to s3_xml_is_error; on success the
 * results must be consistent, on failure the outputs must be zeroed. The input, split at newlines, is also
 * fed to the CompleteMultipartUpload builder, whose output must be well-formed XML that gives the ETags back.
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -I/usr/include/libxml2 tests/fuzz/fuzz_xml.c
 *        s3/xml.c s3/error.c -lxml2 -o fuzz_xml; seeds in tests/fuzz/corpus/xml/. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "s3/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) abort();                                                                                \
    } while (0)

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static void check_page(enum s3_err err, struct s3_list_page *p, bool versions)
{
    if (err != S3_OK) {
        CHECK(all_zero(p, sizeof *p));
        return;
    }
    CHECK(p->count == 0 || p->objects);
    CHECK(p->nprefixes == 0 || p->common_prefixes);
    for (size_t i = 0; i < p->count; i++) {
        const struct s3_object_info *o = &p->objects[i];
        CHECK(o->key && o->key[0] && o->last_modified);
        CHECK(o->delete_marker ? !o->etag && o->size == 0 : o->etag != NULL);
        CHECK(versions ? o->version_id != NULL : o->version_id == NULL && !o->delete_marker);
    }
    for (size_t i = 0; i < p->nprefixes; i++)
        CHECK(p->common_prefixes[i]);
    if (p->is_truncated) CHECK(versions ? p->next_key_marker != NULL : p->next_token != NULL);
    s3_list_page_free(p);
    CHECK(all_zero(p, sizeof *p));
}

static void fuzz_parsers(const char *body, size_t len)
{
    struct s3_list_page page;
    struct s3_error_info einfo;
    struct s3_upload_list uploads;
    char *s, *t;
    enum s3_err err;

    memset(&page, 0xa5, sizeof page);
    check_page(s3_xml_parse_list_v2(body, len, &page), &page, false);
    memset(&page, 0xa5, sizeof page);
    check_page(s3_xml_parse_list_versions(body, len, &page), &page, true);

    memset(&einfo, 0xa5, sizeof einfo);
    err = s3_xml_parse_error(body, len, &einfo);
    CHECK(err == S3_OK || all_zero(&einfo, sizeof einfo));
    s3_error_info_free(&einfo);

    memset(&uploads, 0xa5, sizeof uploads);
    err = s3_xml_parse_uploads(body, len, &uploads);
    if (err == S3_OK) {
        for (size_t i = 0; i < uploads.count; i++)
            CHECK(uploads.uploads[i].key && uploads.uploads[i].key[0] && uploads.uploads[i].upload_id);
    } else {
        CHECK(all_zero(&uploads, sizeof uploads));
    }
    s3_upload_list_free(&uploads);

    s = (char *)body;
    err = s3_xml_parse_initiate(body, len, &s);
    CHECK(err == S3_OK ? s && s[0] : s == NULL);
    free(s);

    s = (char *)body;
    err = s3_xml_parse_complete(body, len, &s);
    CHECK(err == S3_OK ? s != NULL : s == NULL);
    free(s);

    s = t = (char *)body;
    err = s3_xml_parse_copy(body, len, &s, &t);
    CHECK(err == S3_OK ? s != NULL : s == NULL && t == NULL);
    free(s);
    free(t);

    s = (char *)body;
    err = s3_xml_parse_versioning(body, len, &s);
    CHECK(err == S3_OK ? s && (!strcmp(s, "Enabled") || !strcmp(s, "Suspended") || !s[0]) : s == NULL);
    free(s);

    (void)s3_xml_is_error(body, len);
}

/* Lines of the input as ETags: whatever the builder accepts must read back as "<etag without quotes>". */
static void fuzz_builder(const char *data, size_t size)
{
    enum { MAX_PARTS = 64 };
    char *copy = malloc(size + 1);
    const char *etags[MAX_PARTS];
    size_t n = 0, len = 0;

    if (!copy) return;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (char *line = copy; line && n < MAX_PARTS;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        etags[n++] = line;
        line = nl ? nl + 1 : NULL;
    }

    char *xml = s3_xml_build_complete(etags, n, &len);
    if (xml) {
        CHECK(len == strlen(xml));
        xmlDocPtr doc = xmlReadMemory(xml, (int)len, NULL, "UTF-8",
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        CHECK(doc);
        {
            size_t i = 0;
            for (xmlNodePtr part = xmlDocGetRootElement(doc)->children; part; part = part->next, i++) {
                CHECK(i < n);
                xmlChar *got = xmlNodeGetContent(part->children->next);
                const char *want = etags[i];
                size_t wl = strlen(want);
                if (wl >= 2 && want[0] == '"' && want[wl - 1] == '"') {
                    want++;
                    wl -= 2;
                }
                CHECK(got && strlen((char *)got) == wl + 2 && got[0] == '"' && !memcmp(got + 1, want, wl));
                xmlFree(got);
            }
            CHECK(i == n);
            xmlFreeDoc(doc);
        }
        free(xml);
    }

    xml = s3_xml_build_versioning(copy, &len);
    CHECK(!xml || !strcmp(copy, "Enabled") || !strcmp(copy, "Suspended"));
    free(xml);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so that any read past `size` is caught */
    char *body = malloc(size ? size : 1);
    if (!body) return 0;
    memcpy(body, data, size);
    fuzz_parsers(body, size);
    free(body);
    fuzz_builder((const char *)data, size);
    return 0;
}
