/* Capped growable buffer (see s3/buf.h). Owns: the buffer's memory and its cap. Must not: allocate past the cap,
 * or know what the bytes are. */
#include <stdlib.h>
#include <string.h>
#include "s3/buf.h"

void s3_buf_init(struct s3_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->cap = cap;
}

enum s3_err s3_buf_reserve(struct s3_buf *b, size_t n)
{
    if (n > b->cap || b->len > b->cap - n) return S3_ERR_TOO_LARGE;
    size_t need = b->len + n + 1;
    if (need <= b->alloc) return S3_OK;
    size_t na = b->alloc ? b->alloc : 256;
    while (na < need) na = na > (size_t)-1 / 2 ? need : na * 2;
    if (na > b->cap + 1) na = b->cap + 1 > need ? b->cap + 1 : need;
    char *p = realloc(b->data, na);
    if (!p) return S3_ERR_NOMEM;
    b->data = p;
    b->alloc = na;
    return S3_OK;
}

enum s3_err s3_buf_append(struct s3_buf *b, const void *p, size_t n)
{
    enum s3_err e = s3_buf_reserve(b, n);
    if (e != S3_OK) return e;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return S3_OK;
}

void s3_buf_reset(struct s3_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void s3_buf_free(struct s3_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}

char *s3_buf_steal(struct s3_buf *b, size_t *len)
{
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->alloc = 0;
    return p;
}
