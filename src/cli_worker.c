/*  zcluster worker — not built yet. */
#include "cli.h"

#include <stdio.h>

int cli_worker(int argc, char **argv)
{
    fprintf(stderr, "zcluster worker: not available in this build\n");
    return 1;
}
