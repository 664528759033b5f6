/* Human output helpers: where human lines go, and times, ages and sizes formatted (see output.h). Must not: write
 * the --json document (each mode does), or log. */
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include "replicator/output.h"
#include "s3/log.h"

FILE *rep_human(const struct rep_options *o)
{
    if (o->quiet) return NULL;
    if (o->json && o->log_json) return NULL; /* stderr carries JSON lines only; the summary has the details */
    return o->json ? stderr : stdout;
}

void rep_say(const struct rep_options *o, const char *fmt, ...)
{
    va_list ap;
    if (!o->quiet && o->json && o->log_json) { /* a JSON log line instead of the human one on stderr */
        char msg[2048];
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        size_t n = strlen(msg);
        while (n && msg[n - 1] == '\n') msg[--n] = '\0';
        s3_log_emit(S3_LOG_INFO, 1, "output", NULL, NULL, 0, msg);
        return;
    }
    FILE *f = rep_human(o);
    if (!f) return;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fflush(f);
}

void rep_fmt_bytes(uint64_t b, char *out, size_t n)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) v /= 1024, i++;
    if (i == 0) snprintf(out, n, "%llu B", (unsigned long long)b);
    else snprintf(out, n, "%.1f %s", v, u[i]);
}

/* Unix seconds as "2026-11-26T16:02:01Z" (iso) or "2026-11-26 16:02:01 UTC". */
void rep_fmt_time(int64_t t, bool iso, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    size_t w = 0;
    if (gmtime_r(&tt, &tm))
        w = iso ? strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm)
                : strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (!w) snprintf(out, n, "%lld", (long long)t);
}

void rep_fmt_age(double secs, char *out, size_t n)
{
    if (secs < -5)
        snprintf(out, n, "%.0f seconds in the future: check the clocks", -secs);
    else if (secs < 120)
        snprintf(out, n, "%.0f seconds ago", secs < 0 ? 0 : secs);
    else if (secs < 7200)
        snprintf(out, n, "%.0f minutes ago", secs / 60);
    else if (secs < 3 * 86400)
        snprintf(out, n, "%.1f hours ago", secs / 3600);
    else
        snprintf(out, n, "%.1f days (%.0f hours) ago", secs / 86400, secs / 3600);
}

const char *rep_exit_meaning(int code)
{
    switch (code) {
    case EXIT_OK: return "ok";
    case EXIT_FAILED: return "the run failed, or objects failed after retries";
    case EXIT_USAGE: return "usage or configuration error";
    case EXIT_REFUSED: return "refused for safety, nothing written";
    case EXIT_NOT_CONVERGED: return "did not converge within --max-passes";
    case EXIT_DISCREPANCY: return "discrepancies found";
    case EXIT_STALE: return "the last successful run or drill is too old, or missing";
    case EXIT_INTERRUPTED: return "interrupted by a signal";
    default: return "unknown exit code";
    }
}

void rep_json_add_numbers(cJSON *j, const struct rep_json_number *f, size_t n)
{
    for (size_t i = 0; i < n; i++) cJSON_AddNumberToObject(j, f[i].name, f[i].value);
}
