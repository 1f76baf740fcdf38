/*  supkit — what the tests/test_supervisor_*.c tests share: a worker program
    and a driver for `zcluster start`.

    The worker program is the test binary itself, run as `TEST worker
    [OPTIONS]`: each test's main() calls zs_worker_main() first. It reports
    what it was told through the environment in its status line, signals
    ready through the library, and misbehaves on demand (crash, never get
    ready, ignore SIGTERM), some of it switched by files so a test can
    change the behaviour of the *next* workers of a running master.

    The master is the real `zcluster start` in a child process; the tests
    watch it through its admin API (a small HTTP client) and through the
    events it publishes in Redis.
*/
#ifndef ZC_SUPKIT_H_INCLUDED
#define ZC_SUPKIT_H_INCLUDED

#include "testkit.h"
#include "zc_supervisor.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  The test binary's path, set by zs_worker_main.
extern char zs_self[4096];

//  Call first in main(): runs the worker program when asked to (and exits),
//  else sets zs_self and ignores SIGPIPE.
//  `TEST worker [--ready-delay MS] [--never-ready] [--crash-after MS CODE]
//  [--crash-file PATH] [--hang-file PATH] [--ignore-term] [--term-delay MS]
//  [--tag TEXT] [--node] [--cluster-*...]`
void zs_worker_main(int argc, char **argv);

//  Sleeps ms milliseconds.
void zs_sleep_ms(int ms);

//  --------------------------------------------------------------------------
//  HTTP

//  One request to 127.0.0.1:port. Returns the HTTP status and the parsed
//  JSON body in *body (NULL if none), or -1 if nothing answered.
int zs_http(int port, const char *method, const char *target, const char *headers, json_t **body);

//  The integer / string (never NULL) at key in a JSON object.
long long zs_int(json_t *object, const char *key);
const char *zs_str(json_t *object, const char *key);

//  --------------------------------------------------------------------------
//  A master under test

typedef struct {
    zt_proc_t *proc;
    char name[64];
    char dir[128];
    char key[64];
    char key_file[160]; //  DIR.key: the key, given to every command by file
    int port;
    int pid;
    int status;           //  exit status once waited for
    char first_line[512]; //  the master's first line ("master pid=... redis=...")
} zs_master_t;

//  Starts `zcluster start --name NAME --runtime-dir DIR --key-file FILE OPTS...`,
//  then, if worker_args is not NULL, `-- TEST worker WORKER_ARGS...`.
//  Both lists are NULL-terminated. Waits for the master's first line.
//  Returns NULL if it did not start.
zs_master_t *zs_start(const char *name, const char *const *opts, const char *const *worker_args);

//  The same with the master's stderr (its log, and its workers') appended
//  to the file at log_path (NULL: the test's stderr).
zs_master_t *zs_start_logged(const char *name, const char *const *opts,
                             const char *const *worker_args, const char *log_path);

//  GET or POST with the master's key. Returns the status; *body as zs_http.
int zs_call(zs_master_t *self, const char *method, const char *target, json_t **body);

//  Returns GET target's JSON (the caller decrefs it), or NULL.
json_t *zs_get(zs_master_t *self, const char *target);

//  The pids of the master's workers, in its table's order, into pids (at
//  most max); returns the count.
int zs_pids(zs_master_t *self, int *pids, int max);

//  Counts the workers in state "ready".
int zs_ready_count(zs_master_t *self);

//  Waits until exactly count workers exist and all are ready; returns 1, or
//  0 after timeout_ms.
int zs_wait_ready(zs_master_t *self, int count, int timeout_ms);

//  Returns a copy of worker id's entry (the caller decrefs it), or NULL.
json_t *zs_worker(zs_master_t *self, const char *id);

//  Writes the id of the index-th worker (by number, from 0) into id;
//  returns id ("" if there is no such worker).
const char *zs_worker_id(zs_master_t *self, int index, char *id, size_t cap);

//  Returns worker id's pid, or 0.
int zs_pid(zs_master_t *self, const char *id);

//  Returns the events after seq (the caller decrefs the array).
json_t *zs_events(zs_master_t *self, long long since);

//  Waits for an event with these fields (NULL matches anything) after seq;
//  returns a copy (the caller decrefs it), or NULL after timeout_ms.
json_t *zs_wait_event(zs_master_t *self, long long since, const char *event, const char *worker,
                      const char *reason, int timeout_ms);

//  The sequence number of the newest event.
long long zs_last_seq(zs_master_t *self);

//  Signals the master (sig 0: none) and waits for it to exit. Returns its
//  exit code (or 128+signal), -1 on timeout.
int zs_stop(zs_master_t *self, int sig, int timeout_ms);

//  Kills the master if needed, removes its runtime directory, frees it.
void zs_destroy(zs_master_t **self_p);

//  Runs `zcluster ARGS...` (NULL-terminated) to the end; returns its exit
//  code and its whole output in out (NUL-terminated, truncated to cap).
int zs_cli(char *out, size_t cap, const char *arg, ...);

//  Runs a shell command line (sh -c) to its end; returns its exit code and
//  its stdout in out (NUL-terminated, truncated to cap). Add 2>&1 for
//  stderr.
int zs_shell(char *out, size_t cap, const char *command);

//  The whole file at path, NUL-terminated, "" if missing (the caller frees
//  it).
char *zs_slurp(const char *path);

//  Returns 1 if no process's command line (`ps -eo args`: what every user
//  sees) contains secret, else 0 after printing where it shows.
int zs_ps_clean(const char *secret);

//  --------------------------------------------------------------------------
//  Processes and Redis

//  1 if pid runs (a zombie does not: its parent may not be there to reap it).
int zs_alive(int pid);

//  Waits up to timeout_ms for every pid of pids (0s are skipped) to be
//  gone; returns how many still run.
int zs_wait_gone(const int *pids, int count, int timeout_ms);

//  Runs one command on the Redis at url; returns the reply (the caller
//  frees it), or NULL if Redis cannot be reached.
redisReply *zs_redis(const char *url, const char *format, ...);

//  The events a master named name published in the Redis at url, oldest
//  first (the caller decrefs the array).
json_t *zs_redis_events(const char *url, const char *name);

#endif
