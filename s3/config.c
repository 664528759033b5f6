/* Endpoint, region and credential resolution following the AWS CLI: explicit options, then the environment,
 * then the profile in the shared credentials and config files (read with a small INI reader for their
 * dialect). Secrets read along the way are wiped before their memory is released. Must not: make a request, or log
 * a secret. */
#include "s3/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define INI_LINE_MAX 16384             /* a session token is a few KiB; a longer line is an error */
#define INI_FILE_MAX (4 * 1024 * 1024) /* these files are tiny; refuse to read a huge one */

/* What one file says about the profile we are looking for. */
struct profile_values {
    bool found; /* the profile's section exists in this file */
    char *access_key;
    char *secret_key;
    char *session_token;
    char *region;
    char *endpoint_url;
    char *s3_endpoint_url;     /* nested "s3 =" block */
    char *s3_addressing_style; /* nested "s3 =" block: path, virtual or auto */
    char *ca_bundle;           /* ca_bundle = PEM file */
    const char *unsupported;   /* a credential source we do not implement (role_arn, ...), or NULL */
};

struct profile_lookup {
    const char *name;
    bool config_file; /* sections are "[profile NAME]" ("[default]" for default) rather than "[NAME]" */
    struct profile_values *pv;
};

/* Called for each section start (key NULL) and each key; parent is the nested block's key ("s3") or NULL.
 * Returns 0, or -1 to stop (out of memory). */
typedef int (*ini_fn)(void *ctx, const char *section, const char *parent, const char *key, const char *value);

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void wipe_free(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* Replace *dst with a copy of v. */
static int set_str(char **dst, const char *v)
{
    char *copy = strdup(v);
    if (!copy) return -1;
    wipe_free(*dst);
    *dst = copy;
    return 0;
}

static void profile_values_free(struct profile_values *pv)
{
    wipe_free(pv->access_key);
    wipe_free(pv->secret_key);
    wipe_free(pv->session_token);
    free(pv->region);
    free(pv->endpoint_url);
    free(pv->s3_endpoint_url);
    free(pv->s3_addressing_style);
    free(pv->ca_bundle);
    memset(pv, 0, sizeof *pv);
}

/* An environment variable, with "set but empty" meaning unset (as the AWS CLI does). */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Split "key <delim> value" at the first delimiter; false if there is none or the key is empty. */
static bool split_kv(char *s, const char *delims, char **key, char **value)
{
    char *d = strpbrk(s, delims);
    if (!d) return false;
    *d = '\0';
    *key = trim(s);
    *value = trim(d + 1);
    return **key != '\0';
}

/* Reads an AWS-style INI file. The dialect is Python configparser's as botocore uses it: full-line comments
 * starting with '#' or ';' (no inline comments: a secret may contain those characters), "key = value" or
 * "key: value", case-sensitive names, and a line indented deeper than the key above it continues that key's
 * value. A key with an empty value followed by such lines is a nested block ("s3 =" then
 * "  addressing_style = path"). Lines that are none of these are ignored.
 * Returns 0 when read, 1 when the file does not exist, -1 on error (message in err). */
static int ini_read(const char *path, ini_fn fn, void *ctx, char *err, size_t errlen)
{
    char line[INI_LINE_MAX];
    char parent[128] = "";
    char *section = NULL;
    int opt_indent = -1; /* indentation of the last key line, -1 before any key in the section */
    bool nested = false; /* the last key had an empty value: deeper lines are its sub-keys */
    size_t total = 0;
    long lineno = 0;
    int rc = -1;

    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR) return 1;
        set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        total += len;
        if (total > INI_FILE_MAX) {
            set_err(err, errlen, "%s is larger than %d bytes; is it the right file?", path, INI_FILE_MAX);
            goto cleanup;
        }
        if (len == sizeof line - 1 && line[len - 1] != '\n' && !feof(f)) {
            set_err(err, errlen, "%s line %ld: line longer than %d bytes", path, lineno, INI_LINE_MAX - 2);
            goto cleanup;
        }
        int indent = (int)strspn(line, " \t");
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';') continue;

        char *key, *value;
        if (indent > 0 && opt_indent >= 0 && indent > opt_indent) {
            /* a continuation line: only nested blocks mean something to us */
            if (nested && section && split_kv(s, "=", &key, &value) &&
                fn(ctx, section, parent, key, value) < 0)
                goto nomem;
            continue;
        }
        if (*s == '[') {
            char *close = strrchr(s, ']');
            if (!close) continue;
            *close = '\0';
            free(section);
            section = strdup(trim(s + 1));
            if (!section) goto nomem;
            opt_indent = -1;
            nested = false;
            if (fn(ctx, section, NULL, NULL, NULL) < 0) goto nomem;
            continue;
        }
        if (!section || !split_kv(s, "=:", &key, &value)) continue;
        opt_indent = indent;
        nested = *value == '\0' && strlen(key) < sizeof parent;
        if (nested) strcpy(parent, key);
        if (fn(ctx, section, NULL, key, value) < 0) goto nomem;
    }
    if (ferror(f)) {
        set_err(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto cleanup;
    }
    rc = 0;
    goto cleanup;
nomem:
    set_err(err, errlen, "out of memory reading %s", path);
cleanup:
    explicit_bzero(line, sizeof line);
    free(section);
    fclose(f);
    return rc;
}

static bool section_is_profile(const char *section, const char *name, bool config_file)
{
    if (!config_file) return strcmp(section, name) == 0;
    if (strcmp(name, "default") == 0 && strcmp(section, "default") == 0) return true;
    if (strncmp(section, "profile", 7) != 0 || !is_blank(section[7])) return false;
    const char *p = section + 7;
    while (is_blank(*p))
        p++;
    return strcmp(p, name) == 0;
}

static int profile_collect(void *ctx, const char *section, const char *parent, const char *key,
                           const char *value)
{
    /* Credential sources the AWS CLI supports and we do not: named in the error instead of "no keys". */
    static const char *const unsupported[] = {
        "role_arn", "credential_process", "sso_session", "sso_start_url", "web_identity_token_file",
    };
    struct profile_lookup *lk = ctx;
    struct profile_values *pv = lk->pv;

    if (!section_is_profile(section, lk->name, lk->config_file)) return 0;
    if (!key) {
        pv->found = true;
        return 0;
    }
    if (parent) {
        if (strcmp(parent, "s3") != 0) return 0;
        if (strcmp(key, "endpoint_url") == 0) return set_str(&pv->s3_endpoint_url, value);
        if (strcmp(key, "addressing_style") == 0) return set_str(&pv->s3_addressing_style, value);
        return 0;
    }
    if (*value == '\0') return 0;
    if (strcmp(key, "aws_access_key_id") == 0) return set_str(&pv->access_key, value);
    if (strcmp(key, "aws_secret_access_key") == 0) return set_str(&pv->secret_key, value);
    if (strcmp(key, "aws_session_token") == 0) return set_str(&pv->session_token, value);
    if (strcmp(key, "region") == 0) return set_str(&pv->region, value);
    if (strcmp(key, "endpoint_url") == 0) return set_str(&pv->endpoint_url, value);
    if (strcmp(key, "ca_bundle") == 0) return set_str(&pv->ca_bundle, value);
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        if (strcmp(key, unsupported[i]) == 0) pv->unsupported = unsupported[i];
    return 0;
}

/* The file named by env_name (a leading "~/" expanded), else ~/.aws/<base>. *readable is false when there is
 * no home directory to look in; the returned path (malloc'd, NULL when out of memory) is still good for
 * messages. */
static char *aws_file_path(const char *env_name, const char *base, bool *readable)
{
    const char *v = env(env_name);
    const char *home = env("HOME");
    char *path = NULL;
    *readable = true;
    if (v && strncmp(v, "~/", 2) == 0 && home) {
        if (asprintf(&path, "%s%s", home, v + 1) < 0) path = NULL;
    } else if (v) {
        path = strdup(v);
    } else if (home) {
        if (asprintf(&path, "%s/.aws/%s", home, base) < 0) path = NULL;
    } else {
        *readable = false;
        if (asprintf(&path, "~/.aws/%s", base) < 0) path = NULL;
    }
    return path;
}

static int profile_load(const char *path, bool readable, const char *name, bool config_file,
                        struct profile_values *pv, char *err, size_t errlen)
{
    if (!readable) return 0;
    struct profile_lookup lk = {.name = name, .config_file = config_file, .pv = pv};
    return ini_read(path, profile_collect, &lk, err, errlen) < 0 ? -1 : 0;
}

static bool has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

/* Region names go into hostnames and the SigV4 scope. */
static bool region_valid(const char *r)
{
    size_t n = strlen(r);
    return n > 0 && n <= 64 &&
           strspn(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

static bool host_is_aws(const char *host)
{
    static const char *const suffixes[] = {".amazonaws.com", ".amazonaws.com.cn"};
    size_t hl = strlen(host);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t sl = strlen(suffixes[i]);
        if (hl > sl && strcasecmp(host + hl - sl, suffixes[i]) == 0) return true;
    }
    return false;
}

/* "scheme://host[:port]" from what the user wrote ("host:port" means https). Uses curl's URL parser, so we
 * accept exactly what curl will later connect to. On error writes a message; the input is echoed only when
 * it cannot hold a password. */
static int endpoint_normalize(const char *in, const char *source, char **out, bool *is_aws, char *err,
                              size_t errlen)
{
    CURLU *u = NULL;
    char *input = NULL, *url = NULL, *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *extra = NULL;
    int rc = -1;

    *out = NULL;
    if (strchr(in, '@')) {
        set_err(err, errlen,
                "endpoint%s must not contain user:password@ (credentials come from AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY or a profile)",
                source);
        return -1;
    }
    input = strdup(in);
    if (!input) goto nomem;
    char *s = trim(input);
    if (*s == '\0' || has_control_chars(s)) {
        set_err(err, errlen, "endpoint%s is empty or contains control characters", source);
        goto cleanup;
    }
    const char *sep = strstr(s, "://");
    if (sep ? asprintf(&url, "%s", s) < 0 : asprintf(&url, "https://%s", s) < 0) {
        url = NULL;
        goto nomem;
    }
    if (sep && sep[3] == '/') {
        set_err(err, errlen, "endpoint \"%s\"%s has no host", s, source);
        goto cleanup;
    }
    u = curl_url();
    if (!u) goto nomem;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc != CURLUE_OK) {
        set_err(err, errlen, "endpoint \"%s\"%s is not a valid URL (%s); expected http[s]://host[:port]", s,
                source, curl_url_strerror(uc));
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
        set_err(err, errlen, "endpoint \"%s\"%s: unsupported scheme \"%s\", use http:// or https://", s,
                source, scheme ? scheme : "");
        goto cleanup;
    }
    bool https = strcasecmp(scheme, "https") == 0;
    if (curl_url_get(u, CURLUPART_USER, &extra, 0) == CURLUE_OK) {
        set_err(err, errlen, "endpoint%s must not contain user information", source);
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK || strcmp(path, "/") != 0 ||
        curl_url_get(u, CURLUPART_QUERY, &extra, 0) != CURLUE_NO_QUERY ||
        curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) != CURLUE_NO_FRAGMENT || strpbrk(s, "?#")) {
        set_err(err, errlen,
                "endpoint \"%s\"%s must be just scheme://host[:port], without a path, query or fragment "
                "(the bucket goes in the s3:// URL)",
                s, source);
        goto cleanup;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || *host == '\0') {
        set_err(err, errlen, "endpoint \"%s\"%s has no host", s, source);
        goto cleanup;
    }
    for (char *p = host; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    uc = curl_url_get(u, CURLUPART_PORT, &port, 0);
    if (uc == CURLUE_OK && strcmp(port, "0") == 0) {
        set_err(err, errlen, "endpoint \"%s\"%s: port 0 is not valid", s, source);
        goto cleanup;
    }
    /* curl leaves the default port out of the Host header, so the canonical form must too (SigV4 signs it) */
    bool keep_port = uc == CURLUE_OK && strcmp(port, https ? "443" : "80") != 0;
    if (asprintf(out, "%s://%s%s%s", https ? "https" : "http", host, keep_port ? ":" : "",
                 keep_port ? port : "") < 0) {
        *out = NULL;
        goto nomem;
    }
    *is_aws = host_is_aws(host);
    rc = 0;
    goto cleanup;
nomem:
    set_err(err, errlen, "out of memory");
cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(extra);
    curl_url_cleanup(u);
    free(url);
    free(input);
    return rc;
}

/* Why the profile gave no usable keys, for the error message. */
static void describe_missing_keys(char *buf, size_t len, const char *name, bool found,
                                  const struct profile_values *cred, const struct profile_values *conf,
                                  const char *cred_path, const char *conf_path)
{
    const struct profile_values *partial = (!cred->access_key != !cred->secret_key)   ? cred
                                           : (!conf->access_key != !conf->secret_key) ? conf
                                                                                      : NULL;
    if (!found) {
        snprintf(buf, len, "profile \"%s\" not found in %s or %s", name, cred_path, conf_path);
    } else if (partial) {
        snprintf(buf, len, "profile \"%s\" in %s has %s but no %s", name,
                 partial == cred ? cred_path : conf_path,
                 partial->access_key ? "aws_access_key_id" : "aws_secret_access_key",
                 partial->access_key ? "aws_secret_access_key" : "aws_access_key_id");
    } else if (cred->unsupported || conf->unsupported) {
        snprintf(buf, len, "profile \"%s\" uses %s, which replicate does not support", name,
                 cred->unsupported ? cred->unsupported : conf->unsupported);
    } else {
        snprintf(buf, len, "profile \"%s\" has no aws_access_key_id and aws_secret_access_key in %s or %s",
                 name, cred_path, conf_path);
    }
}

/* Picks the access key, secret and token: the environment (only when no profile was named on the command
 * line), else the credentials file's profile, else the config file's. Pointers borrow from env or cred/conf.
 */
static int pick_credentials(bool explicit_profile, const char *name, const struct profile_values *cred,
                            const struct profile_values *conf, const char *cred_path, const char *conf_path,
                            const char **ak, const char **sk, const char **token, char *err, size_t errlen)
{
    const char *env_ak = env("AWS_ACCESS_KEY_ID");
    const char *env_sk = env("AWS_SECRET_ACCESS_KEY");

    if (!explicit_profile && (env_ak || env_sk)) {
        if (!env_ak || !env_sk) {
            set_err(err, errlen, "%s is set but %s is not",
                    env_ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                    env_ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
            return -1;
        }
        *ak = env_ak;
        *sk = env_sk;
        *token = env("AWS_SESSION_TOKEN");
        if (!*token) *token = env("AWS_SECURITY_TOKEN"); /* the older name, still honoured by the CLI */
        return 0;
    }
    /* Like botocore's providers: the credentials file if it has keys for the profile, else the config file;
     * a half-filled pair is reported rather than silently skipped. */
    const struct profile_values *src = (cred->access_key || cred->secret_key)   ? cred
                                       : (conf->access_key || conf->secret_key) ? conf
                                                                                : NULL;
    if (src && src->access_key && src->secret_key) {
        *ak = src->access_key;
        *sk = src->secret_key;
        *token = src->session_token;
        return 0;
    }
    char why[1024];
    describe_missing_keys(why, sizeof why, name, cred->found || conf->found, cred, conf, cred_path,
                          conf_path);
    if (explicit_profile)
        set_err(err, errlen,
                "no credentials: %s (add aws_access_key_id and aws_secret_access_key to [%s] in %s)", why,
                name, cred_path);
    else
        set_err(err, errlen,
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give a profile with "
                "aws_access_key_id and aws_secret_access_key in %s (%s)",
                cred_path, why);
    return -1;
}

/* Region: --region, AWS_REGION, AWS_DEFAULT_REGION, the profile, us-east-1. */
static int resolve_region(const struct s3_config_request *req, const struct profile_values *cred,
                          const struct profile_values *conf, const char **out, char *err, size_t errlen)
{
    const char *region = (req->region && *req->region) ? req->region : NULL;
    if (!region) region = env("AWS_REGION");
    if (!region) region = env("AWS_DEFAULT_REGION");
    if (!region) region = cred->region ? cred->region : conf->region;
    if (!region) region = "us-east-1";
    if (!region_valid(region)) {
        set_err(err, errlen, "invalid region \"%s\": use letters, digits, '-', '_' and '.' only",
                has_control_chars(region) ? "?" : region);
        return -1;
    }
    *out = region;
    return 0;
}

/* Endpoint: --endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's s3 block, the profile, else AWS's
 * for the region. Addressing: the request, the profile's s3 addressing_style, else path-style for non-AWS
 * endpoints (S3-compatible servers rarely have wildcard DNS) and virtual-hosted for AWS. */
static int resolve_endpoint(const struct s3_config_request *req, const struct profile_values *cred,
                            const struct profile_values *conf, const char *name, const char *region,
                            struct s3_config *out, char *err, size_t errlen)
{
    char ep_source[256] = "";
    const char *ep = (req->endpoint && *req->endpoint) ? req->endpoint : NULL;
    if (!ep && (ep = env("AWS_ENDPOINT_URL_S3")))
        snprintf(ep_source, sizeof ep_source, " (from AWS_ENDPOINT_URL_S3)");
    if (!ep && (ep = env("AWS_ENDPOINT_URL")))
        snprintf(ep_source, sizeof ep_source, " (from AWS_ENDPOINT_URL)");
    if (!ep && (ep = cred->s3_endpoint_url ? cred->s3_endpoint_url : conf->s3_endpoint_url))
        snprintf(ep_source, sizeof ep_source, " (s3 endpoint_url of profile \"%s\")", name);
    if (!ep && (ep = cred->endpoint_url ? cred->endpoint_url : conf->endpoint_url))
        snprintf(ep_source, sizeof ep_source, " (endpoint_url of profile \"%s\")", name);
    bool is_aws = true;
    if (ep) {
        if (endpoint_normalize(ep, ep_source, &out->endpoint, &is_aws, err, errlen) < 0) return -1;
    } else if (asprintf(&out->endpoint, "https://s3.%s.amazonaws.com%s", region,
                        strncmp(region, "cn-", 3) == 0 ? ".cn" : "") < 0) {
        out->endpoint = NULL;
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (req->path_style == 0 || req->path_style == 1) {
        out->path_style = req->path_style == 1;
        return 0;
    }
    const char *style = cred->s3_addressing_style ? cred->s3_addressing_style : conf->s3_addressing_style;
    if (style && strcmp(style, "path") == 0) {
        out->path_style = true;
    } else if (style && strcmp(style, "virtual") == 0) {
        out->path_style = false;
    } else if (style && strcmp(style, "auto") != 0) {
        set_err(err, errlen, "profile \"%s\": s3 addressing_style must be path, virtual or auto, not \"%s\"", name,
                has_control_chars(style) ? "?" : style);
        return -1;
    } else {
        out->path_style = !is_aws;
    }
    return 0;
}

/* CA bundle: the side's option, AWS_CA_BUNDLE, the profile's ca_bundle (the AWS CLI's order). A file we cannot
 * read is an error now, not a TLS failure on the first request. */
static int resolve_ca(const struct s3_config_request *req, const struct profile_values *cred,
                      const struct profile_values *conf, const char *name, struct s3_config *out, char *err,
                      size_t errlen)
{
    const char *ca = (req->ca_bundle && *req->ca_bundle) ? req->ca_bundle : NULL;
    char ca_src[300];
    snprintf(ca_src, sizeof ca_src, "%s", req->ca_option ? req->ca_option : "the CA bundle option");
    if (!ca && (ca = env("AWS_CA_BUNDLE"))) snprintf(ca_src, sizeof ca_src, "AWS_CA_BUNDLE");
    if (!ca && (ca = cred->ca_bundle ? cred->ca_bundle : conf->ca_bundle))
        snprintf(ca_src, sizeof ca_src, "ca_bundle of profile \"%s\"", name);
    if (!ca) return 0;
    char *expanded = NULL;
    const char *home = env("HOME");
    if (strncmp(ca, "~/", 2) == 0 && home && asprintf(&expanded, "%s%s", home, ca + 1) < 0) expanded = NULL;
    const char *path = expanded ? expanded : ca;
    FILE *cf = fopen(path, "r");
    if (!cf) {
        set_err(err, errlen, "cannot read the CA bundle %s (from %s): %s", path, ca_src, strerror(errno));
        free(expanded);
        return -1;
    }
    fclose(cf);
    out->ca_bundle = expanded ? expanded : strdup(ca);
    out->ca_source = strdup(ca_src);
    if (!out->ca_bundle || !out->ca_source) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int s3_config_resolve(const struct s3_config_request *req, struct s3_config *out, char *err, size_t errlen)
{
    static const struct s3_config_request no_request = {.path_style = -1};
    struct profile_values cred = {0}, conf = {0};
    char *cred_path = NULL, *conf_path = NULL;
    int rc = -1;

    if (err && errlen) err[0] = '\0';
    if (!out) {
        set_err(err, errlen, "internal error: no configuration to fill");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (!req) req = &no_request;

    /* Profile: --profile, else AWS_PROFILE, else "default". Only the first counts as explicit (it beats
     * environment keys); a named profile must exist, as with the AWS CLI. */
    bool explicit_profile = req->profile && *req->profile;
    const char *env_profile = env("AWS_PROFILE");
    const char *name = explicit_profile ? req->profile : env_profile ? env_profile : "default";
    bool cred_readable, conf_readable;
    cred_path = aws_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", &cred_readable);
    conf_path = aws_file_path("AWS_CONFIG_FILE", "config", &conf_readable);
    if (!cred_path || !conf_path) {
        set_err(err, errlen, "out of memory");
        goto cleanup;
    }
    if (profile_load(cred_path, cred_readable, name, false, &cred, err, errlen) < 0 ||
        profile_load(conf_path, conf_readable, name, true, &conf, err, errlen) < 0)
        goto cleanup;
    bool env_keys = env("AWS_ACCESS_KEY_ID") || env("AWS_SECRET_ACCESS_KEY");
    if (!cred.found && !conf.found &&
        (explicit_profile || (env_profile && !(env_keys && strcmp(name, "default") == 0)))) {
        set_err(err, errlen, "profile \"%s\"%s not found in %s or %s", name,
                explicit_profile ? "" : " (from AWS_PROFILE)", cred_path, conf_path);
        goto cleanup;
    }

    const char *ak = NULL, *sk = NULL, *token = NULL;
    if (pick_credentials(explicit_profile, name, &cred, &conf, cred_path, conf_path, &ak, &sk, &token, err,
                         errlen) < 0)
        goto cleanup;
    if (has_control_chars(ak) || has_control_chars(sk) || (token && has_control_chars(token))) {
        set_err(err, errlen, "the access key, secret key or session token %s contains control characters",
                (!explicit_profile && env_keys) ? "in the environment" : "in the profile");
        goto cleanup;
    }

    const char *region = NULL;
    if (resolve_region(req, &cred, &conf, &region, err, errlen) < 0) goto cleanup;

    if (resolve_endpoint(req, &cred, &conf, name, region, out, err, errlen) < 0) goto cleanup;

    if (resolve_ca(req, &cred, &conf, name, out, err, errlen) < 0) goto cleanup;

    out->insecure = req->insecure;
    out->region = strdup(region);
    out->profile = strdup(name);
    out->creds.access_key = strdup(ak);
    out->creds.secret_key = strdup(sk);
    out->creds.session_token = token ? strdup(token) : NULL;
    if (!out->region || !out->profile || !out->creds.access_key || !out->creds.secret_key ||
        (token && !out->creds.session_token))
        set_err(err, errlen, "out of memory");
    else
        rc = 0;
cleanup:
    profile_values_free(&cred);
    profile_values_free(&conf);
    free(cred_path);
    free(conf_path);
    if (rc != 0) s3_config_free(out);
    return rc;
}

void s3_config_free(struct s3_config *c)
{
    if (!c) return;
    free(c->endpoint);
    free(c->region);
    free(c->profile);
    free(c->ca_bundle);
    free(c->ca_source);
    wipe_free(c->creds.access_key);
    wipe_free(c->creds.secret_key);
    wipe_free(c->creds.session_token);
    explicit_bzero(c, sizeof *c);
}

bool s3_config_same_account(const struct s3_config *a, const struct s3_config *b)
{
    if (!a || !b || !a->endpoint || !b->endpoint || !a->region || !b->region || !a->creds.access_key ||
        !b->creds.access_key)
        return false;
    /* endpoints are normalized (lowercase scheme and host, no default port), so a plain comparison works */
    return strcasecmp(a->endpoint, b->endpoint) == 0 && strcmp(a->region, b->region) == 0 &&
           strcmp(a->creds.access_key, b->creds.access_key) == 0;
}
