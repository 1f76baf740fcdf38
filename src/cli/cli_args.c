/*  cli_args — the values on the zcluster command line, read one way.

    strtoll and strtod alone accept too much for a command line (leading
    blanks, hex, "inf", an exponent): the digits are checked first, and the
    C library only converts what passed.
*/
#include "cli_args.h"
#include "cli.h"

#include <errno.h>
#include <sys/stat.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_args_number(const char *text, int64_t min, int64_t max, int64_t *value)
{
    if (!text) return -1;
    const char *digits = text + (text[0] == '-' || text[0] == '+');
    if (*digits < '0' || *digits > '9') return -1;
    char *end;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno || *end || n < min || n > max) return -1;
    *value = n;
    return 0;
}

int cli_args_duration(const char *text, int64_t max_ms, int64_t *ms)
{
    if (!text) return -1;
    size_t number = strspn(text, "0123456789.");
    if (number == 0 || strspn(text, ".") == number) return -1;
    const char *unit = text + number;
    double scale = !*unit || !strcmp(unit, "ms") ? 1
                   : !strcmp(unit, "s")          ? 1000
                   : !strcmp(unit, "m")          ? 60000
                                                 : -1;
    char *end;
    double value = strtod(text, &end);
    if (scale < 0 || end != unit || !isfinite(value) || value * scale > (double)max_ms) return -1;
    *ms = (int64_t)(value * scale);
    return 0;
}

int cli_args_size(const char *text, int64_t min, int64_t max, int64_t *bytes)
{
    if (!text) return -1;
    size_t digits = strspn(text, "0123456789");
    const char *unit = text + digits;
    int64_t scale = !*unit                                     ? 1
                    : !strcmp(unit, "k") || !strcmp(unit, "K") ? 1024
                    : !strcmp(unit, "M")                       ? 1024 * 1024
                    : !strcmp(unit, "G")                       ? 1024 * 1024 * 1024
                                                               : 0;
    if (digits == 0 || digits > 18 || scale == 0) return -1;
    int64_t count = strtoll(text, NULL, 10); //  18 digits cannot overflow
    if (count > max / scale || count * scale < min) return -1;
    *bytes = count * scale;
    return 0;
}

//  The URL --redis-file names, kept for the process's life.
static char s_redis_from_file[1100];

//  Takes --redis-file, or refuses a --redis that holds credentials.
//  Returns -1 to go on, or the exit code.
static int s_redis_option(cli_cluster_t *where, const char *command, int option, const char *value)
{
    if (option == CLI_OPT_REDIS_FILE) {
        if (cli_args_secret_file(command, "--redis-file", value, s_redis_from_file,
                                 sizeof s_redis_from_file))
            return CLI_USAGE;
        where->redis = s_redis_from_file;
    } else if (where->redis == value && cli_args_url_has_secret(value)) {
        fprintf(stderr,
                "zcluster %s: --redis holds a password, which `ps` shows to every user: set "
                "ZC_REDIS_URL or use --redis-file FILE\n",
                command);
        return CLI_USAGE;
    }
    return -1;
}

int cli_args_parse(const cli_args_t *self, int argc, char **argv)
{
    int option, rc;
    optind = 1;
    while ((option = getopt_long(argc, argv, self->shortopts, self->options, NULL)) != -1) {
        if (self->where && (option == CLI_OPT_REDIS_FILE ||
                            cli_cluster_option(self->where, option, optarg, self->letters))) {
            if ((rc = s_redis_option(self->where, argv[0], option, optarg)) >= 0) return rc;
            continue;
        }
        if (option == 'h' || option == '?' || !self->take)
            return cli_args_usage(option, self->usage);
        if ((rc = self->take(self->self, option, optarg)) >= 0) return rc;
    }
    return -1;
}

int cli_args_usage(int option, void (*usage)(FILE *out))
{
    usage(option == 'h' ? stdout : stderr);
    return option == 'h' ? 0 : CLI_USAGE;
}

int cli_args_none_left(const char *command, int argc, char **argv)
{
    if (optind >= argc) return 0;
    fprintf(stderr, "zcluster %s: unexpected argument '%s'\n", command, argv[optind]);
    return CLI_USAGE;
}

//  --------------------------------------------------------------------------
//  The options of every cluster command

int cli_cluster_option(cli_cluster_t *self, int option, const char *value, const char *letters)
{
    const char **fields[] = {&self->redis, &self->cluster, &self->id, &self->keys};
    size_t short_count = letters ? strlen(letters) : 0;
    for (size_t i = 0; i < 4; i++)
        if (option == CLI_OPT_REDIS + (int)i ||
            (i < short_count && letters[i] != ' ' && option == letters[i])) {
            *fields[i] = value;
            if (fields[i] == &self->keys) setenv("ZC_KEYS", value, 1);
            return 1;
        }
    return 0;
}

const char *cli_cluster_redis(const cli_cluster_t *self)
{
    const char *url = self->redis ? self->redis : getenv("ZC_REDIS_URL");
    return url && *url ? url : NULL;
}

const char *cli_cluster_id(const cli_cluster_t *self)
{
    const char *id = self->id ? self->id : getenv("ZC_NODE_ID");
    return id && *id ? id : NULL;
}

const char *cli_cluster_need_redis(const cli_cluster_t *self, const char *command)
{
    const char *url = cli_cluster_redis(self);
    if (!url)
        fprintf(stderr, "zcluster %s: no Redis: give --redis URL or set ZC_REDIS_URL\n", command);
    return url;
}

int cli_membership_option(const char *command, int option, const char *value)
{
    static const struct {
        int option;
        const char *name, *env;
        int64_t min; //  0: an address
    } settings[] = {{CLI_OPT_BIND, "--bind", "ZC_BIND", 0},
                    {CLI_OPT_ADVERTISE, "--advertise", "ZC_ADVERTISE", 0},
                    {CLI_OPT_LEASE_TTL, "--lease-ttl", "ZC_LEASE_TTL", 300},
                    {CLI_OPT_HEARTBEAT_IVL, "--heartbeat-interval", "ZC_HEARTBEAT_INTERVAL", 10},
                    {CLI_OPT_HEARTBEAT_TIMEOUT, "--heartbeat-timeout", "ZC_HEARTBEAT_TIMEOUT", 10}};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        if (option != settings[i].option) continue;
        int64_t ms;
        int bad = settings[i].min ? cli_args_number(value, settings[i].min, 3600000, &ms) != 0
                                  : !*value || strlen(value) > 253 || strpbrk(value, "/ \t");
        if (bad) {
            if (settings[i].min)
                fprintf(stderr, "zcluster %s: %s must be at least %d ms (and at most 3600000)\n",
                        command, settings[i].name, (int)settings[i].min);
            else
                fprintf(stderr, "zcluster %s: %s takes a host name or IP address\n", command,
                        settings[i].name);
            return CLI_USAGE;
        }
        setenv(settings[i].env, value, 1);
        return 1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Secrets

int cli_args_secret_file(const char *command, const char *option, const char *path, char *out,
                         size_t cap)
{
    const char *why = NULL;
    struct stat st;
    FILE *f = fopen(path, "r");
    if (!f)
        why = strerror(errno);
    else if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        why = "readable by group or others (chmod 600 it)";
    else if (!fgets(out, (int)cap, f) || (out[strcspn(out, "\r\n")] = 0, !*out))
        why = "empty";
    if (f) fclose(f);
    if (!why) return 0;
    explicit_bzero(out, cap);
    fprintf(stderr, "zcluster %s: %s %s: %s\n", command, option, path, why);
    return CLI_USAGE;
}

int cli_args_key_gone(const char *command)
{
    fprintf(stderr,
            "zcluster %s: --key KEY is gone (`ps` showed the key to every user): use --key-file "
            "FILE or $ZC_ADMIN_KEY\n",
            command);
    return CLI_USAGE;
}

int cli_args_url_has_secret(const char *url)
{
    return strchr(url, '@') != NULL;
}
