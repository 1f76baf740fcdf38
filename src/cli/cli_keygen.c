/*  zcluster keygen — writes a cluster's credentials file.

    One key pair per cluster (docs/SECURITY.md): every member is given the
    same file, by path (--keys FILE or ZC_KEYS), never the key itself. The
    file is created, never replaced, with mode 0600; the key is printed
    nowhere.
*/
#include "cli.h"
#include "cli_args.h"
#include "zc_security.h"

#include <stdio.h>
#include <string.h>

#define KEYGEN_DEFAULT_FILE "zcluster.keys"

//  Prints the usage to out.
static void s_usage(FILE *out)
{
    fprintf(out, "usage: zcluster keygen [-o FILE]\n\n"
                 "Writes a new cluster key pair (CURVE) to FILE (default " KEYGEN_DEFAULT_FILE
                 "), created\n"
                 "with mode 0600; an existing file is never replaced. Give every node of the\n"
                 "cluster the file's path with --keys FILE or ZC_KEYS=FILE: nodes then accept\n"
                 "only peers holding the same pair. A node refuses a file that group or others\n"
                 "may read or write.\n");
}

//  Takes -o FILE into *(const char **)self (cli_option_fn).
static int s_option(void *self, int option, const char *value)
{
    if (option != 'o') return cli_args_usage(option, s_usage);
    *(const char **)self = value;
    return -1;
}

int cli_keygen(int argc, char **argv)
{
    static struct option options[] = {
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = KEYGEN_DEFAULT_FILE;
    cli_args_t args = {"o:h", options, s_usage, NULL, NULL, s_option, &path};
    int rc = cli_args_parse(&args, argc, argv);
    if (rc >= 0) return rc;
    if (cli_args_none_left("keygen", argc, argv)) return CLI_USAGE;
    zc_security_t *security = zc_security_new();
    if (!security || zc_security_set_curve(security, NULL, NULL)) {
        fprintf(stderr, "zcluster keygen: libzmq has no CURVE support\n");
        zc_security_destroy(&security);
        return 1;
    }
    rc = zc_security_save(security, path);
    if (rc)
        fprintf(stderr, "zcluster keygen: %s\n", zc_security_errstr(security));
    else
        printf("wrote %s (public key %s)\n", path, zc_security_public_key(security));
    zc_security_destroy(&security);
    return rc ? 1 : 0;
}
