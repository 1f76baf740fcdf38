/*  zcluster — the command-line tool: one executable, one subcommand per job. */
#include "cli.h"
#include "zcluster.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} s_command_t;

static const s_command_t s_commands[] = {
    {"admin", cli_admin, "send any admin API command to a running master (help, exit, custom)"},
    {"bench", cli_bench, "measure throughput next to raw libzmq in the same run"},
    {"cache", cli_cache,
     "use the shared cache: a line console on stdin (see `zcluster cache --help`)"},
    {"demo", cli_demo, "run a local demo cluster of node processes and print a summary"},
    {"events", cli_admin, "print a running master's worker events (--follow to keep going)"},
    {"health", cli_admin, "a running master's health: workers ready, groups, restarts"},
    {"keygen", cli_keygen, "write a cluster's credentials file (CURVE key pair, mode 0600)"},
    {"node", cli_node,
     "run one node driven by line commands on stdin (see `zcluster node --help`)"},
    {"queue", cli_queue, "look into the task queue: jobs, delayed, working, show, remove"},
    {"restart", cli_admin, "rolling, ready-gated restart of a master's workers: all or ID"},
    {"shutdown", cli_admin, "stop a running master and its workers, or one worker: all or ID"},
    {"start", cli_start,
     "run a master that supervises worker processes (see `zcluster start --help`)"},
    {"top", cli_top, "the cluster live: nodes, groups, message and RPC rates, queues, leader"},
    {"upgrade", cli_admin, "rolling, ready-gated replacement of the workers by a new program"},
    {"worker", cli_worker,
     "drain task queues with the built-in tasks (see `zcluster worker --help`)"},
    {"workers", cli_admin, "list a running master's workers: id, pid, state, restarts, uptime"},
};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: zcluster [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        fprintf(out, "  %-8s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(out, "\n`zcluster COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("zcluster %s\n", zcluster_version());
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        s_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++)
        if (strcmp(argv[1], s_commands[i].name) == 0) return s_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "zcluster: unknown command '%s'\n\n", argv[1]);
    s_usage(stderr);
    return CLI_USAGE;
}
