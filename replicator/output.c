/* Human output helpers. */
#include <stdarg.h>
#include "replicator/output.h"

FILE *rep_human(const struct rep_options *o)
{
    if (o->quiet) return NULL;
    return o->json ? stderr : stdout;
}

void rep_say(const struct rep_options *o, const char *fmt, ...)
{
    FILE *f = rep_human(o);
    if (!f) return;
    va_list ap;
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
