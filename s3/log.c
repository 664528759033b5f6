/* Log sink and redaction. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "s3/log.h"

static enum s3_log_level g_level = S3_LOG_WARN;
static s3_log_sink g_sink;
static void *g_ud;
#define MAX_SECRETS 8
static char *g_secrets[MAX_SECRETS];

void s3_log_set(enum s3_log_level level, s3_log_sink sink, void *ud)
{
    g_level = level;
    g_sink = sink;
    g_ud = ud;
}

int s3_log_enabled(enum s3_log_level level)
{
    return level <= g_level;
}

void s3_log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 8) return; /* shorter values would blank ordinary words */
    for (int i = 0; i < MAX_SECRETS; i++) {
        if (g_secrets[i] && strcmp(g_secrets[i], secret) == 0) return;
        if (!g_secrets[i]) {
            g_secrets[i] = strdup(secret);
            return;
        }
    }
}

static void redact_after(char *s, const char *marker, const char *stops)
{
    size_t ml = strlen(marker);
    for (char *p = strstr(s, marker); p; p = strstr(p, marker)) {
        char *v = p + ml;
        size_t n = strcspn(v, stops);
        static const char red[] = "[redacted]";
        if (n >= sizeof red - 1) {
            memcpy(v, red, sizeof red - 1);
            memmove(v + sizeof red - 1, v + n, strlen(v + n) + 1);
        } else {
            memset(v, '*', n);
        }
        p = v;
    }
}

void s3_log_redact(char *s)
{
    redact_after(s, "Signature=", " ,&\"'\r\n");
    redact_after(s, "X-Amz-Security-Token=", " ,&\"'\r\n");
    redact_after(s, "x-amz-security-token:", "\r\n");
    redact_after(s, "Credential=", " ,&\"'\r\n");
    for (int i = 0; i < MAX_SECRETS && g_secrets[i]; i++) {
        size_t n = strlen(g_secrets[i]);
        for (char *p = strstr(s, g_secrets[i]); p; p = strstr(p, g_secrets[i])) memset(p, '*', n);
    }
}

void s3_log(enum s3_log_level level, const char *fmt, ...)
{
    if (level > g_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s3_log_redact(msg);
    if (g_sink) {
        g_sink(level, msg, g_ud);
        return;
    }
    static const char *names[] = {"error", "warn", "info", "debug", "trace"};
    fprintf(stderr, "replicate: %s: %s\n", names[level], msg);
}
