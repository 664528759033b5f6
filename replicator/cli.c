/* Command-line parsing and --help. */
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

void cli_usage(FILE *f)
{
    fputs(
"Usage: replicate [OPTIONS] s3://SRC-BUCKET[/PREFIX] s3://DST-BUCKET[/PREFIX]\n"
"       replicate --verify [OPTIONS] s3://SRC-BUCKET[/PREFIX] s3://DST-BUCKET[/PREFIX]\n"
"       replicate --status [--max-age DURATION] [--max-drill-age DURATION] [OPTIONS] s3://DST-BUCKET[/PREFIX]\n"
"       replicate --restore [--run RUN-ID | --at TIME] [--only-missing | --overwrite] [--dry-run] [--json]\n"
"                 s3://BACKUP[/PREFIX] s3://DEST[/PREFIX]\n"
"       replicate --restore-drill [--run RUN-ID | --at TIME] [--sample PERCENT] s3://BACKUP[/PREFIX]\n"
"\n"
"Backs up an S3 bucket (or a prefix of it) into a versioned target bucket that is never deleted from.\n"
"It lists both sides, copies what is missing or different (server-side when both sides share an endpoint\n"
"and credentials, streamed otherwise), then repeats delta passes until a pass takes no longer than\n"
"--settle seconds, so the window in which a write can be missed shrinks to seconds. With a maintenance\n"
"flag, one more pass runs while the app is in maintenance mode and the backup is exact.\n"
"\n"
"Endpoints and credentials (each side separately; the AWS environment and profiles by default):\n"
"  --source-profile NAME    --target-profile NAME     profile in ~/.aws/credentials and ~/.aws/config\n"
"  --source-endpoint URL    --target-endpoint URL     e.g. https://s3.eu-central-003.backblazeb2.com\n"
"  --source-region REGION   --target-region REGION\n"
"  --profile NAME --endpoint URL --region REGION     the same for both sides\n"
"  --path-style | --virtual-hosted                  addressing (default: path-style for custom endpoints)\n"
"  --source-ca-bundle FILE  --target-ca-bundle FILE  PEM file of the CAs to trust for https (a private CA);\n"
"  --ca-bundle FILE                                 else AWS_CA_BUNDLE, else ca_bundle in the profile\n"
"  --insecure                                       do not verify TLS certificates (tests only; says so)\n"
"  Environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_DEFAULT_REGION,\n"
"  AWS_ENDPOINT_URL, AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_CA_BUNDLE.\n"
"\n"
"Copying:\n"
"  -j, --jobs N             objects copied at once (default 64): the ceiling; an endpoint that answers\n"
"                           SlowDown/503 gets fewer (halved per burst, grown back one at a time)\n"
"  --settle SECONDS         stop when a pass took at most this long (default 10)\n"
"  --max-passes N           give up after N passes: exit 4, \"did not converge\" (default 5)\n"
"  --part-size SIZE         multipart part size (default 8MiB, grown to stay within 10,000 parts)\n"
"  --multipart-threshold SIZE  streamed copies above this use multipart (default 8MiB)\n"
"  --copy-threshold SIZE    server-side copies above this use UploadPartCopy (default 5GiB)\n"
"  --max-memory SIZE        budget for object data held in memory at once (default 64MiB)\n"
"  --timeout SECONDS        a transfer with no progress for this long is retried (default 60)\n"
"  --retries N              attempts per request, with backoff and jitter (default 10)\n"
"  --list-ranges N          list the key space in N parallel ranges on delta passes (default auto)\n"
"  --start-after KEY --end-before KEY   copy only keys in this range (for sharding)\n"
"  --shard I/N              copy shard I of N (0-based, N <= 4096): ranges of about equal object counts,\n"
"                           from the key sample the backup stores (.replicate/ranges.json; the first run\n"
"                           lists the source once to take it); run N processes for N shards\n"
"  --shard auto/N, --shards N  the same, I from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job's pods)\n"
"  --run-id ID              the run id (letters, digits, '-', '_'; it should sort by time) that the shards\n"
"                           of one job share: they cut the key space where the first one did, and --status\n"
"                           and --verify read them as one run, naming a shard that is missing or failed\n"
"  --no-tags                copy objects without their tags (tags are copied by default)\n"
"  --skip-archived          objects in GLACIER or DEEP_ARCHIVE (unreadable until restored) do not fail the\n"
"                           run: they are still named and counted (objects_archived), and not copied\n"
"  --storage-class CLASS    write every object in this storage class (STANDARD_IA, GLACIER_IR, ...; the\n"
"                           target's provider must offer it)\n"
"  -n, --dry-run            list and compare, print what would be copied, write nothing\n"
"\n"
"Target safety (the target must be versioned; nothing is ever deleted on either side):\n"
"  --allow-unversioned      accept a target without versioning (overwrites then lose old data!)\n"
"  --enable-versioning      turn versioning on for the target if it is off\n"
"  --init-target            accept a non-empty target that has no .replicate/marker yet\n"
"  --source-is-replica      accept a source that is itself a replica (has .replicate/marker)\n"
"  --lease DURATION         the run's lease on the target (.replicate/lease: host, pid, run id), renewed while\n"
"                           it runs: a run from another host or state dir is refused (exit 3) until it is\n"
"                           released or, if its run died, expires (default 5m)\n"
"  --retain DURATION        write every version (and the run's manifest) with Object Lock retention until\n"
"                           now + DURATION (30d, 12h, 90m, 2w, 1y = 365d; a unit is required), so not even\n"
"                           the backup's credentials can delete it before then; the target bucket must have\n"
"                           been created with Object Lock enabled (else refused, exit 3)\n"
"  --retain-mode MODE       governance (default: lifted early only with s3:BypassGovernanceRetention) or\n"
"                           compliance (nobody, not even the account's root user, can shorten or remove it)\n"
"\n"
"Maintenance flag around the final pass:\n"
"  --maintenance-file PATH  create PATH to switch the app into maintenance, remove it afterwards\n"
"  --maintenance-on CMD     run CMD (sh -c) to switch maintenance on; --maintenance-off CMD to switch off\n"
"  --grace SECONDS          wait after switching on, for in-flight writes (default 2)\n"
"  --maintenance-max SECONDS  hard cap on how long the flag stays on (default 600)\n"
"\n"
"Audit and freshness:\n"
"  --verify                 compare target with source (and the latest manifest); exit 5 on discrepancies\n"
"  --deep                   with --verify: read both sides and compare content hashes, and tags\n"
"                           (unless --no-tags)\n"
"  --sample PERCENT         with --deep: read only a random sample\n"
"  --status                 print the last run recorded in the target; with --max-age DURATION (26h, 7d)\n"
"                           exit 6 when the last successful run is older or missing\n"
"  --max-drill-age DURATION  with --status: exit 6 when the last clean restore drill is older or missing\n"
"  --metrics-file PATH      write Prometheus textfile metrics at the end (a failed run keeps the last\n"
"                           success's timestamp; with --restore-drill, the drill's)\n"
"\n"
"Restore (the first URL, the backup, is only read; source-side options apply to it, target-side to DEST):\n"
"  --restore                give DEST back the source as it was when a recorded run ended: each key's\n"
"                           recorded version, without keys deleted before then or created after\n"
"  --run RUN-ID             restore that run (run_id in --json, listed by --status; default: the latest\n"
"                           successful run)\n"
"  --at TIME                the latest successful run that ended at or before TIME (2026-12-01T09:30:00Z,\n"
"                           or an age: 90m, 2d)\n"
"  --only-missing           write only what DEST lacks; objects there with other content are left alone\n"
"  --overwrite              also rewrite objects in DEST whose content differs (DEST must be versioned,\n"
"                           unless --allow-unversioned); without either, such conflicts refuse (exit 3)\n"
"  --restore-drill          read the restore point's recorded versions back from the backup (all, or\n"
"                           --sample PERCENT) and check them against the manifest; exit 5 on discrepancies;\n"
"                           the drill is recorded in the backup's .replicate/drills/ (its only write)\n"
"\n"
"Reporting:\n"
"  --json                   one JSON summary on stdout at the end\n"
"  -q, --quiet              only errors      -v, --verbose  more detail (-vv: every request)\n"
"  --no-progress            no progress line even on a terminal\n"
"  --log-format FORMAT      stderr as human lines (human, the default) or one JSON object per line (json:\n"
"                           time, level, event, message, key, fields; with --json, stdout has the summary)\n"
"  --state-dir DIR          manifests and locks (default $XDG_STATE_HOME/replicate or ~/.local/state/replicate)\n"
"  --notify-cmd CMD         on failure, run CMD with the JSON summary on stdin\n"
"  --notify-url URL         on failure, POST a Slack-compatible message to URL\n"
"                           (both say why: first error, what to do, host, run id, exit code and meaning)\n"
"  -h, --help  --version\n"
"\n"
"Exit codes:\n"
"  0 done   1 some objects failed (they are named) or the run failed   2 usage or configuration error\n"
"  3 refused for safety (unversioned target, swapped arguments, target locked, --retain on a target without\n"
"    Object Lock)   4 did not converge\n"
"  5 verify or drill found discrepancies   6 status: last successful run (or clean drill) missing or too old\n"
"  130 interrupted\n",
        f);
}

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
    const char *profile = NULL, *endpoint = NULL, *region = NULL, *ca_bundle = NULL;
    int path_style = -1, shards = 0;
    bool insecure = false;
    long v;
    double d;
    int c;
    optind = 0; /* 0, not 1: glibc then resets all of getopt's state */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":j:nqvh", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_SRC_PROFILE: o->src_req.profile = optarg; break;
        case OPT_DST_PROFILE: o->dst_req.profile = optarg; break;
        case OPT_SRC_ENDPOINT: o->src_req.endpoint = optarg; break;
        case OPT_DST_ENDPOINT: o->dst_req.endpoint = optarg; break;
        case OPT_SRC_REGION: o->src_req.region = optarg; break;
        case OPT_DST_REGION: o->dst_req.region = optarg; break;
        case OPT_PROFILE: profile = optarg; break;
        case OPT_ENDPOINT: endpoint = optarg; break;
        case OPT_REGION: region = optarg; break;
        case OPT_PATH_STYLE: path_style = 1; break;
        case OPT_VHOST: path_style = 0; break;
        case OPT_INSECURE: insecure = true; break;
        case OPT_SRC_CA: o->src_req.ca_bundle = optarg; break;
        case OPT_DST_CA: o->dst_req.ca_bundle = optarg; break;
        case OPT_CA: ca_bundle = optarg; break;
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
        case 'n': o->dry_run = true; break;
        case OPT_JSON: o->json = true; break;
        case 'q': o->quiet = true; break;
        case 'v': o->verbose++; break;
        case OPT_NO_PROGRESS: o->progress = false; break;
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
            shards = (int)v;
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
        case OPT_TIMEOUT:
            if (parse_int(optarg, 1, 86400, &v)) return bad("--timeout needs seconds, not \"%s\"", optarg);
            o->timeout = v;
            break;
        case OPT_RETRIES:
            if (parse_int(optarg, 1, 100, &v)) return bad("--retries needs a number from 1 to 100, not \"%s\"", optarg);
            o->retries = (int)v;
            break;
        case OPT_LIST_RANGES:
            if (parse_int(optarg, 1, 256, &v)) return bad("--list-ranges needs a number from 1 to 256, not \"%s\"", optarg);
            o->list_ranges = (int)v;
            break;
        case OPT_METRICS: o->metrics_file = optarg; break;
        case OPT_RESTORE: o->mode = MODE_RESTORE; break;
        case OPT_DRILL: o->mode = MODE_DRILL; break;
        case OPT_RUN: o->run_id = optarg; break;
        case OPT_AT:
            if ((o->at = cli_parse_time(optarg, (double)time(NULL))) < 0)
                return bad("--at needs a time like 2026-12-01T09:30:00Z or an age like 90m or 2d, not \"%s\"", optarg);
            o->at_given = true;
            break;
        case OPT_ONLY_MISSING: o->only_missing = true; break;
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
        case OPT_OVERWRITE: o->overwrite = true; break;
        case OPT_MAX_DRILL_AGE:
            if ((d = cli_parse_duration(optarg)) <= 0)
                return bad("--max-drill-age needs a duration like 30d, not \"%s\"", optarg);
            o->max_drill_age = d;
            break;
        case OPT_LEASE:
            if ((d = cli_parse_duration(optarg)) < 3 || d > 86400)
                return bad("--lease needs a duration from 3s to 24h, like 5m, not \"%s\"", optarg);
            o->lease = d;
            break;
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
        case OPT_LOG_FORMAT:
            if (strcmp(optarg, "json") == 0) o->log_json = true;
            else if (strcmp(optarg, "human") == 0) o->log_json = false;
            else return bad("--log-format is human or json, not \"%s\"", optarg);
            break;
        case 'h': cli_usage(stdout); return -1;
        case OPT_VERSION: printf("replicate %s\n", REPLICATE_VERSION); return -1;
        case ':': return bad("option %s needs a value", argv[optind - 1]);
        default: return bad("unknown option %s", argv[optind - 1]);
        }
    }
    /* --profile/--endpoint/--region apply to both sides unless a side-specific one was given */
    if (!o->src_req.profile) o->src_req.profile = profile;
    if (!o->dst_req.profile) o->dst_req.profile = profile;
    if (!o->src_req.endpoint) o->src_req.endpoint = endpoint;
    if (!o->dst_req.endpoint) o->dst_req.endpoint = endpoint;
    if (!o->src_req.region) o->src_req.region = region;
    if (!o->dst_req.region) o->dst_req.region = region;
    o->src_req.path_style = o->dst_req.path_style = path_style;
    o->src_req.insecure = o->dst_req.insecure = insecure;
    o->src_req.ca_option = o->src_req.ca_bundle ? "--source-ca-bundle" : "--ca-bundle";
    o->dst_req.ca_option = o->dst_req.ca_bundle ? "--target-ca-bundle" : "--ca-bundle";
    if (!o->src_req.ca_bundle) o->src_req.ca_bundle = ca_bundle;
    if (!o->dst_req.ca_bundle) o->dst_req.ca_bundle = ca_bundle;
    if (o->quiet || o->json || o->log_json) o->progress = false;

    int nargs = argc - optind;
    char err[512];
    if (o->run_id && o->at_given) return bad("--run and --at exclude each other");
    if (o->only_missing && o->overwrite) return bad("--only-missing and --overwrite exclude each other");
    if ((o->run_id || o->at_given) && o->mode != MODE_RESTORE && o->mode != MODE_DRILL)
        return bad("--run and --at go with --restore or --restore-drill");
    if ((o->only_missing || o->overwrite) && o->mode != MODE_RESTORE)
        return bad("--only-missing and --overwrite go with --restore");
    if (o->mode == MODE_STATUS || o->mode == MODE_DRILL) {
        const char *m = o->mode == MODE_STATUS ? "--status" : "--restore-drill";
        if (nargs != 1) {
            fprintf(stderr, "replicate: %s takes one URL, the backup: replicate %s s3://BUCKET[/PREFIX]\n", m, m);
            return EXIT_USAGE;
        }
        o->dst_url = argv[optind];
    } else {
        if (nargs != 2) {
            fprintf(stderr, "replicate: %s\nUsage: replicate [OPTIONS] s3://SRC-BUCKET[/PREFIX] s3://DST-BUCKET[/PREFIX]\n"
                            "Try 'replicate --help'.\n",
                    nargs < 2 ? "need a source and a target URL" : "too many arguments");
            return EXIT_USAGE;
        }
        o->src_url = argv[optind];
        o->dst_url = argv[optind + 1];
        if (cli_parse_s3_url(o->src_url, &o->src_bucket, &o->src_prefix, err, sizeof err) != 0) {
            fprintf(stderr, "replicate: source: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (cli_parse_s3_url(o->dst_url, &o->dst_bucket, &o->dst_prefix, err, sizeof err) != 0) {
        fprintf(stderr, "replicate: target: %s\n", err);
        return EXIT_USAGE;
    }
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
    if (shards) { /* --shards N: this pod's shard is JOB_COMPLETION_INDEX */
        if (o->shard_n) return bad("--shard and --shards exclude each other (--shards N means --shard auto/N)");
        int i = job_index();
        if (i == -2) return EXIT_USAGE;
        if (i == -1) return bad("--shards N takes the shard from JOB_COMPLETION_INDEX, which is not set (give --shard I/N)");
        if (i >= shards) return bad("JOB_COMPLETION_INDEX=%d is not below --shards %d", i, shards);
        o->shard_i = i;
        o->shard_n = shards;
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

void cli_options_free(struct rep_options *o)
{
    free(o->shard_start_after);
    free(o->shard_end_before);
    free(o->src_bucket);
    free(o->src_prefix);
    free(o->dst_bucket);
    free(o->dst_prefix);
}
