/*  zcluster start — run a master that supervises groups of worker processes.

    A thin layer over zc_supervisor: options become settings, the program
    after `--` becomes the default group, each --group adds one. Options
    starting with --cluster- are not ours: like clustr-node's, they are
    passed on, as given, to every worker (write them as --cluster-x=VALUE so
    they stay one word). Durations take ms, s or m suffixes (bare numbers
    are ms).

    No secret is taken on the command line, where `ps` shows it: the admin
    key comes from --key-file or $ZC_ADMIN_KEY (else one is generated), a
    Redis password from $ZC_REDIS_URL or --redis-file (cli_args).
*/
#include "cli.h"
#include "cli_args.h"
#include "zc_log.h"
#include "zc_redis.h"
#include "zc_supervisor.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wordexp.h>

#define MAX_GROUPS 32

static void s_usage(FILE *out)
{
    fprintf(
        out,
        "usage: zcluster start [OPTIONS] -- PROGRAM [ARGS...]\n"
        "       zcluster start [OPTIONS] --group NAME:COUNT:COMMAND... [-- PROGRAM [ARGS...]]\n\n"
        "Runs a master that spawns the workers, restarts those that crash, reloads them\n"
        "one at a time on SIGHUP and stops them on SIGTERM/SIGINT. Each worker learns\n"
        "its id (NAME-worker-N), the cluster name, the Redis URL and the master's pid\n"
        "from ZC_NODE_ID, ZC_CLUSTER, ZC_REDIS_URL and ZC_MASTER_PID, and says it is\n"
        "ready with zc_supervisor_ready() (or by writing \"ready\\n\" to fd $ZC_READY_FD).\n\n"
        "  -n, --workers N          workers running PROGRAM (default: one per CPU)\n"
        "      --group-name NAME    name of PROGRAM's group (default: worker)\n"
        "      --group NAME:COUNT:COMMAND\n"
        "                           another group; COMMAND is split like a shell line\n"
        "                           (quotes; no command substitution); COUNT empty: per CPU\n"
        "      --name NAME          cluster name (default: $ZC_CLUSTER, else zcluster)\n"
        "      --redis URL          the cluster's Redis (default: $ZC_REDIS_URL; with\n"
        "                           neither, a private redis-server on a unix socket);\n"
        "                           no password here: `ps` shows it (use the variable)\n"
        "      --redis-file FILE    the Redis URL, from the first line of FILE (mode 0600)\n"
        "      --redis-replicas N   instead of the private redis-server: a private master,\n"
        "                           N replicas (1-8) and 3 sentinels on loopback ports;\n"
        "                           the workers get a redis-sentinel:// URL (no --redis)\n"
        "      --keys FILE          cluster credentials for the workers, by path in\n"
        "                           ZC_KEYS (default: $ZC_KEYS, else a new pair in\n"
        "                           DIR/cluster.keys, mode 0600, removed at exit)\n"
        "      --runtime-dir DIR    lock, admin.json, admin.key, redis.sock (default:\n"
        "                           $XDG_RUNTIME_DIR/zcluster-NAME or /tmp/zcluster-UID-NAME)\n"
        "      --key-file FILE      admin API key, the first line of FILE (mode 0600;\n"
        "                           default: $ZC_ADMIN_KEY, else a random key written to\n"
        "                           DIR/admin.key, mode 0600)\n"
        "      --admin-port PORT    admin API port (default 0: any free port)\n"
        "      --admin-address IP   admin API address (default 127.0.0.1); another than\n"
        "                           loopback needs HTTPS or --admin-allow-plaintext\n"
        "      --admin-cert FILE    serve the admin API over HTTPS with this PEM\n"
        "      --admin-cert-key FILE  certificate (chain) and this private key\n"
        "      --admin-allow-plaintext  plain HTTP on a non-loopback address (the key\n"
        "                           crosses the network in clear)\n"
        "      --no-admin           no admin API\n"
        "      --cpus LIST|auto     pin worker N to the N-th CPU of LIST (e.g. 0-3,6)\n"
        "      --ready-timeout DUR  time to become ready (default 30s)\n"
        "      --ready-after DUR    count a worker ready once it lived DUR (for programs\n"
        "                           that do not signal readiness)\n"
        "      --stop-timeout DUR   SIGTERM to SIGKILL (default 10s)\n"
        "      --backoff DUR        first respawn delay, doubled per crash (default 100ms)\n"
        "      --backoff-max DUR    longest respawn delay (default 10s)\n"
        "      --max-restarts N     restarts allowed per group in the window (default 10)\n"
        "      --restart-window DUR the sliding window (default 60s)\n"
        "      --transient          a worker that exits 0 is done, not respawned\n"
        "      --print-events       print every event on stdout:\n"
        "                           `event TYPE WORKER|- REASON|- JSON`\n"
        "      --cluster-X[=VALUE]  passed on to every worker\n"
        "Membership settings, passed on to every worker that starts a node:\n" CLI_USAGE_MEMBERSHIP
        "\n"
        "Exit code: 0 clean stop, 1 could not start, 2 some worker needed SIGKILL at\n"
        "shutdown, 3 a group hit its restart limit. See also: zcluster workers, health,\n"
        "restart, shutdown, upgrade, events, admin.\n");
}

typedef struct {
    int print_events;
} s_start_t;

static void s_on_event(zc_supervisor_t *sup, const zc_supervisor_event_t *event, void *arg)
{
    s_start_t *start = (s_start_t *)arg;
    if (strcmp(event->event, "master") == 0 && strcmp(event->reason, "started") == 0) {
        int port = zc_supervisor_admin_port(sup);
        char shown[1100];
        printf("master pid=%d port=%d dir=%s redis=%s\n", (int)event->pid, port,
               zc_supervisor_runtime_dir(sup),
               zc_redis_url_redact(zc_supervisor_redis_url(sup), shown, sizeof shown));
    }
    if (start->print_events)
        printf("event %s %s %s %s\n", event->event, event->worker ? event->worker : "-",
               event->reason ? event->reason : "-", event->json);
    fflush(stdout);
}

//  Adds a group from "NAME:COUNT:COMMAND". Returns 0 or -1.
static int s_add_group_spec(zc_supervisor_t *sup, const char *spec)
{
    const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c1 || !c2 || c1 == spec) {
        fprintf(stderr, "zcluster start: --group takes NAME:COUNT:COMMAND\n");
        return -1;
    }
    char name[128], count_text[16];
    snprintf(name, sizeof name, "%.*s", (int)(c1 - spec), spec);
    snprintf(count_text, sizeof count_text, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
    int64_t count = 0;
    if (*count_text && cli_args_number(count_text, 0, 1024, &count)) {
        fprintf(stderr, "zcluster start: --group %s: COUNT must be 0..1024\n", name);
        return -1;
    }
    wordexp_t words;
    if (wordexp(c2 + 1, &words, WRDE_NOCMD) != 0 || words.we_wordc == 0) {
        fprintf(stderr, "zcluster start: --group %s: cannot split the command\n", name);
        if (words.we_wordv) wordfree(&words);
        return -1;
    }
    int rc = zc_supervisor_add_group(sup, name, (int)count, words.we_wordv);
    wordfree(&words);
    return rc;
}

//  The command line, parsed.
typedef struct {
    char **args, **passed; //  our arguments; the --cluster-* ones for the workers
    int nargs, npassed, after_dashes;
    cli_cluster_t where; //  --redis; --cluster (or --name)
    const char *dir, *key_file, *cpus, *group_name;
    const char *admin_address, *admin_cert, *admin_cert_key;
    int admin_plaintext;
    const char *specs[MAX_GROUPS];
    int nspecs, transient;
    int64_t workers, port;
    //  ms, in the order of the options O_READY_TIMEOUT..O_WINDOW; -1: not given
    int64_t durations[6];
    int64_t max_restarts;
    int64_t redis_replicas; //  --redis-replicas; 0: the single private server
    s_start_t start;
} s_settings_t;

enum {
    O_GROUP = 1000,
    O_GROUP_NAME,
    O_DIR,
    O_KEY_FILE,
    O_KEY_GONE,
    O_PORT,
    O_ADMIN_ADDRESS,
    O_ADMIN_CERT,
    O_ADMIN_CERT_KEY,
    O_ADMIN_PLAINTEXT,
    O_NO_ADMIN,
    O_CPUS,
    O_READY_TIMEOUT, //  the durations, in the order of s_settings_t.durations
    O_READY_AFTER,
    O_STOP_TIMEOUT,
    O_BACKOFF,
    O_BACKOFF_MAX,
    O_WINDOW,
    O_MAX_RESTARTS,
    O_TRANSIENT,
    O_PRINT_EVENTS,
    O_REDIS_REPLICAS
};

#define S_DURATION(s, option) ((s)->durations[(option)-O_READY_TIMEOUT])

//  Takes the --cluster-* options out (before `--`) before getopt sees them.
static void s_split_args(s_settings_t *s, int argc, char **argv)
{
    s->args = (char **)calloc((size_t)argc + 1, sizeof(char *));
    s->passed = (char **)calloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++) {
        if (!s->after_dashes && strcmp(argv[i], "--") == 0) s->after_dashes = 1;
        if (!s->after_dashes && strncmp(argv[i], "--cluster-", 10) == 0 && argv[i][10])
            s->passed[s->npassed++] = argv[i];
        else
            s->args[s->nargs++] = argv[i];
    }
}

//  Takes an option with a number or a duration. Returns -1 to go on, or
//  CLI_USAGE after printing why it is wrong.
static int s_number_option(s_settings_t *s, int option, const char *arg)
{
    if (option >= O_READY_TIMEOUT && option <= O_WINDOW) {
        if (cli_args_duration(arg, INT_MAX, &S_DURATION(s, option)) == 0) return -1;
        fprintf(stderr, "zcluster start: bad duration '%s' (e.g. 500ms, 2s, 1m)\n", arg);
    } else if (option == 'n') {
        if (cli_args_number(arg, 1, 1024, &s->workers) == 0) return -1;
        fprintf(stderr, "zcluster start: --workers must be 1..1024\n");
    } else if (option == O_PORT) {
        if (cli_args_number(arg, 0, 65535, &s->port) == 0) return -1;
        fprintf(stderr, "zcluster start: --admin-port must be 0..65535\n");
    } else {
        if (cli_args_number(arg, 0, 1000000, &s->max_restarts) == 0) return -1;
        fprintf(stderr, "zcluster start: --max-restarts must be 0..1000000\n");
    }
    return CLI_USAGE;
}

//  Takes one option. Returns -1 to go on, or the exit code (after --help,
//  or after printing why it is wrong).
static int s_option(void *self, int option, const char *arg)
{
    s_settings_t *s = (s_settings_t *)self;
    int taken = cli_membership_option("start", option, arg);
    if (taken) return taken == 1 ? -1 : taken;
    if (option == 'n' || option == O_PORT || option == O_MAX_RESTARTS ||
        (option >= O_READY_TIMEOUT && option <= O_WINDOW))
        return s_number_option(s, option, arg);
    switch (option) {
    case O_GROUP:
        if (s->nspecs < MAX_GROUPS) {
            s->specs[s->nspecs++] = arg;
            return -1;
        }
        fprintf(stderr, "zcluster start: at most %d groups\n", MAX_GROUPS);
        return CLI_USAGE;
    case O_GROUP_NAME:
        s->group_name = arg;
        return -1;
    case O_DIR:
        s->dir = arg;
        return -1;
    case O_KEY_FILE:
        s->key_file = arg;
        return -1;
    case O_KEY_GONE:
        return cli_args_key_gone("start");
    case O_ADMIN_ADDRESS:
        s->admin_address = arg;
        return -1;
    case O_ADMIN_CERT:
        s->admin_cert = arg;
        return -1;
    case O_ADMIN_CERT_KEY:
        s->admin_cert_key = arg;
        return -1;
    case O_ADMIN_PLAINTEXT:
        s->admin_plaintext = 1;
        return -1;
    case O_NO_ADMIN:
        s->port = -1;
        return -1;
    case O_CPUS:
        s->cpus = arg;
        return -1;
    case O_TRANSIENT:
        s->transient = 1;
        return -1;
    case O_PRINT_EVENTS:
        s->start.print_events = 1;
        return -1;
    case O_REDIS_REPLICAS:
        if (cli_args_number(arg, 1, 8, &s->redis_replicas) == 0) return -1;
        fprintf(stderr, "zcluster start: --redis-replicas must be 1..8\n");
        return CLI_USAGE;
    }
    return cli_args_usage(option, s_usage);
}

//  Parses the command line. Returns -1 to go on, or the exit code.
static int s_parse(s_settings_t *s)
{
    static struct option options[] = {{"workers", required_argument, 0, 'n'},
                                      {"group", required_argument, 0, O_GROUP},
                                      {"group-name", required_argument, 0, O_GROUP_NAME},
                                      {"name", required_argument, 0, CLI_OPT_CLUSTER},
                                      CLI_OPTION_CLUSTER,
                                      CLI_OPTION_REDIS,
                                      CLI_OPTION_KEYS,
                                      {"runtime-dir", required_argument, 0, O_DIR},
                                      {"key-file", required_argument, 0, O_KEY_FILE},
                                      {"key", required_argument, 0, O_KEY_GONE},
                                      {"admin-port", required_argument, 0, O_PORT},
                                      {"admin-address", required_argument, 0, O_ADMIN_ADDRESS},
                                      {"admin-cert", required_argument, 0, O_ADMIN_CERT},
                                      {"admin-cert-key", required_argument, 0, O_ADMIN_CERT_KEY},
                                      {"admin-allow-plaintext", no_argument, 0, O_ADMIN_PLAINTEXT},
                                      {"no-admin", no_argument, 0, O_NO_ADMIN},
                                      {"cpus", required_argument, 0, O_CPUS},
                                      {"ready-timeout", required_argument, 0, O_READY_TIMEOUT},
                                      {"ready-after", required_argument, 0, O_READY_AFTER},
                                      {"stop-timeout", required_argument, 0, O_STOP_TIMEOUT},
                                      {"backoff", required_argument, 0, O_BACKOFF},
                                      {"backoff-max", required_argument, 0, O_BACKOFF_MAX},
                                      {"max-restarts", required_argument, 0, O_MAX_RESTARTS},
                                      {"restart-window", required_argument, 0, O_WINDOW},
                                      {"transient", no_argument, 0, O_TRANSIENT},
                                      {"print-events", no_argument, 0, O_PRINT_EVENTS},
                                      {"redis-replicas", required_argument, 0, O_REDIS_REPLICAS},
                                      CLI_OPTION_MEMBERSHIP,
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    cli_args_t args = {"+n:h", options, s_usage, &s->where, NULL, s_option, s};
    int rc = cli_args_parse(&args, s->nargs, s->args);
    if (rc >= 0) return rc;
    if (optind < s->nargs && !s->after_dashes) {
        fprintf(stderr, "zcluster start: put the program after `--` (got '%s')\n", s->args[optind]);
        return CLI_USAGE;
    }
    if (optind == s->nargs && s->nspecs == 0) {
        fprintf(stderr, "zcluster start: no program to run (zcluster start -- PROGRAM ARGS)\n");
        return CLI_USAGE;
    }
    return -1;
}

//  A master with the groups and worker arguments of the command line, or
//  NULL after printing why not.
static zc_supervisor_t *s_master_new(s_settings_t *s)
{
    zc_supervisor_t *sup = zc_supervisor_new(s->where.cluster);
    if (!sup) return NULL;
    int bad = 0;
    if (optind < s->nargs)
        bad |= zc_supervisor_add_group(sup, s->group_name, (int)s->workers, s->args + optind);
    else if (s->workers)
        fprintf(stderr, "zcluster start: --workers applies to the program after `--` only\n");
    for (int i = 0; i < s->nspecs && !bad; i++)
        bad |= s_add_group_spec(sup, s->specs[i]);
    for (int i = 0; i < s->npassed; i++)
        zc_supervisor_add_arg(sup, s->passed[i]);
    if (s->cpus && zc_supervisor_set_cpus(sup, s->cpus)) {
        fprintf(stderr, "zcluster start: bad --cpus list '%s' (e.g. 0-3,6 or auto)\n", s->cpus);
        bad = 1;
    }
    if (bad) zc_supervisor_destroy(&sup);
    return sup;
}

//  Applies the admin API's settings. Returns 0, or CLI_USAGE after saying
//  what is wrong.
static int s_configure_admin(zc_supervisor_t *sup, s_settings_t *s)
{
    if (s->key_file) {
        char key[256];
        if (cli_args_secret_file("start", "--key-file", s->key_file, key, sizeof key))
            return CLI_USAGE;
        zc_supervisor_set_key(sup, key);
        explicit_bzero(key, sizeof key);
    }
    if (!s->admin_cert != !s->admin_cert_key) {
        fprintf(stderr, "zcluster start: HTTPS takes both --admin-cert and --admin-cert-key\n");
        return CLI_USAGE;
    }
    zc_supervisor_set_admin_port(sup, (int)s->port);
    zc_supervisor_set_admin_address(sup, s->admin_address, s->admin_plaintext);
    zc_supervisor_set_admin_tls(sup, s->admin_cert, s->admin_cert_key);
    return 0;
}

//  Applies the settings that were given; the others keep their defaults.
static void s_configure(zc_supervisor_t *sup, s_settings_t *s)
{
    int64_t ready_timeout = S_DURATION(s, O_READY_TIMEOUT),
            ready_after = S_DURATION(s, O_READY_AFTER),
            stop_timeout = S_DURATION(s, O_STOP_TIMEOUT), backoff = S_DURATION(s, O_BACKOFF),
            backoff_max = S_DURATION(s, O_BACKOFF_MAX), window = S_DURATION(s, O_WINDOW);
    if (s->where.redis) zc_supervisor_set_redis(sup, s->where.redis);
    if (s->dir) zc_supervisor_set_runtime_dir(sup, s->dir);
    if (ready_timeout >= 0) zc_supervisor_set_ready_timeout(sup, (int)ready_timeout);
    if (ready_after >= 0) zc_supervisor_set_ready_after(sup, (int)ready_after);
    if (stop_timeout >= 0) zc_supervisor_set_stop_timeout(sup, (int)stop_timeout);
    if (backoff >= 0 || backoff_max >= 0)
        zc_supervisor_set_backoff(sup, backoff >= 0 ? (int)backoff : 100,
                                  backoff_max >= 0 ? (int)backoff_max : 10000);
    if (s->max_restarts >= 0 || window >= 0)
        zc_supervisor_set_restart_limit(sup, s->max_restarts >= 0 ? (int)s->max_restarts : 10,
                                        window >= 0 ? (int)window : 60000);
    if (s->transient) zc_supervisor_set_restart_policy(sup, ZC_RESTART_TRANSIENT);
    zc_supervisor_set_redis_replicas(sup, (int)s->redis_replicas);
    zc_supervisor_on_event(sup, s_on_event, &s->start);
}

int cli_start(int argc, char **argv)
{
    s_settings_t s;
    memset(&s, 0, sizeof s);
    s.group_name = "worker";
    s.max_restarts = -1;
    for (size_t i = 0; i < sizeof s.durations / sizeof s.durations[0]; i++)
        s.durations[i] = -1;
    s_split_args(&s, argc, argv);
    int rc = s_parse(&s);
    if (rc < 0) {
        zc_supervisor_t *sup = s_master_new(&s);
        rc = CLI_USAGE;
        if (sup && s_configure_admin(sup, &s) == 0) {
            s_configure(sup, &s);
            rc = zc_supervisor_run(sup);
        }
        zc_supervisor_destroy(&sup);
    }
    free(s.args);
    free(s.passed);
    return rc;
}
