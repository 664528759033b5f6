/* A growable byte buffer with a hard cap (after curl's dynbuf): a server cannot make us allocate
 * without bound. The buffer owns its memory; data is always NUL-terminated for convenience. Must not: allocate
 * past its cap. */
#ifndef S3_BUF_H
#define S3_BUF_H

#include <stddef.h>
#include "s3/error.h"

struct s3_buf {
    char *data;   /* NULL until the first append */
    size_t len;
    size_t alloc;
    size_t cap;   /* maximum len; appends beyond fail with S3_ERR_TOO_LARGE */
};

void s3_buf_init(struct s3_buf *b, size_t cap);
/* Appends n bytes; S3_ERR_TOO_LARGE past the cap (nothing appended), S3_ERR_NOMEM. */
enum s3_err s3_buf_append(struct s3_buf *b, const void *p, size_t n);
/* Ensures room for n more bytes without appending (used to pre-size a body of known length). */
enum s3_err s3_buf_reserve(struct s3_buf *b, size_t n);
void s3_buf_reset(struct s3_buf *b); /* len = 0, memory kept */
void s3_buf_free(struct s3_buf *b);  /* releases memory; the struct may be reused after s3_buf_init */
/* Hands the memory to the caller (who frees it) and empties the buffer. */
char *s3_buf_steal(struct s3_buf *b, size_t *len);

#endif
