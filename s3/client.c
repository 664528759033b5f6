/* Clients and readers: one endpoint's configuration, address, clock and adaptive concurrency (a reader is the
 * read-only face of a client); responses and their headers. See s3/client.h and s3/client_internal.h. Must not:
 * sign, retry or run transfers itself (s3/request.c, s3/transfer.c, s3/loop.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "s3/client_internal.h"
#include "s3/log.h"

/* ---- clients ---- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int copy_config(struct s3_config *dst, const struct s3_config *src)
{
    memset(dst, 0, sizeof *dst);
    dst->endpoint = xstrdup(src->endpoint);
    dst->region = xstrdup(src->region ? src->region : "us-east-1");
    dst->path_style = src->path_style;
    dst->insecure = src->insecure;
    dst->ca_bundle = xstrdup(src->ca_bundle);
    dst->ca_source = xstrdup(src->ca_source);
    if ((src->ca_bundle && !dst->ca_bundle) || (src->ca_source && !dst->ca_source)) return -1;
    dst->profile = xstrdup(src->profile);
    dst->creds.access_key = xstrdup(src->creds.access_key);
    dst->creds.secret_key = xstrdup(src->creds.secret_key);
    dst->creds.session_token = xstrdup(src->creds.session_token);
    if (!dst->endpoint || !dst->region || !dst->creds.access_key || !dst->creds.secret_key) return -1;
    return 0;
}

/* The loop's clock of endpoint base, made on first use; NULL when out of memory. */
static struct s3_clock *loop_clock(struct s3_loop *loop, const char *base)
{
    for (struct s3_clock *k = loop->clocks; k; k = k->next)
        if (strcmp(k->base, base) == 0) return k;
    struct s3_clock *k = calloc(1, sizeof *k);
    if (!k || !(k->base = strdup(base))) {
        free(k);
        return NULL;
    }
    k->next = loop->clocks;
    loop->clocks = k;
    return k;
}

static struct s3_client *client_new(struct s3_loop *loop, const struct s3_config *cfg, bool read_only,
                                    char *err, size_t errlen)
{
    struct s3_client *c = calloc(1, sizeof *c);
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL;
    if (!c) goto error_clean_up;
    c->loop = loop;
    c->read_only = read_only;
    c->reader.client = c;
    if (!cfg->endpoint || !cfg->creds.access_key || !cfg->creds.secret_key) {
        snprintf(err, errlen, "incomplete S3 configuration (endpoint and credentials are required)");
        goto error_clean_up;
    }
    if (copy_config(&c->cfg, cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        goto error_clean_up;
    }
    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, cfg->endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(err, errlen, "cannot parse endpoint URL \"%s\"", cfg->endpoint);
        goto error_clean_up;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    size_t n = strlen(host) + (port ? strlen(port) + 1 : 0) + 1;
    c->host = malloc(n);
    c->scheme = strdup(scheme);
    if (!c->host || !c->scheme) goto error_clean_up;
    if (port) snprintf(c->host, n, "%s:%s", host, port);
    else snprintf(c->host, n, "%s", host);
    if (asprintf(&c->base, "%s://%s", scheme, c->host) < 0) {
        c->base = NULL;
        goto error_clean_up;
    }
    if (!(c->clock = loop_clock(loop, c->base))) goto error_clean_up;
    s3_log_add_secret(c->cfg.creds.secret_key);
    s3_log_add_secret(c->cfg.creds.session_token);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return c;

error_clean_up:
    if (err && errlen && !err[0]) snprintf(err, errlen, "out of memory");
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    s3_client_free(c);
    return NULL;
}

struct s3_client *s3_client_new(struct s3_loop *loop, const struct s3_config *cfg, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    return client_new(loop, cfg, false, err, errlen);
}

void s3_client_free(struct s3_client *c)
{
    if (!c) return;
    s3_config_free(&c->cfg);
    free(c->base);
    free(c->scheme);
    free(c->host);
    free(c);
}

struct s3_reader *s3_client_reader(struct s3_client *c)
{
    return &c->reader;
}

struct s3_reader *s3_reader_open(struct s3_loop *loop, const struct s3_config *cfg, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    struct s3_client *c = client_new(loop, cfg, true, err, errlen);
    return c ? &c->reader : NULL;
}

void s3_reader_close(struct s3_reader *r)
{
    if (r && r->client->read_only) s3_client_free(r->client);
}

const struct s3_config *s3_reader_config(const struct s3_reader *r)
{
    return &r->client->cfg;
}

struct s3_loop *s3_reader_loop(const struct s3_reader *r)
{
    return r->client->loop;
}

void s3_reader_adapt(struct s3_reader *r, int ceiling)
{
    s3_aimd_init(&r->client->aimd, ceiling);
}

int s3_reader_concurrency(const struct s3_reader *r)
{
    return r ? s3_aimd_limit(&r->client->aimd) : INT_MAX;
}

const struct s3_aimd *s3_reader_aimd(const struct s3_reader *r)
{
    return &r->client->aimd;
}


/* ---- responses ---- */

const char *s3_response_header(const struct s3_response *r, const char *name)
{
    for (size_t i = 0; r && i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

char *s3_response_etag(const struct s3_response *r)
{
    const char *v = s3_response_header(r, "etag");
    if (!v) return NULL;
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') return strndup(v + 1, n - 2);
    return strdup(v);
}

void s3i_kv_free(struct s3_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

void s3_response_free(struct s3_response *r)
{
    if (!r) return;
    free(r->body);
    s3_error_info_free(&r->s3err);
    s3i_kv_free(r->headers, r->nheaders);
    free(r);
}

char *s3_object_url(const char *bucket, const char *key)
{
    char *s = NULL;
    if (asprintf(&s, "s3://%s/%s", bucket ? bucket : "", key ? key : "") < 0) return NULL;
    return s;
}


time_t s3_client_time(const struct s3_client *c)
{
    return time(NULL) + (time_t)c->clock->offset;
}

time_t s3_reader_time(const struct s3_reader *r)
{
    return s3_client_time(r->client);
}
