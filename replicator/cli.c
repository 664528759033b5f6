/* Command-line parsing: the option tables and handlers, S3 URLs, durations, times and sizes, and the checks
 * of option combinations, into struct rep_options (replicator/options.h); --help's text is replicator/cli_usage.c.
 * Must not: make a request or run anything: it only fills (and frees) struct rep_options. */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "replicator/options.h"
#include "replicator/retain.h"

int cli_parse_s3_url(const char *url, char **bucket, char **prefix, char *err, size_t errlen)
{
    *bucket = *prefix = NULL;
    if (strncmp(url, "s3://", 5) != 0) {
        snprintf(err, errlen, "\"%s\" is not an S3 URL: write s3://BUCKET or s3://BUCKET/PREFIX", url);
        return -1;
    }
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (bl < 1 || bl > 255) {
        snprintf(err, errlen, "\"%s\": missing bucket name (s3://BUCKET[/PREFIX])", url);
        return -1;
    }
    for (size_t i = 0; i < bl; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_')) {
            snprintf(err, errlen, "\"%s\": bucket names use letters, digits, '.', '-' and '_' only", url);
            return -1;
        }
    }
    const char *p = slash ? slash + 1 : "";
    size_t pl = strlen(p);
    *bucket = strndup(b, bl);
    /* a prefix names a folder: "photos" means "photos/" (the aws s3 sync and rclone convention) */
    if (asprintf(prefix, "%s%s", p, pl && p[pl - 1] != '/' ? "/" : "") < 0) *prefix = NULL;
    if (!*bucket || !*prefix) {
        free(*bucket);
        free(*prefix);
        *bucket = *prefix = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

double cli_parse_duration(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0 || !isfinite(v)) return -1;
    double m;
    if (!*end || !strcmp(end, "s")) m = 1;
    else if (!strcmp(end, "m")) m = 60;
    else if (!strcmp(end, "h")) m = 3600;
    else if (!strcmp(end, "d")) m = 86400;
    else return -1;
    v *= m;
    return isfinite(v) && v <= 1e9 ? v : -1; /* about 30 years: anything longer is a typo */
}

double cli_parse_time(const char *s, double now)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) {
        double age = cli_parse_duration(s);
        return age < 0 || age > now ? -1 : now - age;
    }
    if (*end == '.') /* fractional seconds */
        for (end++; isdigit((unsigned char)*end); end++) {}
    long off = 0;
    if (*end == 'Z' || *end == 'z') {
        end++;
    } else if (*end == '+' || *end == '-') {
        int hh, mm, used = 0;
        if (sscanf(end + 1, "%2d:%2d%n", &hh, &mm, &used) != 2 || used != 5 || hh > 23 || mm > 59) return -1;
        off = (hh * 3600L + mm * 60L) * (*end == '-' ? -1 : 1);
        end += 1 + used;
    } else {
        return -1;
    }
    if (*end) return -1;
    time_t t = timegm(&tm);
    return t < 0 ? -1 : (double)t - (double)off;
}

uint64_t cli_parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0 || !isfinite(v)) return 0;
    double m = 1;
    if (!*end || !strcasecmp(end, "b")) m = 1;
    else if (!strcasecmp(end, "k") || !strcasecmp(end, "kib") || !strcasecmp(end, "kb")) m = 1024.0;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib") || !strcasecmp(end, "mb")) m = 1024.0 * 1024;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib") || !strcasecmp(end, "gb")) m = 1024.0 * 1024 * 1024;
    else return 0;
    double r = v * m;
    if (r > 1e15) return 0;
    return (uint64_t)r;
}

enum {
    OPT_SRC_PROFILE = 1000, OPT_DST_PROFILE, OPT_SRC_ENDPOINT, OPT_DST_ENDPOINT, OPT_SRC_REGION, OPT_DST_REGION,
    OPT_PROFILE, OPT_ENDPOINT, OPT_REGION, OPT_PATH_STYLE, OPT_VHOST, OPT_INSECURE, OPT_SETTLE, OPT_MAX_PASSES,
    OPT_JSON, OPT_ALLOW_UNVERSIONED, OPT_ENABLE_VERSIONING, OPT_INIT_TARGET, OPT_SOURCE_IS_REPLICA, OPT_VERSION,
    OPT_PART_SIZE, OPT_MP_THRESHOLD, OPT_COPY_THRESHOLD, OPT_MAX_MEMORY, OPT_STATE_DIR, OPT_MAINT_FILE,
    OPT_MAINT_ON, OPT_MAINT_OFF, OPT_GRACE, OPT_MAINT_MAX, OPT_VERIFY, OPT_DEEP, OPT_SAMPLE, OPT_STATUS,
    OPT_MAX_AGE, OPT_NOTIFY_CMD, OPT_NOTIFY_URL, OPT_START_AFTER, OPT_END_BEFORE, OPT_SHARD, OPT_TIMEOUT,
    OPT_RETRIES, OPT_NO_PROGRESS, OPT_LIST_RANGES, OPT_METRICS, OPT_RESTORE, OPT_DRILL, OPT_RUN, OPT_AT,
    OPT_ONLY_MISSING, OPT_OVERWRITE, OPT_MAX_DRILL_AGE, OPT_NO_TAGS, OPT_STORAGE_CLASS, OPT_SKIP_ARCHIVED,
    OPT_LOG_FORMAT, OPT_SRC_CA, OPT_DST_CA, OPT_CA,
    OPT_LEASE, OPT_SHARDS, OPT_RUN_ID, OPT_RETAIN, OPT_RETAIN_MODE,
};

static const struct option long_opts[] = {
    {"source-profile", required_argument, 0, OPT_SRC_PROFILE},
    {"target-profile", required_argument, 0, OPT_DST_PROFILE},
    {"source-endpoint", required_argument, 0, OPT_SRC_ENDPOINT},
    {"target-endpoint", required_argument, 0, OPT_DST_ENDPOINT},
    {"source-region", required_argument, 0, OPT_SRC_REGION},
    {"target-region", required_argument, 0, OPT_DST_REGION},
    {"profile", required_argument, 0, OPT_PROFILE},
    {"endpoint", required_argument, 0, OPT_ENDPOINT},
    {"endpoint-url", required_argument, 0, OPT_ENDPOINT},
    {"region", required_argument, 0, OPT_REGION},
    {"path-style", no_argument, 0, OPT_PATH_STYLE},
    {"virtual-hosted", no_argument, 0, OPT_VHOST},
    {"insecure", no_argument, 0, OPT_INSECURE},
    {"source-ca-bundle", required_argument, 0, OPT_SRC_CA},
    {"target-ca-bundle", required_argument, 0, OPT_DST_CA},
    {"ca-bundle", required_argument, 0, OPT_CA},
    {"jobs", required_argument, 0, 'j'},
    {"settle", required_argument, 0, OPT_SETTLE},
    {"max-passes", required_argument, 0, OPT_MAX_PASSES},
    {"dry-run", no_argument, 0, 'n'},
    {"json", no_argument, 0, OPT_JSON},
    {"quiet", no_argument, 0, 'q'},
    {"verbose", no_argument, 0, 'v'},
    {"no-progress", no_argument, 0, OPT_NO_PROGRESS},
    {"allow-unversioned", no_argument, 0, OPT_ALLOW_UNVERSIONED},
    {"enable-versioning", no_argument, 0, OPT_ENABLE_VERSIONING},
    {"init-target", no_argument, 0, OPT_INIT_TARGET},
    {"source-is-replica", no_argument, 0, OPT_SOURCE_IS_REPLICA},
    {"part-size", required_argument, 0, OPT_PART_SIZE},
    {"multipart-threshold", required_argument, 0, OPT_MP_THRESHOLD},
    {"copy-threshold", required_argument, 0, OPT_COPY_THRESHOLD},
    {"max-memory", required_argument, 0, OPT_MAX_MEMORY},
    {"state-dir", required_argument, 0, OPT_STATE_DIR},
    {"maintenance-file", required_argument, 0, OPT_MAINT_FILE},
    {"maintenance-on", required_argument, 0, OPT_MAINT_ON},
    {"maintenance-off", required_argument, 0, OPT_MAINT_OFF},
    {"grace", required_argument, 0, OPT_GRACE},
    {"maintenance-max", required_argument, 0, OPT_MAINT_MAX},
    {"verify", no_argument, 0, OPT_VERIFY},
    {"deep", no_argument, 0, OPT_DEEP},
    {"sample", required_argument, 0, OPT_SAMPLE},
    {"status", no_argument, 0, OPT_STATUS},
    {"max-age", required_argument, 0, OPT_MAX_AGE},
    {"notify-cmd", required_argument, 0, OPT_NOTIFY_CMD},
    {"notify-url", required_argument, 0, OPT_NOTIFY_URL},
    {"start-after", required_argument, 0, OPT_START_AFTER},
    {"end-before", required_argument, 0, OPT_END_BEFORE},
    {"shard", required_argument, 0, OPT_SHARD},
    {"shards", required_argument, 0, OPT_SHARDS},
    {"run-id", required_argument, 0, OPT_RUN_ID},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"retries", required_argument, 0, OPT_RETRIES},
    {"list-ranges", required_argument, 0, OPT_LIST_RANGES},
    {"metrics-file", required_argument, 0, OPT_METRICS},
    {"restore", no_argument, 0, OPT_RESTORE},
    {"restore-drill", no_argument, 0, OPT_DRILL},
    {"run", required_argument, 0, OPT_RUN},
    {"at", required_argument, 0, OPT_AT},
    {"only-missing", no_argument, 0, OPT_ONLY_MISSING},
    {"overwrite", no_argument, 0, OPT_OVERWRITE},
    {"max-drill-age", required_argument, 0, OPT_MAX_DRILL_AGE},
    {"no-tags", no_argument, 0, OPT_NO_TAGS},
    {"skip-archived", no_argument, 0, OPT_SKIP_ARCHIVED},
    {"storage-class", required_argument, 0, OPT_STORAGE_CLASS},
    {"log-format", required_argument, 0, OPT_LOG_FORMAT},
    {"lease", required_argument, 0, OPT_LEASE},
    {"retain", required_argument, 0, OPT_RETAIN},
    {"retain-mode", required_argument, 0, OPT_RETAIN_MODE},
    {"help", no_argument, 0, 'h'},
    {"version", no_argument, 0, OPT_VERSION},
    {0, 0, 0, 0},
};

/* JOB_COMPLETION_INDEX (set by Kubernetes in each pod of an Indexed Job): the index, -1 when unset, -2 after
 * printing why it is unusable. */
static int job_index(void)
{
    const char *e = getenv("JOB_COMPLETION_INDEX");
    if (!e) return -1;
    char *end;
    long v = strtol(e, &end, 10);
    if (end == e || *end || v < 0 || v >= SHARDS_MAX) {
        fprintf(stderr, "replicate: JOB_COMPLETION_INDEX=\"%s\" is not a shard index (0 to %d)\n", e, SHARDS_MAX - 1);
        return -2;
    }
    return (int)v;
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "replicate: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'replicate --help'.\n");
    return EXIT_USAGE;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* What the options give that is resolved only after all are read (the shared side options, --shards). */
struct parse_state {
    const char *profile, *endpoint, *region, *ca_bundle;
    int path_style, shards;
    bool insecure;
};

#define OPT_NOT_MINE (-100)

/* Options: profiles, endpoints, regions, addressing, TLS, timeouts and retries (either side or both). 0 when taken, OPT_NOT_MINE, or an exit code after a usage error. */
static int opt_connection(int c, struct rep_options *o, struct parse_state *ps)
{
    long v;
    switch (c) {
    case OPT_SRC_PROFILE: o->src_req.profile = optarg; break;
    case OPT_DST_PROFILE: o->dst_req.profile = optarg; break;
    case OPT_SRC_ENDPOINT: o->src_req.endpoint = optarg; break;
    case OPT_DST_ENDPOINT: o->dst_req.endpoint = optarg; break;
    case OPT_SRC_REGION: o->src_req.region = optarg; break;
    case OPT_DST_REGION: o->dst_req.region = optarg; break;
    case OPT_PROFILE: ps->profile = optarg; break;
    case OPT_ENDPOINT: ps->endpoint = optarg; break;
    case OPT_REGION: ps->region = optarg; break;
    case OPT_PATH_STYLE: ps->path_style = 1; break;
    case OPT_VHOST: ps->path_style = 0; break;
    case OPT_INSECURE: ps->insecure = true; break;
    case OPT_SRC_CA: o->src_req.ca_bundle = optarg; break;
    case OPT_DST_CA: o->dst_req.ca_bundle = optarg; break;
    case OPT_CA: ps->ca_bundle = optarg; break;
    case OPT_TIMEOUT:
        if (parse_int(optarg, 1, 86400, &v)) return bad("--timeout needs seconds, not \"%s\"", optarg);
        o->timeout = v;
        break;
    case OPT_RETRIES:
        if (parse_int(optarg, 1, 100, &v)) return bad("--retries needs a number from 1 to 100, not \"%s\"", optarg);
        o->retries = (int)v;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return 0;
}

/* Options: how objects are copied, and what a target must be. 0 when taken, OPT_NOT_MINE, or an exit code after a usage error. */
static int opt_copy(int c, struct rep_options *o, struct parse_state *ps)
{
    (void)ps;
    long v;
    double d;
    switch (c) {
    case 'j':
        if (parse_int(optarg, 1, 4096, &v)) return bad("--jobs needs a number from 1 to 4096, not \"%s\"", optarg);
        o->jobs = (int)v;
        break;
    case OPT_SETTLE:
        if ((d = cli_parse_duration(optarg)) < 0) return bad("--settle needs seconds, not \"%s\"", optarg);
        o->settle = d;
        break;
    case OPT_MAX_PASSES:
        if (parse_int(optarg, 1, 1000, &v)) return bad("--max-passes needs a number from 1 to 1000, not \"%s\"", optarg);
        o->max_passes = (int)v;
        break;
    case OPT_ALLOW_UNVERSIONED: o->allow_unversioned = true; break;
    case OPT_ENABLE_VERSIONING: o->enable_versioning = true; break;
    case OPT_INIT_TARGET: o->init_target = true; break;
    case OPT_SOURCE_IS_REPLICA: o->source_is_replica = true; break;
    case OPT_PART_SIZE:
        if (!(o->part_size = cli_parse_size(optarg)) || o->part_size < (5u << 20) || o->part_size > (5ull << 30))
            return bad("--part-size must be between 5MiB and 5GiB (S3's limits), not \"%s\"", optarg);
        break;
    case OPT_MP_THRESHOLD:
        if (!(o->multipart_threshold = cli_parse_size(optarg)) || o->multipart_threshold > (5ull << 30))
            return bad("--multipart-threshold needs a size up to 5GiB, not \"%s\"", optarg);
        break;
    case OPT_COPY_THRESHOLD:
        if (!(o->copy_threshold = cli_parse_size(optarg)) || o->copy_threshold > (5ull << 30))
            return bad("--copy-threshold needs a size up to 5GiB (CopyObject's limit), not \"%s\"", optarg);
        break;
    case OPT_MAX_MEMORY:
        if (!(o->max_memory = cli_parse_size(optarg)) || o->max_memory < (8u << 20))
            return bad("--max-memory needs a size of at least 8MiB, not \"%s\"", optarg);
        break;
    case OPT_LIST_RANGES:
        if (parse_int(optarg, 1, 256, &v)) return bad("--list-ranges needs a number from 1 to 256, not \"%s\"", optarg);
        o->list_ranges = (int)v;
        break;
    case OPT_NO_TAGS: o->no_tags = true; break;
    case OPT_SKIP_ARCHIVED: o->skip_archived = true; break;
    case OPT_STORAGE_CLASS: {
        bool okc = optarg[0] != '\0';
        for (const char *q = optarg; *q; q++)
            if (!(isupper((unsigned char)*q) || isdigit((unsigned char)*q) || *q == '_')) okc = false;
        if (!okc) return bad("--storage-class needs a class name like STANDARD_IA or GLACIER_IR, not \"%s\"", optarg);
        o->storage_class = optarg;
        break;
    }
    case OPT_RETAIN:
        if ((o->retain = retain_parse_duration(optarg)) < 0)
            return bad("--retain needs a duration with a unit, from 1m to 100y, like 30d, 12h, 2w or 1y, not "
                       "\"%s\"", optarg);
        break;
    case OPT_RETAIN_MODE:
        if (strcmp(optarg, "compliance") == 0) o->retain_compliance = true;
        else if (strcmp(optarg, "governance") == 0) o->retain_compliance = false;
        else return bad("--retain-mode is governance or compliance, not \"%s\"", optarg);
        o->retain_mode_given = true;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return 0;
}

/* Options: the mode (backup, --verify, --status, --restore, --restore-drill) and the options of each. 0 when taken, OPT_NOT_MINE, or an exit code after a usage error. */
static int opt_modes(int c, struct rep_options *o, struct parse_state *ps)
{
    (void)ps;
    double d;
    switch (c) {
    case OPT_VERIFY: o->mode = MODE_VERIFY; break;
    case OPT_DEEP: o->deep = true; break;
    case OPT_SAMPLE:
        d = strtod(optarg, NULL);
        if (!(d > 0 && d <= 100)) return bad("--sample needs a percentage in (0, 100], not \"%s\"", optarg);
        o->sample = d;
        break;
    case OPT_STATUS: o->mode = MODE_STATUS; break;
    case OPT_MAX_AGE:
        if ((d = cli_parse_duration(optarg)) <= 0) return bad("--max-age needs a duration like 26h or 7d, not \"%s\"", optarg);
        o->max_age = d;
        break;
    case OPT_RESTORE: o->mode = MODE_RESTORE; break;
    case OPT_DRILL: o->mode = MODE_DRILL; break;
    case OPT_RUN: o->run_id = optarg; break;
    case OPT_AT:
        if ((o->at = cli_parse_time(optarg, (double)time(NULL))) < 0)
            return bad("--at needs a time like 2026-12-01T09:30:00Z or an age like 90m or 2d, not \"%s\"", optarg);
        o->at_given = true;
        break;
    case OPT_ONLY_MISSING: o->only_missing = true; break;
    case OPT_OVERWRITE: o->overwrite = true; break;
    case OPT_MAX_DRILL_AGE:
        if ((d = cli_parse_duration(optarg)) <= 0)
            return bad("--max-drill-age needs a duration like 30d, not \"%s\"", optarg);
        o->max_drill_age = d;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return 0;
}

/* Options: a run: state, maintenance flag, notifications, key range and shards, metrics, lease. 0 when taken, OPT_NOT_MINE, or an exit code after a usage error. */
static int opt_run(int c, struct rep_options *o, struct parse_state *ps)
{
    long v;
    double d;
    switch (c) {
    case OPT_STATE_DIR: o->state_dir = optarg; break;
    case OPT_MAINT_FILE: o->maint_file = optarg; break;
    case OPT_MAINT_ON: o->maint_on = optarg; break;
    case OPT_MAINT_OFF: o->maint_off = optarg; break;
    case OPT_GRACE:
        if ((d = cli_parse_duration(optarg)) < 0) return bad("--grace needs seconds, not \"%s\"", optarg);
        o->grace = d;
        break;
    case OPT_MAINT_MAX:
        if ((d = cli_parse_duration(optarg)) <= 0) return bad("--maintenance-max needs seconds, not \"%s\"", optarg);
        o->maint_max = d;
        break;
    case OPT_NOTIFY_CMD: o->notify_cmd = optarg; break;
    case OPT_NOTIFY_URL: o->notify_url = optarg; break;
    case OPT_START_AFTER: o->start_after = optarg; break;
    case OPT_END_BEFORE: o->end_before = optarg; break;
    case OPT_SHARD: { /* I/N, or auto/N: I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's pod) */
        int i = -1, n, used = 0;
        bool from_job = strncmp(optarg, "auto/", 5) == 0;
        if (from_job ? sscanf(optarg + 5, "%d%n", &n, &used) != 1 || optarg[5 + used]
                     : sscanf(optarg, "%d/%d%n", &i, &n, &used) != 2 || optarg[used])
            return bad("--shard needs I/N or auto/N with 0 <= I < N <= %d, not \"%s\"", SHARDS_MAX, optarg);
        if (from_job && (i = job_index()) == -2) return EXIT_USAGE;
        if (from_job && i == -1) return bad("--shard auto/N takes the shard from JOB_COMPLETION_INDEX, which is not set");
        if (n < 1 || n > SHARDS_MAX || i < 0 || i >= n)
            return bad("--shard needs I/N or auto/N with 0 <= I < N <= %d, not \"%s\"%s", SHARDS_MAX, optarg,
                       from_job ? " (I from JOB_COMPLETION_INDEX)" : "");
        o->shard_i = i;
        o->shard_n = n;
        break;
    }
    case OPT_SHARDS:
        if (parse_int(optarg, 1, SHARDS_MAX, &v))
            return bad("--shards needs a number from 1 to %d, not \"%s\"", SHARDS_MAX, optarg);
        ps->shards = (int)v;
        break;
    case OPT_RUN_ID: {
        size_t l = strlen(optarg);
        bool okr = l >= 1 && l <= 64 && isalnum((unsigned char)optarg[0]);
        for (size_t q = 0; q < l; q++)
            if (!(isalnum((unsigned char)optarg[q]) || optarg[q] == '-' || optarg[q] == '_')) okr = false;
        if (!okr)
            return bad("--run-id needs 1 to 64 letters, digits, '-' or '_' (starting with a letter or digit), "
                       "not \"%s\"", optarg);
        o->shared_run_id = optarg;
        break;
    }
    case OPT_METRICS: o->metrics_file = optarg; break;
    case OPT_LEASE:
        if ((d = cli_parse_duration(optarg)) < 3 || d > 86400)
            return bad("--lease needs a duration from 3s to 24h, like 5m, not \"%s\"", optarg);
        o->lease = d;
        break;
    default:
        return OPT_NOT_MINE;
    }
    return 0;
}

/* Options: what is printed. 0 when taken, OPT_NOT_MINE, or an exit code after a usage error. */
static int opt_output(int c, struct rep_options *o, struct parse_state *ps)
{
    (void)ps;
    switch (c) {
    case 'n': o->dry_run = true; break;
    case OPT_JSON: o->json = true; break;
    case 'q': o->quiet = true; break;
    case 'v': o->verbose++; break;
    case OPT_NO_PROGRESS: o->progress = false; break;
    case OPT_LOG_FORMAT:
        if (strcmp(optarg, "json") == 0) o->log_json = true;
        else if (strcmp(optarg, "human") == 0) o->log_json = false;
        else return bad("--log-format is human or json, not \"%s\"", optarg);
        break;
    default:
        return OPT_NOT_MINE;
    }
    return 0;
}

/* --profile/--endpoint/--region (and the TLS options) apply to both sides unless a side-specific one was given. */
static void share_side_options(struct rep_options *o, const struct parse_state *ps)
{
    if (!o->src_req.profile) o->src_req.profile = ps->profile;
    if (!o->dst_req.profile) o->dst_req.profile = ps->profile;
    if (!o->src_req.endpoint) o->src_req.endpoint = ps->endpoint;
    if (!o->dst_req.endpoint) o->dst_req.endpoint = ps->endpoint;
    if (!o->src_req.region) o->src_req.region = ps->region;
    if (!o->dst_req.region) o->dst_req.region = ps->region;
    o->src_req.path_style = o->dst_req.path_style = ps->path_style;
    o->src_req.insecure = o->dst_req.insecure = ps->insecure;
    o->src_req.ca_option = o->src_req.ca_bundle ? "--source-ca-bundle" : "--ca-bundle";
    o->dst_req.ca_option = o->dst_req.ca_bundle ? "--target-ca-bundle" : "--ca-bundle";
    if (!o->src_req.ca_bundle) o->src_req.ca_bundle = ps->ca_bundle;
    if (!o->dst_req.ca_bundle) o->dst_req.ca_bundle = ps->ca_bundle;
    if (o->quiet || o->json || o->log_json) o->progress = false;
}

/* The options of --restore and --restore-drill (checked before the URLs are). */
static int check_restore_options(const struct rep_options *o)
{
    if (o->run_id && o->at_given) return bad("--run and --at exclude each other");
    if (o->only_missing && o->overwrite) return bad("--only-missing and --overwrite exclude each other");
    if ((o->run_id || o->at_given) && o->mode != MODE_RESTORE && o->mode != MODE_DRILL)
        return bad("--run and --at go with --restore or --restore-drill");
    if ((o->only_missing || o->overwrite) && o->mode != MODE_RESTORE)
        return bad("--only-missing and --overwrite go with --restore");
    return 0;
}

/* The URLs: one (the backup) for --status and --restore-drill, else source and target. */
static int parse_operands(int nargs, char **args, struct rep_options *o)
{
    char err[512];
    if (o->mode == MODE_STATUS || o->mode == MODE_DRILL) {
        const char *m = o->mode == MODE_STATUS ? "--status" : "--restore-drill";
        if (nargs != 1) {
            fprintf(stderr, "replicate: %s takes one URL, the backup: replicate %s s3://BUCKET[/PREFIX]\n", m, m);
            return EXIT_USAGE;
        }
        o->dst_url = args[0];
    } else {
        if (nargs != 2) {
            fprintf(stderr, "replicate: %s\nUsage: replicate [OPTIONS] s3://SRC-BUCKET[/PREFIX] s3://DST-BUCKET[/PREFIX]\n"
                            "Try 'replicate --help'.\n",
                    nargs < 2 ? "need a source and a target URL" : "too many arguments");
            return EXIT_USAGE;
        }
        o->src_url = args[0];
        o->dst_url = args[1];
        if (cli_parse_s3_url(o->src_url, &o->src_bucket, &o->src_prefix, err, sizeof err) != 0) {
            fprintf(stderr, "replicate: source: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (cli_parse_s3_url(o->dst_url, &o->dst_bucket, &o->dst_prefix, err, sizeof err) != 0) {
        fprintf(stderr, "replicate: target: %s\n", err);
        return EXIT_USAGE;
    }
    return 0;
}

/* Options that go together, exclude each other, or belong to one mode; --shards resolved from the pod's index. */
static int check_combinations(struct rep_options *o, const struct parse_state *ps)
{
    if ((o->maint_on == NULL) != (o->maint_off == NULL)) {
        fprintf(stderr, "replicate: --maintenance-on and --maintenance-off go together\n");
        return EXIT_USAGE;
    }
    if (o->maint_file && o->maint_on) {
        fprintf(stderr, "replicate: use either --maintenance-file or --maintenance-on/--maintenance-off, not both\n");
        return EXIT_USAGE;
    }
    if (o->shard_n && (o->start_after || o->end_before)) {
        fprintf(stderr, "replicate: --shard and --start-after/--end-before exclude each other\n");
        return EXIT_USAGE;
    }
    if (o->part_size && o->part_size > o->max_memory) o->max_memory = o->part_size;
    if (ps->shards) { /* --shards N: this pod's shard is JOB_COMPLETION_INDEX */
        if (o->shard_n) return bad("--shard and --shards exclude each other (--shards N means --shard auto/N)");
        int i = job_index();
        if (i == -2) return EXIT_USAGE;
        if (i == -1) return bad("--shards N takes the shard from JOB_COMPLETION_INDEX, which is not set (give --shard I/N)");
        if (i >= ps->shards) return bad("JOB_COMPLETION_INDEX=%d is not below --shards %d", i, ps->shards);
        o->shard_i = i;
        o->shard_n = ps->shards;
    }
    /* the key range itself comes from the backup's key sample, once connected (shard.c) */
    if (o->shard_n && o->mode != MODE_REPLICATE)
        return bad("--shard and --shards go with a backup run; --status and --verify read every shard of a run");
    /* a restore writes a live bucket, not a backup: locking it would make the restored data undeletable */
    if (o->retain > 0 && o->mode == MODE_RESTORE)
        return bad("--retain goes with a backup run: a restore writes a live bucket, which it must not lock "
                   "(leave --retain out)");
    if (o->retain > 0 && o->mode != MODE_REPLICATE)
        return bad("--retain goes with a backup run, not with %s (it writes no backup data)",
                   o->mode == MODE_DRILL ? "--restore-drill" : o->mode == MODE_VERIFY ? "--verify" : "--status");
    if (o->retain_mode_given && !(o->retain > 0)) return bad("--retain-mode goes with --retain DURATION");
    if (o->shared_run_id && o->mode != MODE_REPLICATE)
        return bad("--run-id names a backup run (to read one, use --run with --restore or --restore-drill)");
    return 0;
}

int cli_parse(int argc, char **argv, struct rep_options *o)
{
    memset(o, 0, sizeof *o);
    o->src_req.path_style = o->dst_req.path_style = -1;
    o->jobs = 64;
    o->settle = 10;
    o->max_passes = 5;
    o->multipart_threshold = 8u << 20;
    o->copy_threshold = 5ull << 30;
    o->max_memory = 64u << 20;
    o->grace = 2;
    o->maint_max = 600;
    o->sample = 100;
    o->timeout = 60;
    o->retries = 10;
    o->lease = 300;
    o->progress = isatty(STDERR_FILENO);
    struct parse_state st = {.path_style = -1}, *ps = &st;
    int (*const groups[])(int, struct rep_options *, struct parse_state *) = {opt_connection, opt_copy, opt_modes,
                                                                             opt_run, opt_output};
    int c;
    optind = 0; /* 0, not 1: glibc then resets all of getopt's state */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":j:nqvh", long_opts, NULL)) != -1) {
        int rc = OPT_NOT_MINE;
        for (size_t g = 0; rc == OPT_NOT_MINE && g < sizeof groups / sizeof *groups; g++) rc = groups[g](c, o, ps);
        if (rc != OPT_NOT_MINE) {
            if (rc) return rc;
            continue;
        }
        switch (c) {
        case 'h': cli_usage(stdout); return -1;
        case OPT_VERSION: printf("replicate %s\n", REPLICATE_VERSION); return -1;
        case ':': return bad("option %s needs a value", argv[optind - 1]);
        default: return bad("unknown option %s", argv[optind - 1]);
        }
    }
    share_side_options(o, ps);
    int rc = check_restore_options(o);
    if (!rc) rc = parse_operands(argc - optind, argv + optind, o);
    return rc ? rc : check_combinations(o, ps);
}

void cli_options_free(struct rep_options *o)
{
    free(o->shard_start_after);
    free(o->shard_end_before);
    free(o->src_bucket);
    free(o->src_prefix);
    free(o->dst_bucket);
    free(o->dst_prefix);
}
