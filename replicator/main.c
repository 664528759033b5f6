/* replicate: back up an S3 bucket into a versioned, never-deleted target. */
#include <signal.h>
#include <stdio.h>
#include "replicator/options.h"
#include "replicator/restore.h"
#include "replicator/run.h"
#include "replicator/verify.h"
#include "s3/log.h"

int main(int argc, char **argv)
{
    struct rep_options o;
    int rc = cli_parse(argc, argv, &o);
    if (rc != 0) {
        cli_options_free(&o);
        return rc < 0 ? EXIT_OK : rc;
    }
    enum s3_log_level lvl = o.quiet ? S3_LOG_ERROR : S3_LOG_WARN;
    if (o.verbose == 1) lvl = S3_LOG_INFO;
    else if (o.verbose == 2) lvl = S3_LOG_DEBUG;
    else if (o.verbose >= 3) lvl = S3_LOG_TRACE;
    s3_log_set(lvl, NULL, NULL);
    s3_log_set_format(o.log_json ? S3_LOG_FORMAT_JSON : S3_LOG_FORMAT_HUMAN);
    signal(SIGPIPE, SIG_IGN);
    switch (o.mode) {
    case MODE_VERIFY: rc = run_verify(&o); break;
    case MODE_STATUS: rc = run_status(&o); break;
    case MODE_RESTORE: rc = run_restore(&o); break;
    case MODE_DRILL: rc = run_drill(&o); break;
    default: rc = run_replicate(&o); break;
    }
    cli_options_free(&o);
    return rc;
}
