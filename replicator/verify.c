/* --verify and --status (stubs until implemented). */
#include <stdio.h>
#include "replicator/verify.h"

int run_verify(const struct rep_options *o)
{
    (void)o;
    fprintf(stderr, "replicate: --verify is not implemented yet\n");
    return EXIT_FAILED;
}

int run_status(const struct rep_options *o)
{
    (void)o;
    fprintf(stderr, "replicate: --status is not implemented yet\n");
    return EXIT_FAILED;
}
