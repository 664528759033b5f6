/* Endpoint and credential resolution the AWS way: explicit options, then environment, then profiles in
 * ~/.aws/credentials and ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE honoured). Must not: make a
 * request (only the environment and those two files are read). */
#ifndef S3_CONFIG_H
#define S3_CONFIG_H

#include <stdbool.h>
#include "s3/sigv4.h"

struct s3_config {
    char *endpoint;   /* scheme://host[:port] with no trailing slash, e.g. "http://127.0.0.1:7480";
                         default "https://s3.<region>.amazonaws.com" */
    char *region;     /* default "us-east-1" */
    bool path_style;  /* path-style addressing (default true when an endpoint was given explicitly or
                         from AWS_ENDPOINT_URL / profile endpoint_url, false for AWS) */
    bool insecure;    /* skip TLS verification */
    char *ca_bundle;  /* PEM file of the CAs to trust for https (CURLOPT_CAINFO), or NULL: the system's */
    char *ca_source;  /* where ca_bundle came from, for messages ("--target-ca-bundle", "AWS_CA_BUNDLE", ...) */
    struct s3_credentials creds;
    char *profile;    /* the profile name used, for messages */
};

/* What the user asked for on one side; every field may be NULL / -1 meaning "not given". */
struct s3_config_request {
    const char *profile;      /* --source-profile; else AWS_PROFILE; else "default" */
    const char *endpoint;     /* --source-endpoint; else AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, profile endpoint_url */
    const char *region;       /* --source-region; else AWS_REGION, AWS_DEFAULT_REGION, profile region */
    int path_style;           /* 1 path, 0 virtual-hosted, -1 default */
    bool insecure;
    const char *ca_bundle;    /* --target-ca-bundle; else AWS_CA_BUNDLE; else the profile's ca_bundle */
    const char *ca_option;    /* the option's name for messages, e.g. "--target-ca-bundle" */
};

/* Resolve into *out (owned, free with s3_config_free). Environment credentials (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) are used only when no profile was given explicitly in req
 * (same rule as the AWS CLI: an explicit --profile wins over the environment). On failure returns -1 and
 * writes a message for the user (naming the profile/file, never a secret) into err. */
int s3_config_resolve(const struct s3_config_request *req, struct s3_config *out, char *err, size_t errlen);
void s3_config_free(struct s3_config *c);

/* Both configs address the same service with the same identity (server-side copy is possible). */
bool s3_config_same_account(const struct s3_config *a, const struct s3_config *b);

#endif
