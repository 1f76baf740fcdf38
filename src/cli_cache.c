/*  zcluster cache — not built yet. */
#include "cli.h"

#include <stdio.h>

int cli_cache(int argc, char **argv)
{
    fprintf(stderr, "zcluster cache: not available in this build\n");
    return 1;
}
