/* Log sink, formats (human lines or JSON Lines built with cJSON) and redaction. Must not: print a secret, or
 * decide anything from what is logged. */
#include <cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "s3/log.h"

static enum s3_log_level g_level = S3_LOG_WARN;
static enum s3_log_format g_format = S3_LOG_FORMAT_HUMAN;
static char g_first_error[1024], g_first_detail[1024];
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

void s3_log_set_format(enum s3_log_format format)
{
    g_format = format;
}

enum s3_log_format s3_log_get_format(void)
{
    return g_format;
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

static void first_error_note(const char *msg)
{
    if (g_first_error[0] || !msg[0]) return;
    size_t n = strcspn(msg, "\n");
    if (n >= sizeof g_first_error) n = sizeof g_first_error - 1;
    memcpy(g_first_error, msg, n);
    g_first_error[n] = '\0';
    /* the indented lines after it, joined into one */
    size_t o = 0;
    for (const char *p = msg + n; *p && o + 2 < sizeof g_first_detail;) {
        while (*p == '\n' || *p == ' ' || *p == '\t') p++;
        size_t l = strcspn(p, "\n");
        if (!l) break;
        if (o) g_first_detail[o++] = ' ';
        if (l > sizeof g_first_detail - 1 - o) l = sizeof g_first_detail - 1 - o;
        memcpy(g_first_detail + o, p, l);
        o += l;
        p += l;
    }
    g_first_detail[o] = '\0';
}

const char *s3_log_first_error(void)
{
    return g_first_error[0] ? g_first_error : NULL;
}

const char *s3_log_first_error_detail(void)
{
    return g_first_detail[0] ? g_first_detail : NULL;
}

static const char *const g_names[] = {"error", "warn", "info", "debug", "trace"};

/* One JSON object on one line, written with a single fwrite so lines never interleave. */
static void emit_json(enum s3_log_level level, const char *event, const char *key,
                      const struct s3_log_field *fields, size_t nfields, const char *msg)
{
    static const char *const reserved[] = {"time", "level", "event", "message", "key"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    char when[40] = "", iso[48];
    time_t t = ts.tv_sec;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(iso, sizeof iso, "%s.%03ldZ", when, ts.tv_nsec / 1000000);
    cJSON *j = cJSON_CreateObject();
    if (!j) return;
    cJSON_AddStringToObject(j, "time", iso);
    cJSON_AddStringToObject(j, "level", g_names[level]);
    if (event) cJSON_AddStringToObject(j, "event", event);
    cJSON_AddStringToObject(j, "message", msg);
    char buf[2048];
    if (key) {
        snprintf(buf, sizeof buf, "%s", key);
        s3_log_redact(buf);
        cJSON_AddStringToObject(j, "key", buf);
    }
    for (size_t i = 0; i < nfields; i++) {
        bool clash = false;
        for (size_t r = 0; r < sizeof reserved / sizeof *reserved; r++)
            if (strcmp(fields[i].name, reserved[r]) == 0) clash = true;
        if (clash || cJSON_GetObjectItemCaseSensitive(j, fields[i].name)) continue;
        if (fields[i].str) {
            snprintf(buf, sizeof buf, "%s", fields[i].str);
            s3_log_redact(buf);
            cJSON_AddStringToObject(j, fields[i].name, buf);
        } else {
            cJSON_AddNumberToObject(j, fields[i].name, fields[i].num);
        }
    }
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!line) return;
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the terminator: written by length */
    fwrite(line, 1, n + 1, stderr);
    fflush(stderr);
    free(line);
}

void s3_log_emit(enum s3_log_level level, int always, const char *event, const char *key,
                 const struct s3_log_field *fields, size_t nfields, const char *text)
{
    if (!always && level > g_level) return;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", text);
    s3_log_redact(msg);
    if (level == S3_LOG_ERROR) first_error_note(msg);
    if (g_sink) {
        g_sink(level, msg, g_ud);
        return;
    }
    if (g_format == S3_LOG_FORMAT_JSON) emit_json(level, event, key, fields, nfields, msg);
    else if (always) fprintf(stderr, "replicate: %s%s\n", level == S3_LOG_WARN ? "warning: " : "", msg);
    else fprintf(stderr, "replicate: %s: %s\n", g_names[level], msg);
}

/* Formats the message and emits it. */
__attribute__((format(printf, 7, 0))) static void log_v(enum s3_log_level level, int always, const char *event,
                                                        const char *key, const struct s3_log_field *fields,
                                                        size_t nfields, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    s3_log_emit(level, always, event, key, fields, nfields, msg);
}

void s3_log(enum s3_log_level level, const char *fmt, ...)
{
    if (level > g_level) return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, 0, NULL, NULL, NULL, 0, fmt, ap);
    va_end(ap);
}

void s3_log_user(enum s3_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_v(level, 1, NULL, NULL, NULL, 0, fmt, ap);
    va_end(ap);
}

void s3_log_event(enum s3_log_level level, const char *event, const char *key, const struct s3_log_field *fields,
                  size_t nfields, const char *fmt, ...)
{
    if (level > g_level) return;
    va_list ap;
    va_start(ap, fmt);
    log_v(level, 0, event, key, fields, nfields, fmt, ap);
    va_end(ap);
}
