/* Unit tests for s3/config.c: credentials, region, endpoint and addressing resolution from options, the
 * environment and profile files written to a temporary HOME. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "s3/config.h"

extern char **environ;

struct fixture {
    char dir[512];  /* temporary HOME */
    char cred[600]; /* HOME/.aws/credentials */
    char conf[600]; /* HOME/.aws/config */
};

/* Every AWS_* variable of the developer's shell would change the results: remove them all. */
static void clear_aws_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "AWS_", 4) == 0) {
                size_t n = strcspn(*e, "=");
                if (n >= sizeof name) n = sizeof name - 1;
                memcpy(name, *e, n);
                name[n] = '\0';
                break;
            }
        }
        if (!name[0]) return;
        unsetenv(name);
    }
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/test_config.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir)) return -1;
    char aws[560];
    snprintf(aws, sizeof aws, "%s/.aws", fx->dir);
    if (mkdir(aws, 0700) != 0) return -1;
    snprintf(fx->cred, sizeof fx->cred, "%s/credentials", aws);
    snprintf(fx->conf, sizeof fx->conf, "%s/config", aws);
    clear_aws_env();
    setenv("HOME", fx->dir, 1);
    *state = fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)type, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    nftw(fx->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    clear_aws_env();
    free(fx);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Secrets in these tests all contain "SeCrEt" or "ToKeN": no message may show them. */
static void assert_no_secret(const char *msg)
{
    if (strstr(msg, "SeCrEt") || strstr(msg, "ToKeN") || strstr(msg, "PaSsWoRd"))
        fail_msg("message shows a secret: %s", msg);
}

static int resolve(const char *profile, const char *endpoint, const char *region, int path_style,
                   struct s3_config *c, char *err, size_t errlen)
{
    struct s3_config_request req = {
        .profile = profile, .endpoint = endpoint, .region = region, .path_style = path_style};
    int rc = s3_config_resolve(&req, c, err, errlen);
    assert_no_secret(err);
    return rc;
}

static void expect_ok(const char *profile, const char *endpoint, const char *region, int path_style,
                      struct s3_config *c)
{
    char err[1024] = "";
    if (resolve(profile, endpoint, region, path_style, c, err, sizeof err) != 0) fail_msg("resolve: %s", err);
    assert_string_equal(err, "");
}

/* Resolve expecting failure; returns the message (static buffer) after checking it names `needle`. */
static const char *expect_fail(const char *profile, const char *endpoint, const char *region,
                               const char *needle)
{
    static char err[1024];
    struct s3_config c;
    memset(&c, 0x5a, sizeof c);
    err[0] = '\0';
    assert_int_equal(resolve(profile, endpoint, region, -1, &c, err, sizeof err), -1);
    assert_null(c.endpoint); /* nothing half-filled is left behind */
    assert_null(c.creds.secret_key);
    if (needle && !strstr(err, needle)) fail_msg("message \"%s\" does not contain \"%s\"", err, needle);
    return err;
}

static void test_env_only(void **state)
{
    (void)state;
    struct s3_config c;
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEtEnv", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDENV");
    assert_string_equal(c.creds.secret_key, "SeCrEtEnv");
    assert_null(c.creds.session_token);
    assert_string_equal(c.profile, "default");
    assert_string_equal(c.region, "us-east-1");
    assert_string_equal(c.endpoint, "https://s3.us-east-1.amazonaws.com");
    assert_false(c.path_style);
    assert_false(c.insecure);
    s3_config_free(&c);
}

static void test_env_session_token(void **state)
{
    (void)state;
    struct s3_config c;
    setenv("AWS_ACCESS_KEY_ID", "ASIAENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEtEnv", 1);
    setenv("AWS_SESSION_TOKEN", "ToKeNEnv", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.session_token, "ToKeNEnv");
    s3_config_free(&c);
    /* set but empty means unset */
    setenv("AWS_SESSION_TOKEN", "", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_null(c.creds.session_token);
    s3_config_free(&c);
}

static void test_env_partial(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    expect_fail(NULL, NULL, NULL, "AWS_SECRET_ACCESS_KEY is not");
    unsetenv("AWS_ACCESS_KEY_ID");
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEtEnv", 1);
    expect_fail(NULL, NULL, NULL, "AWS_ACCESS_KEY_ID is not");
}

static void test_profile_only(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    write_file(fx->cred, "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = SeCrEtFile\n"
                         "[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = SeCrEtWork\n"
                         "aws_session_token = ToKeNWork\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDFILE");
    assert_string_equal(c.creds.secret_key, "SeCrEtFile");
    assert_null(c.creds.session_token);
    assert_string_equal(c.profile, "default");
    s3_config_free(&c);

    expect_ok("work", NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDWORK");
    assert_string_equal(c.creds.session_token, "ToKeNWork");
    assert_string_equal(c.profile, "work");
    s3_config_free(&c);

    setenv("AWS_PROFILE", "work", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDWORK");
    assert_string_equal(c.profile, "work");
    s3_config_free(&c);
}

static void test_profile_in_config_file(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    write_file(fx->conf,
               "[default]\naws_access_key_id = AKIDCONFDEF\naws_secret_access_key = SeCrEt1\n"
               "[work]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = SeCrEt2\n"
               "[profile work]\naws_access_key_id = AKIDCONFWORK\naws_secret_access_key = SeCrEt3\n"
               "[profile   spaced  ]\naws_access_key_id = AKIDSPACED\naws_secret_access_key = SeCrEt4\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDCONFDEF");
    s3_config_free(&c);
    expect_ok("work", NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDCONFWORK");
    s3_config_free(&c);
    expect_ok("spaced", NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDSPACED");
    s3_config_free(&c);

    /* [profile default] also names the default profile in the config file */
    write_file(fx->conf, "[profile default]\naws_access_key_id = AKIDPD\naws_secret_access_key = SeCrEt5\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDPD");
    s3_config_free(&c);

    /* the credentials file's keys win over the config file's, and "profile x" means nothing there */
    write_file(fx->cred, "[profile default]\naws_access_key_id = AKIDNO\naws_secret_access_key = SeCrEt6\n"
                         "[default]\naws_access_key_id = AKIDCRED\naws_secret_access_key = SeCrEt7\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDCRED");
    s3_config_free(&c);
}

static void test_explicit_profile_beats_env(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    write_file(fx->cred, "[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = SeCrEtWork\n");
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEtEnv", 1);
    setenv("AWS_SESSION_TOKEN", "ToKeNEnv", 1);
    expect_ok("work", NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDWORK");
    assert_string_equal(c.creds.secret_key, "SeCrEtWork");
    assert_null(c.creds.session_token); /* the environment's token does not leak into the profile's keys */
    s3_config_free(&c);

    /* AWS_PROFILE is not explicit: environment keys still win (as with the AWS CLI) */
    setenv("AWS_PROFILE", "work", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDENV");
    assert_string_equal(c.creds.session_token, "ToKeNEnv");
    assert_string_equal(c.profile, "work");
    s3_config_free(&c);
}

static void test_missing_profile(void **state)
{
    struct fixture *fx = *state;
    write_file(fx->cred, "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = SeCrEtFile\n");
    const char *msg = expect_fail("nope", NULL, NULL, "profile \"nope\" not found");
    assert_non_null(strstr(msg, fx->cred));
    assert_non_null(strstr(msg, fx->conf));

    /* an explicit profile is an error even when the environment has keys */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEtEnv", 1);
    expect_fail("nope", NULL, NULL, "profile \"nope\" not found");
    /* so is a non-existent AWS_PROFILE (the AWS CLI's ProfileNotFound) */
    setenv("AWS_PROFILE", "gone", 1);
    expect_fail(NULL, NULL, NULL, "profile \"gone\" (from AWS_PROFILE) not found");

    /* but AWS_PROFILE=default without files is fine with keys in the environment */
    unlink(fx->cred);
    setenv("AWS_PROFILE", "default", 1);
    struct s3_config c;
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDENV");
    s3_config_free(&c);
}

static void test_missing_credentials(void **state)
{
    struct fixture *fx = *state;
    /* nothing anywhere */
    const char *msg =
        expect_fail(NULL, NULL, NULL, "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    assert_non_null(strstr(msg, "profile \"default\" not found in"));
    assert_non_null(strstr(msg, fx->cred));

    /* the profile exists but has no keys */
    write_file(fx->conf, "[default]\nregion = eu-west-1\n[profile role]\nrole_arn = arn:aws:iam::1:role/x\n"
                         "source_profile = default\n");
    expect_fail(NULL, NULL, NULL, "profile \"default\" has no aws_access_key_id and aws_secret_access_key");
    expect_fail("role", NULL, NULL, "profile \"role\" uses role_arn, which replicate does not support");

    /* half a pair */
    write_file(fx->cred,
               "[half]\naws_access_key_id = AKIDHALF\n[otherhalf]\naws_secret_access_key = SeCrEtH\n");
    msg = expect_fail("half", NULL, NULL, "has aws_access_key_id but no aws_secret_access_key");
    assert_non_null(strstr(msg, fx->cred));
    expect_fail("otherhalf", NULL, NULL, "has aws_secret_access_key but no aws_access_key_id");
}

static void test_session_token_from_file(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    write_file(fx->conf, "[profile tmp]\naws_access_key_id = ASIATMP\naws_secret_access_key = SeCrEtTmp\n"
                         "aws_session_token = ToKeNTmp/with+base64==\n");
    expect_ok("tmp", NULL, NULL, -1, &c);
    assert_string_equal(c.creds.session_token, "ToKeNTmp/with+base64==");
    s3_config_free(&c);
}

static void test_credentials_file_env_paths(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    char path[700];
    snprintf(path, sizeof path, "%s/elsewhere", fx->dir);
    write_file(path, "[default]\naws_access_key_id = AKIDELSE\naws_secret_access_key = SeCrEtElse\n");
    write_file(fx->cred, "[default]\naws_access_key_id = AKIDHOME\naws_secret_access_key = SeCrEtHome\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDELSE");
    s3_config_free(&c);
    /* "~/" is expanded */
    setenv("AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDELSE");
    s3_config_free(&c);

    snprintf(path, sizeof path, "%s/conf2", fx->dir);
    write_file(path, "[profile x]\naws_access_key_id = AKIDX\naws_secret_access_key = SeCrEtX\n");
    setenv("AWS_CONFIG_FILE", path, 1);
    expect_ok("x", NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDX");
    s3_config_free(&c);

    /* an unreadable file (here a directory) is an error naming it, not silently skipped */
    setenv("AWS_CONFIG_FILE", fx->dir, 1);
    expect_fail("x", NULL, NULL, "cannot read");
}

static void test_region_precedence(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    write_file(fx->cred, "[default]\naws_access_key_id = AKID\naws_secret_access_key = SeCrEt\n");
    write_file(fx->conf, "[default]\nregion = eu-central-1\n");

    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.region, "eu-central-1");
    assert_string_equal(c.endpoint, "https://s3.eu-central-1.amazonaws.com");
    s3_config_free(&c);

    setenv("AWS_DEFAULT_REGION", "eu-west-2", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.region, "eu-west-2");
    s3_config_free(&c);

    setenv("AWS_REGION", "ap-southeast-2", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.region, "ap-southeast-2");
    s3_config_free(&c);

    expect_ok(NULL, NULL, "us-west-2", -1, &c);
    assert_string_equal(c.region, "us-west-2");
    assert_string_equal(c.endpoint, "https://s3.us-west-2.amazonaws.com");
    s3_config_free(&c);

    /* the credentials file's region wins over the config file's for the same profile */
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    write_file(fx->cred,
               "[default]\naws_access_key_id = AKID\naws_secret_access_key = SeCrEt\nregion = sa-east-1\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.region, "sa-east-1");
    s3_config_free(&c);

    /* default, and China's partition */
    unlink(fx->cred);
    unlink(fx->conf);
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEt", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.region, "us-east-1");
    s3_config_free(&c);
    expect_ok(NULL, NULL, "cn-north-1", -1, &c);
    assert_string_equal(c.endpoint, "https://s3.cn-north-1.amazonaws.com.cn");
    s3_config_free(&c);

    expect_fail(NULL, NULL, "us east 1", "invalid region \"us east 1\"");
    expect_fail(NULL, NULL, "a/b", "invalid region");
}

static void test_endpoint_precedence(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    write_file(fx->conf, "[default]\naws_access_key_id = AKID\naws_secret_access_key = SeCrEt\n"
                         "endpoint_url = http://profile.example:1000\n");

    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.endpoint, "http://profile.example:1000");
    s3_config_free(&c);

    write_file(
        fx->conf,
        "[default]\naws_access_key_id = AKID\naws_secret_access_key = SeCrEt\n"
        "endpoint_url = http://profile.example:1000\ns3 =\n  endpoint_url = http://nested.example:2000\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.endpoint, "http://nested.example:2000");
    s3_config_free(&c);

    setenv("AWS_ENDPOINT_URL", "http://env.example:3000", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.endpoint, "http://env.example:3000");
    s3_config_free(&c);

    setenv("AWS_ENDPOINT_URL_S3", "http://envs3.example:4000", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.endpoint, "http://envs3.example:4000");
    s3_config_free(&c);

    expect_ok(NULL, "http://option.example:5000", NULL, -1, &c);
    assert_string_equal(c.endpoint, "http://option.example:5000");
    s3_config_free(&c);

    /* the source of a bad endpoint is named */
    setenv("AWS_ENDPOINT_URL_S3", "ftp://x", 1);
    expect_fail(NULL, NULL, NULL, "(from AWS_ENDPOINT_URL_S3)");
}

static void expect_endpoint(const char *in, const char *want)
{
    struct s3_config c;
    expect_ok(NULL, in, NULL, -1, &c);
    assert_string_equal(c.endpoint, want);
    s3_config_free(&c);
}

static void test_endpoint_normalization(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEt", 1);
    expect_endpoint("http://127.0.0.1:7480/", "http://127.0.0.1:7480");
    expect_endpoint("http://127.0.0.1:7480", "http://127.0.0.1:7480");
    expect_endpoint("127.0.0.1:7480", "https://127.0.0.1:7480");
    expect_endpoint("localhost:9000", "https://localhost:9000");
    expect_endpoint("s3.example.com", "https://s3.example.com");
    expect_endpoint("https://s3.example.com", "https://s3.example.com");
    expect_endpoint("  https://s3.example.com/  ", "https://s3.example.com");
    expect_endpoint("HTTPS://S3.Example.COM", "https://s3.example.com");
    expect_endpoint("https://s3.example.com:443", "https://s3.example.com");
    expect_endpoint("http://s3.example.com:80/", "http://s3.example.com");
    expect_endpoint("http://s3.example.com:443", "http://s3.example.com:443");
    expect_endpoint("http://[::1]:7480/", "http://[::1]:7480");

    expect_fail(NULL, "ftp://x", NULL, "unsupported scheme \"ftp\"");
    expect_fail(NULL, "s3://bucket", NULL, "unsupported scheme \"s3\"");
    expect_fail(NULL, "http://h/path", NULL, "without a path");
    expect_fail(NULL, "http://h//", NULL, "without a path");
    expect_fail(NULL, "http://h/?x=1", NULL, "without a path, query");
    expect_fail(NULL, "http://h?", NULL, "without a path, query");
    expect_fail(NULL, "http://h#frag", NULL, "fragment");
    expect_fail(NULL, "http://h:99999", NULL, "not a valid URL");
    expect_fail(NULL, "http://h:0", NULL, "port 0");
    expect_fail(NULL, "http://", NULL, "http://");
    expect_fail(NULL, "http:///x", NULL, "has no host");
    expect_fail(NULL, "http://a b", NULL, "not a valid URL");
    expect_fail(NULL, "   ", NULL, "endpoint");
    /* user info is refused without echoing the password */
    const char *msg = expect_fail(NULL, "http://user:PaSsWoRd@h", NULL, "user:password@");
    assert_null(strstr(msg, "@h")); /* the URL itself is not echoed */
    expect_fail(NULL, "user:PaSsWoRd@h:9000", NULL, "user:password@");
}

static void test_path_style_defaults(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEt", 1);

    expect_ok(NULL, NULL, NULL, -1, &c); /* AWS */
    assert_false(c.path_style);
    s3_config_free(&c);
    expect_ok(NULL, "http://127.0.0.1:7480", NULL, -1, &c); /* custom */
    assert_true(c.path_style);
    s3_config_free(&c);
    expect_ok(NULL, "https://s3.eu-west-1.amazonaws.com", NULL, -1,
              &c); /* an AWS endpoint given explicitly */
    assert_false(c.path_style);
    s3_config_free(&c);
    expect_ok(NULL, "http://127.0.0.1:7480", NULL, 0, &c);
    assert_false(c.path_style);
    s3_config_free(&c);
    expect_ok(NULL, NULL, NULL, 1, &c);
    assert_true(c.path_style);
    s3_config_free(&c);

    setenv("AWS_ENDPOINT_URL", "http://minio.local:9000", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_true(c.path_style);
    s3_config_free(&c);
    unsetenv("AWS_ENDPOINT_URL");

    /* the profile's s3 addressing_style */
    write_file(fx->conf, "[default]\ns3 =\n  addressing_style = virtual\n");
    expect_ok(NULL, "http://127.0.0.1:7480", NULL, -1, &c);
    assert_false(c.path_style);
    s3_config_free(&c);
    expect_ok(NULL, "http://127.0.0.1:7480", NULL, 1, &c); /* the request still wins */
    assert_true(c.path_style);
    s3_config_free(&c);
    write_file(fx->conf, "[default]\ns3 =\n  addressing_style = path\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_true(c.path_style);
    s3_config_free(&c);
    write_file(fx->conf, "[default]\ns3 =\n  addressing_style = auto\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_false(c.path_style);
    s3_config_free(&c);
    write_file(fx->conf, "[default]\ns3 =\n  addressing_style = sideways\n");
    expect_fail(NULL, NULL, NULL, "addressing_style must be path, virtual or auto");
}

static void test_messy_ini(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    write_file(fx->cred, "# leading comment\r\n"
                         "; another comment\r\n"
                         "\r\n"
                         "   [ default ]   \r\n"
                         "aws_access_key_id=AKIDMESSY\r\n"
                         "aws_secret_access_key   =    SeCrEt#not;a/comment+ \t  \r\n"
                         "\r\n"
                         "   # indented comment\r\n"
                         "AWS_SESSION_TOKEN = ToKeNWrongCase\r\n"
                         "unknown_key = whatever\r\n"
                         "a line that is not a key\r\n"
                         "region: ca-central-1\r\n"
                         "    region = ap-south-1\r\n" /* continuation of region's value, not a key */
                         "[other]\r\n"
                         "aws_access_key_id = AKIDOTHER\r\n"
                         "aws_secret_access_key = SeCrEtOther\r\n");
    write_file(fx->conf, "[default]\n"
                         "output = json\n"
                         "s3 =\n"
                         "    ; comment inside the block\n"
                         "    signature_version = s3v4\n"
                         "\n"
                         "    addressing_style = virtual\n"
                         "    endpoint_url = http://Nested.Example:9000/\n"
                         "region = us-west-1\n"
                         "[profile indented]\n"
                         "  aws_access_key_id = AKIDIND\n"
                         "  aws_secret_access_key = SeCrEtInd\n"
                         "[profile dup]\n"
                         "aws_access_key_id = AKIDDUP1\n"
                         "aws_secret_access_key = SeCrEtDup1\n"
                         "[profile dup]\n"
                         "aws_access_key_id = AKIDDUP2\n");
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDMESSY");
    assert_string_equal(c.creds.secret_key, "SeCrEt#not;a/comment+");
    assert_null(c.creds.session_token); /* keys are case-sensitive */
    assert_string_equal(c.region, "ca-central-1");
    assert_string_equal(c.endpoint, "http://nested.example:9000");
    assert_false(c.path_style);
    s3_config_free(&c);

    expect_ok("indented", NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDIND");
    assert_string_equal(c.creds.secret_key, "SeCrEtInd");
    s3_config_free(&c);

    /* a repeated section adds to the first, later keys win */
    expect_ok("dup", NULL, NULL, -1, &c);
    assert_string_equal(c.creds.access_key, "AKIDDUP2");
    assert_string_equal(c.creds.secret_key, "SeCrEtDup1");
    s3_config_free(&c);
}

static void test_long_line(void **state)
{
    struct fixture *fx = *state;
    struct s3_config c;
    /* a 4 KiB session token is fine */
    size_t n = 4096;
    char *text = malloc(n + 200);
    assert_non_null(text);
    int off = snprintf(text, 200,
                       "[default]\naws_access_key_id = AKID\naws_secret_access_key = SeCrEt\n"
                       "aws_session_token = ToKeN");
    memset(text + off, 'A', n);
    strcpy(text + off + n, "\n");
    write_file(fx->cred, text);
    expect_ok(NULL, NULL, NULL, -1, &c);
    assert_int_equal(strlen(c.creds.session_token), n + 5);
    s3_config_free(&c);
    free(text);

    /* an absurd line is an error, not a truncated value */
    n = 40000;
    text = malloc(n + 200);
    assert_non_null(text);
    off = snprintf(text, 200,
                   "[default]\naws_access_key_id = AKID\naws_secret_access_key = SeCrEt\n"
                   "aws_session_token = ToKeN");
    memset(text + off, 'A', n);
    strcpy(text + off + n, "\n");
    write_file(fx->cred, text);
    expect_fail(NULL, NULL, NULL, "line 4: line longer than");
    free(text);
}

static void test_insecure_and_null_request(void **state)
{
    (void)state;
    struct s3_config c;
    char err[512] = "";
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEt", 1);
    struct s3_config_request req = {.path_style = -1, .insecure = true};
    assert_int_equal(s3_config_resolve(&req, &c, err, sizeof err), 0);
    assert_true(c.insecure);
    s3_config_free(&c);
    assert_int_equal(s3_config_resolve(NULL, &c, err, sizeof err), 0);
    assert_false(c.insecure);
    assert_string_equal(c.region, "us-east-1");
    s3_config_free(&c);
    /* no error buffer is fine too */
    unsetenv("AWS_ACCESS_KEY_ID");
    assert_int_equal(s3_config_resolve(NULL, &c, NULL, 0), -1);
}

/* CA bundle: the side's option, then AWS_CA_BUNDLE, then the profile's ca_bundle ("~/" expanded); a file that
 * cannot be read is an error naming it and where it came from. */
static void test_ca_bundle_precedence(void **state)
{
    struct fixture *fx = *state;
    char opt[700], envf[700], prof[700], conf[1600], err[1024] = "";
    snprintf(opt, sizeof opt, "%s/opt.pem", fx->dir);
    snprintf(envf, sizeof envf, "%s/env.pem", fx->dir);
    snprintf(prof, sizeof prof, "%s/.aws/prof.pem", fx->dir);
    write_file(opt, "x\n");
    write_file(envf, "x\n");
    write_file(prof, "x\n");
    write_file(fx->cred, "[p]\naws_access_key_id = AKID\naws_secret_access_key = SeCrEt\n");
    snprintf(conf, sizeof conf, "[profile p]\nca_bundle = ~/.aws/prof.pem\n");
    write_file(fx->conf, conf);
    struct s3_config c;
    struct s3_config_request req = {.profile = "p", .path_style = -1, .ca_bundle = opt, .ca_option = "--target-ca-bundle"};
    setenv("AWS_CA_BUNDLE", envf, 1);
    assert_int_equal(s3_config_resolve(&req, &c, err, sizeof err), 0);
    assert_string_equal(c.ca_bundle, opt);
    assert_string_equal(c.ca_source, "--target-ca-bundle");
    s3_config_free(&c);
    req.ca_bundle = NULL;
    assert_int_equal(s3_config_resolve(&req, &c, err, sizeof err), 0);
    assert_string_equal(c.ca_bundle, envf);
    assert_string_equal(c.ca_source, "AWS_CA_BUNDLE");
    s3_config_free(&c);
    unsetenv("AWS_CA_BUNDLE");
    assert_int_equal(s3_config_resolve(&req, &c, err, sizeof err), 0);
    assert_string_equal(c.ca_bundle, prof);
    assert_string_equal(c.ca_source, "ca_bundle of profile \"p\"");
    s3_config_free(&c);
    /* none at all: the system's CAs */
    write_file(fx->conf, "[profile p]\nregion = eu-west-1\n");
    assert_int_equal(s3_config_resolve(&req, &c, err, sizeof err), 0);
    assert_null(c.ca_bundle);
    s3_config_free(&c);
    req.ca_bundle = "/no/such/ca.pem";
    assert_int_equal(s3_config_resolve(&req, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot read the CA bundle /no/such/ca.pem (from --target-ca-bundle)"));
}

static void test_same_account(void **state)
{
    (void)state;
    struct s3_config a, b;
    setenv("AWS_ACCESS_KEY_ID", "AKID1", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEt", 1);
    expect_ok(NULL, "http://RGW.local:7480/", NULL, -1, &a);
    expect_ok(NULL, "http://rgw.local:7480", NULL, 0, &b); /* addressing does not matter */
    assert_true(s3_config_same_account(&a, &b));
    s3_config_free(&b);

    expect_ok(NULL, "http://rgw.local:7481", NULL, -1, &b);
    assert_false(s3_config_same_account(&a, &b));
    s3_config_free(&b);
    expect_ok(NULL, "https://rgw.local:7480", NULL, -1, &b);
    assert_false(s3_config_same_account(&a, &b));
    s3_config_free(&b);
    expect_ok(NULL, "http://rgw.local:7480", "eu-west-1", -1, &b);
    assert_false(s3_config_same_account(&a, &b));
    s3_config_free(&b);
    setenv("AWS_ACCESS_KEY_ID", "AKID2", 1);
    expect_ok(NULL, "http://rgw.local:7480", NULL, -1, &b);
    assert_false(s3_config_same_account(&a, &b));
    s3_config_free(&b);

    assert_false(s3_config_same_account(&a, NULL));
    assert_false(s3_config_same_account(NULL, &a));
    s3_config_free(&a);
}

static void test_config_free_wipes(void **state)
{
    (void)state;
    struct s3_config c;
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SeCrEt", 1);
    setenv("AWS_SESSION_TOKEN", "ToKeN", 1);
    expect_ok(NULL, NULL, NULL, -1, &c);
    s3_config_free(&c);
    struct s3_config zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&c, &zero, sizeof c);
    s3_config_free(&c); /* twice is harmless once zeroed */
    s3_config_free(NULL);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_env_only),
        T(test_env_session_token),
        T(test_env_partial),
        T(test_profile_only),
        T(test_profile_in_config_file),
        T(test_explicit_profile_beats_env),
        T(test_missing_profile),
        T(test_missing_credentials),
        T(test_session_token_from_file),
        T(test_credentials_file_env_paths),
        T(test_region_precedence),
        T(test_endpoint_precedence),
        T(test_endpoint_normalization),
        T(test_path_style_defaults),
        T(test_messy_ini),
        T(test_long_line),
        T(test_insecure_and_null_request),
        T(test_ca_bundle_precedence),
        T(test_same_account),
        T(test_config_free_wipes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
