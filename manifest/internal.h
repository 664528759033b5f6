/* Internal to manifest/: helpers its files share. Must not: be included outside manifest/. */
#ifndef MANIFEST_INTERNAL_H
#define MANIFEST_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Formats an error message into err (errlen bytes); err may be NULL. */
__attribute__((format(printf, 3, 4))) static inline void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#endif
