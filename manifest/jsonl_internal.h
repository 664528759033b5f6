/* Internal to the manifest's JSON Lines format, shared by its writer (manifest/jsonl_write.c) and its reader
 * (manifest/jsonl_read.c): the line cap and the field rules, so that what one writes the other accepts.
 * Must not: be included outside those two files. */
#ifndef MANIFEST_JSONL_INTERNAL_H
#define MANIFEST_JSONL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "manifest/internal.h"

/* Longest line (without its '\n') the reader accepts and the writer will produce. */
#define MANIFEST_LINE_MAX 65536
/* Integers up to 2^53 fit a double exactly, so the reader accepts them. But cJSON 1.7.15 prints a number with
 * 15 significant digits whenever that reads back within a relative DBL_EPSILON, so integers of 16 digits may
 * come back a few units off: the writer refuses object sizes that large (S3 objects stop at 5 TiB, 13 digits)
 * and accepts run counters up to 2^53 knowing they may be rounded by a few units past 10^15. */
#define EXACT_INT_MAX 9007199254740992.0
#define PRINT_EXACT_MAX 999999999999999ULL

/* ---- field rules shared by writer and reader, so what one writes the other accepts ---- */

static inline bool u64_ok(uint64_t v)
{
    return v <= (uint64_t)EXACT_INT_MAX;
}

static inline bool i64_ok(int64_t v)
{
    return v >= -(int64_t)EXACT_INT_MAX && v <= (int64_t)EXACT_INT_MAX;
}

static inline bool key_ok(const char *key)
{
    return key && key[0] != '\0'; /* S3 keys are at least one byte */
}

/* A checksum is both fields or neither; the algorithm a short name of capitals and digits, the value printable
 * ASCII without spaces (base64, maybe "-N"): what S3 sends, and safe to print in a report. */
static inline bool checksum_ok(const char *alg, const char *value)
{
    if (!alg && !value) return true;
    if (!alg || !value || !alg[0] || !value[0] || strlen(alg) > 16 || strlen(value) > 64) return false;
    for (const char *p = alg; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))) return false;
    for (const char *p = value; *p; p++)
        if (*p <= ' ' || *p > '~') return false;
    return true;
}

#endif
