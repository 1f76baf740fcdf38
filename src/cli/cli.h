/*  The zcluster command's subcommands. Each takes the arguments after its
    name (argv[0] is the subcommand) and returns the process exit code. */
#ifndef ZC_CLI_H_INCLUDED
#define ZC_CLI_H_INCLUDED

int cli_node(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_cache(int argc, char **argv);
int cli_worker(int argc, char **argv);
int cli_queue(int argc, char **argv);
int cli_top(int argc, char **argv);
int cli_start(int argc, char **argv);
int cli_keygen(int argc, char **argv);
//  workers, health, restart, shutdown, upgrade, events, admin: argv[0] says which.
int cli_admin(int argc, char **argv);

//  Exit code for bad command-line usage (as BSD sysexits' EX_USAGE).
#define CLI_USAGE 64

#endif
