/* Object Lock retention of what a backup writes: the DURATION grammar and the retain-until date. Must not: make a
 * request (the target check is in target.c, the writes in copy.c and run.c). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "replicator/retain.h"

double retain_parse_duration(const char *s)
{
    static const struct {
        char unit;
        double seconds;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400.0}, {'y', 365 * 86400.0}};
    if (!s || !isdigit((unsigned char)s[0])) return -1; /* no sign, no space, no "inf" */
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || end[0] == '\0' || end[1] != '\0') return -1;
    for (const char *p = s; p < end; p++) /* digits and one '.': strtod would take "1e3" and hex too */
        if (!isdigit((unsigned char)*p) && *p != '.') return -1;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (end[0] != units[i].unit) continue;
        v *= units[i].seconds;
        return v >= RETAIN_MIN_SECONDS && v <= RETAIN_MAX_SECONDS ? v : -1;
    }
    return -1;
}

int retain_until(double now, double seconds, char out[RETAIN_UNTIL_LEN])
{
    out[0] = '\0';
    double t = ceil(now + seconds);
    if (!(t > 0) || t > 253402300799.0) return -1; /* after 9999-12-31T23:59:59Z */
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, RETAIN_UNTIL_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return -1;
    return 0;
}

const char *retain_mode(const struct rep_options *o)
{
    return o->retain_compliance ? "COMPLIANCE" : "GOVERNANCE";
}

size_t retain_headers(const struct rep_options *o, struct s3_header *h, char until[RETAIN_UNTIL_LEN])
{
    if (!(o->retain > 0)) return 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* a clock past year 9999 leaves the date empty: the server then refuses the write, which fails loudly,
     * rather than a version going unprotected */
    retain_until((double)ts.tv_sec + ts.tv_nsec / 1e9, o->retain, until);
    h[0] = (struct s3_header){"x-amz-object-lock-mode", retain_mode(o)};
    h[1] = (struct s3_header){"x-amz-object-lock-retain-until-date", until};
    return 2;
}
