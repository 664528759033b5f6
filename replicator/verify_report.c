/* --verify's report: the human summary (counts, the first findings) and the --json document. Must not: decide
 * the result or the exit code (run_verify does), or make a request. */
#include <stdio.h>
#include <stdlib.h>
#include "replicator/output.h"
#include "replicator/verify_internal.h"
#include "s3/log.h"

/* ---- output helpers ---- */

/* A key with control characters escaped, so a hostile key cannot rewrite the terminal. */
static void put_key(FILE *f, const char *k)
{
    if (!f) return;
    for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else
            fputc(*p, f);
    }
}

/* ---- the report ---- */

static void print_lines(FILE *f, const struct disc_line *arr, size_t n, uint64_t total, const char *more)
{
    if (!f) return;
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "  %-13s ", verify_kind_name[arr[i].kind]);
        put_key(f, arr[i].key);
        if (arr[i].detail) fprintf(f, "%s%s", arr[i].key[0] ? ": " : "", arr[i].detail);
        fputc('\n', f);
    }
    if (total > n) fprintf(f, "  ... and %llu more %s\n", (unsigned long long)(total - n), more);
}

static cJSON *verify_json(struct verify *v, const char *result, int exit_code, const char *versioning,
                          int stored_total)
{
    const struct rep_options *o = v->o;
    const struct verify_counts *c = &v->c;
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddStringToObject(j, "tool", "replicate");
    cJSON_AddStringToObject(j, "version", REPLICATE_VERSION);
    cJSON_AddStringToObject(j, "mode", "verify");
    cJSON_AddStringToObject(j, "source", o->src_url);
    cJSON_AddStringToObject(j, "target", o->dst_url);
    cJSON_AddStringToObject(j, "result", result);
    cJSON_AddNumberToObject(j, "exit_code", exit_code);
    if (versioning)
        cJSON_AddStringToObject(j, "target_versioning", versioning[0] ? versioning : "Off");
    else
        cJSON_AddNullToObject(j, "target_versioning");
    cJSON_AddNumberToObject(j, "source_objects", (double)c->src_listed);
    cJSON_AddNumberToObject(j, "target_objects", (double)c->dst_listed);
    cJSON_AddNumberToObject(j, "compared", (double)c->both);
    cJSON_AddNumberToObject(j, "identical", (double)c->same);
    cJSON_AddNumberToObject(j, "missing", (double)c->missing);
    cJSON_AddNumberToObject(j, "different", (double)c->different);
    cJSON_AddNumberToObject(j, "extra", (double)c->extra);
    cJSON_AddNumberToObject(j, "lost_versions", (double)c->lost_versions);
    if (v->newest) {
        cJSON *sh = cJSON_AddObjectToObject(j, "shards");
        cJSON_AddStringToObject(sh, "run_id", v->newest->run_id);
        cJSON_AddNumberToObject(sh, "count", v->newest->count);
        cJSON_AddNumberToObject(sh, "not_ok", (double)c->bad_shards);
    }
    cJSON_AddNumberToObject(j, "errors", (double)c->errors);
    cJSON_AddNumberToObject(j, "changed_during_audit", (double)c->changed);
    cJSON *e = cJSON_AddObjectToObject(j, "etag_check");
    cJSON_AddNumberToObject(e, "same_etag", (double)c->same_etag);
    cJSON_AddNumberToObject(e, "explained_by_manifest", (double)c->by_manifest);
    cJSON_AddNumberToObject(e, "explained_by_target_metadata", (double)c->by_header);
    cJSON_AddNumberToObject(e, "head_requests", (double)c->heads);
    cJSON *d = cJSON_AddObjectToObject(j, "deep");
    cJSON_AddBoolToObject(d, "enabled", o->deep);
    cJSON_AddNumberToObject(d, "sample_percent", o->deep ? o->sample : 0);
    cJSON_AddNumberToObject(d, "objects_read", (double)c->deep_read);
    cJSON_AddNumberToObject(d, "identical", (double)c->deep_same);
    cJSON_AddNumberToObject(d, "bytes_read", (double)c->deep_bytes);
    cJSON_AddNumberToObject(d, "checksums_checked", (double)c->deep_checksums);
    cJSON *m = cJSON_AddObjectToObject(j, "manifests");
    cJSON_AddNumberToObject(m, "stored_in_target", stored_total);
    cJSON *ml = cJSON_AddArrayToObject(m, "loaded");
    for (size_t i = 0; i < v->nmans; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", v->mans[i].name);
        cJSON_AddStringToObject(x, "from", v->mans[i].from_target ? "target" : "local");
        cJSON_AddItemToArray(ml, x);
    }
    cJSON_AddNumberToObject(m, "etag_mappings", (double)manifest_index_count(v->ctx->idx));
    cJSON_AddNumberToObject(m, "versions_checked", (double)c->versions_checked);
    cJSON_AddBoolToObject(m, "versions_truncated", v->versions_truncated);
    cJSON_AddStringToObject(m, "versions_from", v->versions_from_target ? "target" : "local");
    cJSON_AddNumberToObject(m, "records_without_version", (double)c->records_without_version);
    cJSON_AddItemToObject(m, "warnings", v->jmanifest_notes);
    v->jmanifest_notes = NULL;
    cJSON_AddItemToObject(j, "discrepancies", v->jdisc);
    cJSON_AddBoolToObject(j, "discrepancies_truncated", v->jdisc_trunc);
    cJSON_AddItemToObject(j, "extra_in_target", v->jextra);
    cJSON_AddBoolToObject(j, "extra_truncated", v->jextra_trunc);
    cJSON_AddItemToObject(j, "error_list", v->jerrors);
    cJSON_AddBoolToObject(j, "errors_truncated", v->jerrors_trunc);
    v->jdisc = v->jextra = v->jerrors = NULL;
    if (v->error[0]) cJSON_AddStringToObject(j, "message", v->error);
    return j;
}

void verify_print_human(struct verify *v, FILE *hf, int exit_code, const char *versioning, int stored_total,
                        double duration)
{
    const struct rep_options *o = v->o;
    struct rep_ctx *ctx = v->ctx;
    const struct verify_counts *c = &v->c;
    uint64_t bad = verify_bad_count(c);
    char b[32];
    fprintf(hf, "target versioning: %s\n",
            !versioning     ? "unknown (could not be read)"
            : versioning[0] ? versioning
                            : "not enabled");
    if (v->nmans) {
        fprintf(hf, "manifests: ");
        for (size_t i = 0; i < v->nmans; i++)
            fprintf(hf, "%s%s (%s)", i ? ", " : "", v->mans[i].name,
                    v->mans[i].from_target ? "target" : "local");
        fprintf(hf, "; %zu recorded source ETag%s\n", manifest_index_count(ctx->idx),
                manifest_index_count(ctx->idx) == 1 ? "" : "s");
    } else {
        fprintf(hf, "manifests: none found (%d stored in the target, none usable locally)\n",
                stored_total);
    }
    if (v->newest)
        fprintf(hf, "shards: the newest run, %s, has %d shards, %llu of them missing, unfinished or failed\n",
                v->newest->run_id, v->newest->count, (unsigned long long)c->bad_shards);
    fprintf(hf, "listed: %llu source objects, %llu target objects; %llu on both sides\n",
            (unsigned long long)c->src_listed, (unsigned long long)c->dst_listed,
            (unsigned long long)c->both);
    char deep_part[64] = "";
    if (o->deep)
        snprintf(deep_part, sizeof deep_part, "%llu same content (--deep), ",
                 (unsigned long long)c->deep_same);
    fprintf(hf,
            "compared: %llu identical (%s%llu same ETag, %llu explained by the manifest, %llu by the "
            "target's recorded source ETag; %llu HEAD requests)\n",
            (unsigned long long)c->same, deep_part, (unsigned long long)c->same_etag,
            (unsigned long long)c->by_manifest, (unsigned long long)c->by_header,
            (unsigned long long)c->heads);
    if (o->deep) {
        rep_fmt_bytes(c->deep_bytes, b, sizeof b);
        fprintf(
            hf,
            "deep: %llu objects read on both sides (%s, %.0f%% sample), %llu with identical content; %llu "
            "checked against the checksum recorded when copied\n",
            (unsigned long long)c->deep_read, b, o->sample, (unsigned long long)c->deep_same,
            (unsigned long long)c->deep_checksums);
    }
    if (c->changed)
        fprintf(hf, "changed during the audit (not compared): %llu\n", (unsigned long long)c->changed);
    fprintf(
        hf,
        "versions: %llu recorded versions checked in the target (from the %s manifests), %llu lost%s\n",
        (unsigned long long)c->versions_checked, v->versions_from_target ? "target's" : "local",
        (unsigned long long)c->lost_versions,
        v->versions_truncated ? " (stopped at 10000: the check is truncated)" : "");
    if (c->records_without_version)
        fprintf(hf,
                "versions: %llu%s manifest records carry no version id (copies whose reply named no "
                "version): "
                "not checkable\n",
                (unsigned long long)c->records_without_version, v->versions_truncated ? "+" : "");
    fprintf(hf,
            "found: %llu missing, %llu different, %llu lost versions%s%s; %llu extra in the target "
            "(deleted at the source, kept: informational)\n",
            (unsigned long long)c->missing, (unsigned long long)c->different,
            (unsigned long long)c->lost_versions, c->unversioned ? ", target NOT versioned" : "",
            c->bad_shards ? ", shards not ok" : "",
            (unsigned long long)c->extra);
    print_lines(hf, v->first, v->nfirst, bad, "discrepancies (see --json for all)");
    print_lines(hf, v->first_extra, v->nfirst_extra, c->extra, "extra objects");
    print_lines(hf, v->first_error, v->nfirst_error, c->errors, "errors");
    if (exit_code == EXIT_OK)
        fprintf(hf, "verify: ok, the target holds every source object (%.1fs)\n", duration);
    else if (exit_code == EXIT_DISCREPANCY)
        fprintf(hf, "verify: DISCREPANCIES: the target does not hold everything%s (%.1fs)\n",
                v->listing_failed || c->errors ? "; the audit was also incomplete" : "", duration);
    else if (exit_code == EXIT_FAILED)
        fprintf(hf, "verify: FAILED: the audit could not be completed%s%s\n", v->error[0] ? ": " : "",
                v->error);
    else if (exit_code == EXIT_INTERRUPTED)
        fprintf(
            hf,
            "verify: INTERRUPTED: the audit is incomplete; the findings above are those made so far\n");
    fflush(hf);
}

void verify_print_json(struct verify *v, const char *result, int exit_code, const char *versioning,
                       int stored_total)
{
    cJSON *j = verify_json(v, result, exit_code, versioning, stored_total);
    char *t = j ? cJSON_Print(j) : NULL;
    if (t)
        printf("%s\n", t);
    else
        s3_log_user(S3_LOG_ERROR, "out of memory building the JSON report");
    free(t);
    cJSON_Delete(j);
}
