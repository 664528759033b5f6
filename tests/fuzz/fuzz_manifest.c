/* libFuzzer target for manifest/: the input becomes a manifest file that the reader, the summary and the
 * index loader go through; every object record read is written again by the writer and must read back
 * identical. Build with clang -fsanitize=fuzzer,address,undefined over this file, manifest/jsonl.c and
 * manifest/index.c, linking -lcjson; seeds in tests/fuzz/corpus/manifest/. Run with TMPDIR on a tmpfs: the
 * writer fsyncs. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest/manifest.h"

#define PRINT_EXACT_MAX 999999999999999ULL /* object sizes the writer takes (see manifest/jsonl.c) */
#define MAX_OBJECTS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[4096];

static const char *work_dir(void)
{
    if (!g_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/fuzz_manifest.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(g_dir)) abort();
    }
    return g_dir;
}

static void write_input(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");

    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Writes the accepted object records and checks they read back field for field. */
static void check_rewrite(const char *path, struct manifest_object *objs, size_t n)
{
    static const struct manifest_header h = {
        .run_id = "r", .tool_version = "v", .started = 1, .source = "s3://a/", .target = "s3://b/"};
    struct manifest_writer *w;
    struct manifest_reader *r;
    struct manifest_record rec;
    size_t i;

    unlink(path);
    w = manifest_writer_open(path, NULL, 0);
    if (!w) abort();
    if (manifest_writer_header(w, &h) != 0) abort();
    for (i = 0; i < n; i++) {
        if (manifest_writer_add(w, &objs[i]) != 0)
            abort(); /* whatever the reader accepts, the writer takes */
    }
    if (manifest_writer_close(w) != 0) abort();

    r = manifest_reader_open(path, NULL, 0);
    if (!r) abort();
    if (manifest_reader_next(r, &rec, NULL, 0) != 1 || rec.type != MANIFEST_REC_HEADER) abort();
    for (i = 0; i < n; i++) {
        const struct manifest_object *o = &objs[i];
        if (manifest_reader_next(r, &rec, NULL, 0) != 1 || rec.type != MANIFEST_REC_OBJECT) abort();
        if (!same_str(rec.object.key, o->key) || rec.object.size != o->size ||
            !same_str(rec.object.etag, o->etag) || !same_str(rec.object.last_modified, o->last_modified) ||
            !same_str(rec.object.target_key, o->target_key) ||
            !same_str(rec.object.target_etag, o->target_etag) ||
            !same_str(rec.object.version_id, o->version_id) || rec.object.pass != o->pass)
            abort();
    }
    if (manifest_reader_next(r, &rec, NULL, 0) != 0) abort();
    manifest_reader_close(r);
    unlink(path);
}

static char *dup_or_null(const char *s)
{
    char *d;

    if (!s) return NULL;
    d = strdup(s);
    if (!d) abort();
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[sizeof g_dir + 16], out[sizeof g_dir + 16], err[512];
    struct manifest_object objs[MAX_OBJECTS];
    size_t nobj = 0, i;
    struct manifest_reader *r;
    struct manifest_record rec;
    struct manifest_summary s;
    struct manifest_index *idx;
    int rc, corrupt = 0, bad = 0;
    bool objects_skipped = false;

    snprintf(in, sizeof in, "%s/in.jsonl", work_dir());
    snprintf(out, sizeof out, "%s/out.jsonl", work_dir());
    write_input(in, data, size);

    r = manifest_reader_open(in, err, sizeof err);
    if (!r) abort();
    while ((rc = manifest_reader_next(r, &rec, err, sizeof err)) != 0) {
        if (rc < 0) {
            if (!strstr(err, "in.jsonl:")) abort(); /* every error names the file and line */
            bad++;
            continue;
        }
        if (rec.type == MANIFEST_REC_OBJECT && (nobj == MAX_OBJECTS || rec.object.size > PRINT_EXACT_MAX)) {
            objects_skipped = true;
        } else if (rec.type == MANIFEST_REC_OBJECT) {
            objs[nobj] = rec.object;
            objs[nobj].key = dup_or_null(rec.object.key);
            objs[nobj].etag = dup_or_null(rec.object.etag);
            objs[nobj].last_modified = dup_or_null(rec.object.last_modified);
            objs[nobj].target_key = dup_or_null(rec.object.target_key);
            objs[nobj].target_etag = dup_or_null(rec.object.target_etag);
            objs[nobj].version_id = dup_or_null(rec.object.version_id);
            nobj++;
        } else if (rec.type == MANIFEST_REC_HEADER) {
            if (!rec.header.run_id || !rec.header.source || !rec.header.target || !rec.header.tool_version)
                abort();
            if (rec.header.options_json) (void)strlen(rec.header.options_json);
        } else if (rec.type == MANIFEST_REC_TRAILER) {
            if (!rec.trailer.result) abort();
        }
    }
    manifest_reader_close(r);

    /* Records only come from complete lines: input without a final newline always ends in a corrupt line. */
    if (size > 0 && data[size - 1] != '\n' && bad == 0) abort();

    if (manifest_summary_read(in, &s, err, sizeof err) == 0) {
        if (!s.run_id || s.corrupt_lines != bad) abort();
        if (s.trailer_found != (s.result != NULL)) abort();
    }
    manifest_summary_free(&s);

    idx = manifest_index_new();
    if (!idx) abort();
    if (manifest_index_load(idx, in, &corrupt) != 0 || corrupt != bad) abort();
    /* The last record for a target key decides the mapping (when no record escaped our copy). */
    for (i = 0; i < nobj && !objects_skipped; i++) {
        const char *got = manifest_index_get(idx, objs[i].target_key, objs[i].size, objs[i].target_etag);
        bool last = true;
        for (size_t j = i + 1; j < nobj; j++)
            last = last && strcmp(objs[j].target_key, objs[i].target_key) != 0;
        if (!last) continue;
        if (strcmp(objs[i].target_etag, objs[i].etag) != 0 ? !got || strcmp(got, objs[i].etag) != 0
                                                           : got != NULL)
            abort();
    }
    manifest_index_free(idx);

    check_rewrite(out, objs, nobj);
    for (i = 0; i < nobj; i++) {
        free((char *)objs[i].key);
        free((char *)objs[i].etag);
        free((char *)objs[i].last_modified);
        free((char *)objs[i].target_key);
        free((char *)objs[i].target_etag);
        free((char *)objs[i].version_id);
    }
    unlink(in);
    return 0;
}
