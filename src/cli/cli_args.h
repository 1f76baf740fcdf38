/*  cli_args — the values on the zcluster command line, read one way.

    Every subcommand parses numbers, durations and sizes with these, so a
    value like `--max-restarts abc` is refused everywhere (atoi would make
    it 0) and a rule is written once:
      number    a whole decimal integer with an optional sign, nothing
                before or after it: "5", "-1"
      duration  a decimal number, fractions allowed, with an optional unit:
                ms (the default), s or m: "250", "250ms", "1.5s", "1m"
      size      a whole number of bytes with an optional binary unit, k, M
                or G: "64", "4k", "1M"
    Each parser checks a range and returns 0, or -1 leaving *value alone;
    the caller says what is wrong in its own words (its usage names the
    range).

    Also here, once: the option loop of every command (getopt_long, --help,
    a bad option), the options every cluster command takes (--redis URL,
    --redis-file FILE, --cluster NAME, --id ID), and secrets read from
    files.

    Secrets never come from the command line, which every user sees in
    `ps`: a --redis URL with credentials in it is refused (give it in
    $ZC_REDIS_URL or in a file named by --redis-file), and keys come from
    files or the environment.
*/
#ifndef ZC_CLI_ARGS_H_INCLUDED
#define ZC_CLI_ARGS_H_INCLUDED

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

//  Parses a number (above) in min..max into *value. Returns 0 or -1.
int cli_args_number(const char *text, int64_t min, int64_t max, int64_t *value);

//  Parses a duration (above) of at most max_ms into *ms, rounded down to
//  whole milliseconds. Returns 0 or -1.
int cli_args_duration(const char *text, int64_t max_ms, int64_t *ms);

//  Parses a size (above) in min..max bytes into *bytes. Returns 0 or -1.
int cli_args_size(const char *text, int64_t min, int64_t max, int64_t *bytes);

//  --------------------------------------------------------------------------
//  Options: one loop for every command

//  The options every cluster command takes, as given (NULL: the option was
//  not given; each command applies its defaults): where the cluster is and
//  who this process is in it.
typedef struct {
    const char *redis;   //  --redis URL
    const char *cluster; //  --cluster NAME
    const char *id;      //  --id ID
    const char *keys;    //  --keys FILE (also put in $ZC_KEYS when taken)
} cli_cluster_t;

//  Takes one option of a command, as getopt_long returned it, with its
//  value. Returns -1 to go on, or the exit code to end with (after saying
//  what is wrong).
typedef int(cli_option_fn)(void *self, int option, const char *value);

//  A command's options and who takes them.
typedef struct {
    const char *shortopts;        //  getopt_long's
    const struct option *options; //  getopt_long's; the help option's code is 'h'
    void (*usage)(FILE *out);     //  for --help, and after a bad option
    cli_cluster_t *where;         //  takes the cluster options; NULL: none
    const char *letters;          //  their short letters (cli_cluster_option)
    cli_option_fn *take;          //  takes every other option; NULL: none
    void *self;                   //  for take
} cli_args_t;

//  Reads the options of argv (from argv[1], with getopt_long; optind is
//  then the first word after them). -h / --help prints the usage on stdout
//  (exit code 0); an unknown option, or one no one takes, prints it on
//  stderr (CLI_USAGE). Returns -1 to go on, or the exit code.
int cli_args_parse(const cli_args_t *self, int argc, char **argv);

//  Prints the usage for option: on stdout for 'h' (returns 0), else on
//  stderr (returns CLI_USAGE).
int cli_args_usage(int option, void (*usage)(FILE *out));

//  Says "zcluster COMMAND: unexpected argument 'ARG'" if argv has words
//  left after the options (from optind). Returns 0, or CLI_USAGE after
//  saying so.
int cli_args_none_left(const char *command, int argc, char **argv);

//  --------------------------------------------------------------------------
//  The options of every cluster command

//  Their getopt_long codes, outside the range of short options.
enum { CLI_OPT_REDIS = 0x1000, CLI_OPT_CLUSTER, CLI_OPT_ID, CLI_OPT_KEYS };
enum { CLI_OPT_REDIS_FILE = 0x1100 };

//  Their entries in a command's getopt_long table (CLI_OPTION_REDIS is two:
//  --redis and --redis-file).
#define CLI_OPTION_REDIS                                                                           \
    {"redis", required_argument, NULL, CLI_OPT_REDIS},                                             \
    {                                                                                              \
        "redis-file", required_argument, NULL, CLI_OPT_REDIS_FILE                                  \
    }
#define CLI_OPTION_CLUSTER                                                                         \
    {                                                                                              \
        "cluster", required_argument, NULL, CLI_OPT_CLUSTER                                        \
    }
#define CLI_OPTION_ID                                                                              \
    {                                                                                              \
        "id", required_argument, NULL, CLI_OPT_ID                                                  \
    }
#define CLI_OPTION_KEYS                                                                            \
    {                                                                                              \
        "keys", required_argument, NULL, CLI_OPT_KEYS                                              \
    }

//  The membership settings of every command that starts a node: --bind,
//  --advertise, --lease-ttl, --heartbeat-interval, --heartbeat-timeout.
enum {
    CLI_OPT_BIND = 0x1200,
    CLI_OPT_ADVERTISE,
    CLI_OPT_LEASE_TTL,
    CLI_OPT_HEARTBEAT_IVL,
    CLI_OPT_HEARTBEAT_TIMEOUT
};
#define CLI_OPTION_MEMBERSHIP                                                                      \
    {"bind", required_argument, NULL, CLI_OPT_BIND},                                               \
        {"advertise", required_argument, NULL, CLI_OPT_ADVERTISE},                                 \
        {"lease-ttl", required_argument, NULL, CLI_OPT_LEASE_TTL},                                 \
        {"heartbeat-interval", required_argument, NULL, CLI_OPT_HEARTBEAT_IVL},                    \
    {                                                                                              \
        "heartbeat-timeout", required_argument, NULL, CLI_OPT_HEARTBEAT_TIMEOUT                    \
    }
//  Their lines in a command's usage.
#define CLI_USAGE_MEMBERSHIP                                                                       \
    "      --bind HOST          address the node binds (IP, name or interface; 0.0.0.0:\n"         \
    "                           every interface; default 127.0.0.1, or $ZC_BIND)\n"                \
    "      --advertise HOST     host name or IP peers connect to (default: the bound\n"            \
    "                           address, or $ZC_ADVERTISE)\n"                                      \
    "      --lease-ttl MS       registry lease (default 2000, or $ZC_LEASE_TTL)\n"                 \
    "      --heartbeat-interval MS, --heartbeat-timeout MS\n"                                      \
    "                           heartbeats to each peer (default 10000 / 20000, or\n"              \
    "                           $ZC_HEARTBEAT_INTERVAL / $ZC_HEARTBEAT_TIMEOUT)\n"

//  Takes one of the membership options: checks its value and puts it in
//  the environment ($ZC_BIND, $ZC_ADVERTISE, $ZC_LEASE_TTL,
//  $ZC_HEARTBEAT_INTERVAL, $ZC_HEARTBEAT_TIMEOUT), where every node this
//  process creates, and every worker it starts, takes it as its default.
//  Returns 1 if taken, 0 if option is another one, or CLI_USAGE after
//  saying what is wrong.
int cli_membership_option(const char *command, int option, const char *value);

//  Takes option (as getopt_long returned it, with its value) into *self
//  if it is one of the four: by its CLI_OPT_ code, or by the short letter
//  the command gives it in letters, in the order redis, cluster, id, keys
//  ("rci": -r, -c and -i; a space for none; letters may be NULL). Returns 1
//  if taken, 0 if option is another one. --keys FILE also sets $ZC_KEYS,
//  the default of every mesh and node (zc_security_load), so that each
//  node this process creates, and each worker it starts, uses the file:
//  its path travels in the environment, the key never on a command line.
int cli_cluster_option(cli_cluster_t *self, int option, const char *value, const char *letters);

//  The Redis URL: --redis (or the first line of --redis-file) if given,
//  else $ZC_REDIS_URL. NULL if that is
//  missing or empty (a bare --redis "" says: no Redis).
const char *cli_cluster_redis(const cli_cluster_t *self);

//  The node id: --id if given, else $ZC_NODE_ID (where a master puts its
//  worker's id). NULL if that is missing or empty: the library generates
//  one.
const char *cli_cluster_id(const cli_cluster_t *self);

//  The Redis URL as cli_cluster_redis, or NULL after saying "zcluster
//  COMMAND: no Redis: give --redis URL or set ZC_REDIS_URL".
const char *cli_cluster_need_redis(const cli_cluster_t *self, const char *command);

//  --------------------------------------------------------------------------
//  Secrets

//  Reads the first line of the file at path (a key, a URL with a password)
//  into out. Refuses a file that group or others may read, or an empty
//  one. Returns 0, or CLI_USAGE after saying "zcluster COMMAND: OPTION
//  FILE: why" (never the content).
int cli_args_secret_file(const char *command, const char *option, const char *path, char *out,
                         size_t cap);

//  Refuses the old `--key KEY` (listed as an option of its own, so that
//  getopt does not take it for an abbreviation of --key-file and print the
//  key as a file name). Returns CLI_USAGE after saying what to use.
int cli_args_key_gone(const char *command);

//  Returns 1 if url carries credentials (anything before an '@').
int cli_args_url_has_secret(const char *url);

#endif
