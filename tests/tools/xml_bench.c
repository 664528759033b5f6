/* xml_bench: CPU cost of the S3 XML parsers (s3/xml.c) on generated bodies, for callgrind.
 *   xml_bench v2|versions|copy [ENTRIES] [ROUNDS]
 * v2 and versions parse a ListObjectsV2 / ListObjectVersions page of ENTRIES entries (default 1000) ROUNDS
 * times (default 5); copy parses a CopyObjectResult ROUNDS times (default 1000). Instructions per entry or
 * per document, stable under load:
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out --toggle-collect=s3_xml_parse_list_v2 \
 *       build/tools/xml_bench v2 1000 5
 *   callgrind_annotate /tmp/cg.out | head   (total Ir / (ENTRIES * ROUNDS))
 * Without valgrind it prints the wall time per entry or document. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3/xml.h"

struct buf {
    char *data;
    size_t len, alloc;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->alloc - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->alloc - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->alloc = b->alloc ? b->alloc * 2 : 65536;
        b->data = realloc(b->data, b->alloc);
        if (!b->data) exit(1);
    }
}

/* Entries of about 400 bytes, compact as AWS and RGW send them (XML_BENCH_INDENT=1: indented like the
 * examples in the S3 API reference, which costs the parser more text runs), with an Owner block and quoted
 * ETags. */
static void make_listing(struct buf *b, bool versions, int entries)
{
    const char *nl = getenv("XML_BENCH_INDENT") && atoi(getenv("XML_BENCH_INDENT")) ? "\n    " : "";
    const char *entry = versions ? "Version" : "Contents";

    put(b,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<%s xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
        versions ? "ListVersionsResult" : "ListBucketResult");
    put(b,
        "%s<Name>bucket</Name>%s<Prefix>data/</Prefix>%s<MaxKeys>1000</MaxKeys>%s<IsTruncated>true</"
        "IsTruncated>",
        nl, nl, nl, nl);
    for (int i = 0; i < entries; i++) {
        put(b, "%s<%s>%s<Key>data/2026/11/26/app-server-%04d/object-%08d.json</Key>", nl, entry, nl, i % 97,
            i);
        if (versions)
            put(b,
                "%s<VersionId>3HL4kqtJlcpXroDTDmJ%08dbXjJtSAcOTO.eEaUqw</VersionId>%s<IsLatest>true</"
                "IsLatest>",
                nl, i, nl);
        put(b,
            "%s<LastModified>2026-11-26T16:01:37.000Z</"
            "LastModified>%s<ETag>&quot;9b2cf535f27731c974343645a39%05d"
            "&quot;</ETag>%s<Size>%d</"
            "Size>%s<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54"
            "ba06a</ID><DisplayName>app</DisplayName></Owner>%s<StorageClass>STANDARD</StorageClass>%s</%s>",
            nl, nl, i, nl, 1000 + i * 7, nl, nl, nl, entry);
    }
    if (versions)
        put(b,
            "%s<NextKeyMarker>data/next</NextKeyMarker>%s<NextVersionIdMarker>v</NextVersionIdMarker>"
            "\n</ListVersionsResult>",
            nl, nl);
    else
        put(b,
            "%s<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
            "%s<KeyCount>%d</KeyCount>\n</ListBucketResult>",
            nl, nl, entries);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "v2";
    bool copy = strcmp(what, "copy") == 0, versions = strcmp(what, "versions") == 0;
    int entries = argc > 2 ? atoi(argv[2]) : 1000;
    int rounds = argc > 3 ? atoi(argv[3]) : copy ? 1000 : 5;
    struct buf b = {0};
    struct timespec t0, t1;

    if (!copy && !versions && strcmp(what, "v2") != 0) {
        fprintf(stderr, "usage: xml_bench v2|versions|copy [ENTRIES] [ROUNDS]\n");
        return 2;
    }
    if (copy)
        put(&b,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult "
            "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>2026-11-26T16:01:37.000Z"
            "</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></CopyObjectResult>");
    else
        make_listing(&b, versions, entries);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < rounds; r++) {
        if (copy) {
            char *etag = NULL, *lm = NULL;
            if (s3_xml_parse_copy(b.data, b.len, &etag, &lm) != S3_OK) return 1;
            free(etag);
            free(lm);
        } else {
            struct s3_list_page page;
            enum s3_err err = versions ? s3_xml_parse_list_versions(b.data, b.len, &page)
                                       : s3_xml_parse_list_v2(b.data, b.len, &page);
            if (err != S3_OK || page.count != (size_t)entries) return 1;
            s3_list_page_free(&page);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    double per = copy ? ns / rounds : ns / ((double)rounds * entries);
    printf("%s: %zu-byte body, %.0f ns per %s\n", what, b.len, per, copy ? "document" : "entry");
    free(b.data);
    return 0;
}
