/*  zc_supervisor — a master process that runs groups of worker processes.

    The master (`zcluster start`, or any program that calls zc_supervisor_run)
    spawns each group's workers, tells each one who it is through the
    environment, and keeps every worker's state in one table:

        starting  spawned, has not said it is ready yet
        ready     said so (zc_supervisor_ready), or lived ready_after ms
        stopping  sent SIGTERM; SIGKILL follows after the stop timeout
        backoff   exited unexpectedly; respawns when its backoff delay ends
        done      exited 0 under the transient restart policy; not respawned
        failed    its group hit the restart limit and was stopped

    Crashes: a worker that exits when nobody asked it to is respawned after
    an exponential backoff (initial delay doubled per consecutive crash of
    that worker, up to a maximum; back to the initial delay once a worker
    lived longer than the restart window). Each group counts its restarts in
    a sliding window (Erlang's intensity/period: at most max_restarts in any
    window_ms): the crash that would exceed it stops the whole group, and the
    master exits once no group is left running, never looping for ever.

    Reloads (SIGHUP, the admin `restart all`) and upgrades (a new program)
    replace workers one at a time, gated on readiness: start the replacement,
    wait for its ready signal (ready timeout), and only then stop the old
    worker. If the replacement exits or times out, the old worker is kept,
    the reload is aborted and reported, and no worker after it is touched.
    During a reload each group has at least its full count of workers ready
    except while a crash is being handled.

    SIGTERM / SIGINT shut down gracefully: SIGTERM to every worker, SIGKILL to
    those still alive after the stop timeout, the embedded Redis last (the
    sentinels, then the replicas, then the master of a local HA setup). A
    second SIGTERM / SIGINT kills at once. zc_supervisor_run's exit code:
        0  every worker stopped within the stop timeout (or all finished)
        1  the master could not start (see the log)
        2  some worker had to be SIGKILLed at shutdown, or `exit` was used
        3  a group was stopped by its restart limit

    Environment contract: each worker is started with
        ZC_NODE_ID       NAME-worker-N (zc_node_new(NULL) takes it)
        ZC_CLUSTER       the cluster name NAME (zc_node's default cluster)
        ZC_REDIS_URL     the cluster's Redis (zc_node's default Redis)
        ZC_MASTER_PID    the master's pid
        ZC_WORKER_INDEX  N
        ZC_WORKER_GROUP  the worker's group name
        ZC_START_REASON  start | crash | restart | reload | upgrade
        ZC_RESTARTS      how often this worker's slot was respawned after a crash
        ZC_READY_FD      the fd of the pipe zc_supervisor_ready writes to
    stdin is /dev/null, stdout and stderr are the master's; each worker runs in
    its own process group (a terminal's Ctrl-C reaches the master only, which
    stops the workers in order) and gets SIGTERM if the master dies, even by
    SIGKILL (PR_SET_PDEATHSIG), as does every embedded Redis process.

    N is the lowest number no live worker of this master holds, so a respawned
    worker keeps its predecessor's id and a replacement started during a
    reload briefly holds a spare number (ids stay within 1..workers+1).

    Events (worker start, ready, exit, status; reload, group and Redis
    changes) are logged, kept in memory for the admin API, passed to the
    event callback, and published to the cluster: PUBLISH on the Redis
    channel zc:{NAME}:supervisor and LPUSH on the list
    zc:{NAME}:supervisor:events (the newest 1000), as JSON objects.
    docs/SUPERVISOR.md describes them and the admin API.

    Errors: a method that can fail returns -1 and leaves the reason on the
    master: zc_supervisor_error() is its kind (zc_error.h) and
    zc_supervisor_errstr() the message; a call that succeeds sets ZC_OK.
    Failures that a master's operator must see (a bad group, a refused
    reload, a master that cannot start) are logged as well.
*/
#ifndef ZC_SUPERVISOR_H_INCLUDED
#define ZC_SUPERVISOR_H_INCLUDED

#include "zc_error.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  --------------------------------------------------------------------------
//  Worker side: tell the master how this worker is doing

//  Tells the master this worker is ready to serve (writes "ready" to the
//  pipe named by ZC_READY_FD). Call it once the worker accepts work, e.g.
//  after zc_node_start. Returns 0, also when not run by a master (a no-op),
//  or -1 if the pipe is gone. Safe from any thread.
int zc_supervisor_ready(void);

//  Sends a one-line status text (at most 256 bytes; newlines become spaces)
//  that the master shows in its worker list. Same returns as zc_supervisor_ready.
int zc_supervisor_status(const char *text);

//  Returns 1 if this process was started by a zcluster master.
int zc_supervisor_managed(void);

//  Writes the id a master named name gives its worker n, "NAME-worker-N",
//  into buf (truncated to cap); returns buf. A worker learns its own id
//  from ZC_NODE_ID, and can name its peers with this.
const char *zc_supervisor_worker_id(char *buf, size_t cap, const char *name, int n);

//  --------------------------------------------------------------------------
//  Master side

typedef struct _zc_supervisor_t zc_supervisor_t;

//  What happens to a worker that exits 0 without being asked to.
typedef enum {
    ZC_RESTART_PERMANENT = 0, //  respawned like any crash (the default)
    ZC_RESTART_TRANSIENT = 1  //  done: only abnormal exits are respawned
} zc_restart_policy_t;

//  One event, valid during the callback. Strings that do not apply are NULL.
typedef struct {
    int64_t seq;        //  1, 2, ... per master
    int64_t time_ms;    //  wall clock, ms since the Unix epoch
    const char *event;  //  "start", "ready", "exit", "status", "reload", "group",
                        //  "redis", "master", "all-ready"
    const char *worker; //  worker id (start, ready, exit, status)
    const char *group;  //  group name
    int pid;            //  process id, 0 if none
    const char *reason; //  start: start|crash|restart|reload|upgrade;
                        //  exit: crash|restart|reload|upgrade|shutdown|timeout|done|aborted;
                        //  reload: started|done|aborted; group: failed|stopped;
                        //  redis: started|exited|stopped; master: started|stopping|stopped;
                        //  all-ready: start|reload|upgrade|restart
    int exit_code;      //  exit: the exit code, -1 if killed by a signal
    int signal;         //  exit: the signal, 0 if it exited
    const char *text;   //  status text, or a reload/group/exit explanation
    const char *json;   //  the whole event as a JSON object
} zc_supervisor_event_t;

//  Called on the master's thread for every event, inside zc_supervisor_run.
//  It may call the zc_supervisor_* methods below.
typedef void(zc_supervisor_event_fn)(zc_supervisor_t *self, const zc_supervisor_event_t *event,
                                     void *arg);

//  A custom admin command: called with its arguments (argv[0] is the command
//  name) on the master's thread. Returns a JSON text (a value of any kind)
//  that the caller frees with free(), put under "result" in the response; or
//  NULL for an error, with the message in err (the response's "error").
typedef char *(zc_supervisor_command_fn)(zc_supervisor_t *self, int argc, const char **argv,
                                         char *err, size_t errlen, void *arg);

//  Creates a master for cluster name (NULL: $ZC_CLUSTER, else "zcluster").
//  Returns NULL, with a message logged, if name is not a valid cluster name
//  (1-255 bytes, no spaces, control characters, '{' or '}'). A name with
//  '/' needs zc_supervisor_set_runtime_dir, as it cannot name the default.
zc_supervisor_t *zc_supervisor_new(const char *name);

//  Destroys the master (stops nothing: zc_supervisor_run has returned by
//  then) and sets *self_p to NULL; idempotent.
void zc_supervisor_destroy(zc_supervisor_t **self_p);

//  The kind of the last call's failure, or ZC_OK if it succeeded.
zc_error_t zc_supervisor_error(zc_supervisor_t *self);

//  The message of the last call's failure ("" after a success). Owned by
//  the master, valid until its next call.
const char *zc_supervisor_errstr(zc_supervisor_t *self);

//  Adds a group of count workers (0: one per CPU) running argv (copied;
//  argv[0] is looked up in PATH). Returns 0, or -1 (logged) with
//  ZC_ERR_INVALID if the name is not 1..100 of [A-Za-z0-9_.-], count is
//  out of 0..1024 or argv is empty, ZC_ERR_DUPLICATE if the name is taken.
int zc_supervisor_add_group(zc_supervisor_t *self, const char *group, int count,
                            char *const argv[]);

//  Appends arg to every worker's command line (zcluster start uses it for
//  its --cluster-* options). Returns 0.
int zc_supervisor_add_arg(zc_supervisor_t *self, const char *arg);

//  The cluster's Redis URL handed to the workers. NULL or "" (the default):
//  start a private redis-server on a unix socket in the runtime directory,
//  restart it if it dies, and stop it after the last worker.
void zc_supervisor_set_redis(zc_supervisor_t *self, const char *url);

//  Without a Redis URL, replicas > 0 starts a local HA setup instead of the
//  single server: a private Redis master, replicas replicas and three
//  redis-sentinel processes on free loopback ports, with a generated
//  password (in their 0600 files in the runtime directory and in the
//  workers' ZC_REDIS_URL only), supervised like the single server; the
//  workers get redis-sentinel://:PASSWORD@127.0.0.1:S1,...:S3/local. A
//  dead server comes back as a replica of the master the sentinels name.
//  Returns 0, or -1 (ZC_ERR_INVALID) if replicas is not 0..8;
//  zc_supervisor_run fails if a Redis URL is set as well.
int zc_supervisor_set_redis_replicas(zc_supervisor_t *self, int replicas);

//  The runtime directory (created 0700; holds the lock, admin.json, the
//  generated admin.key and the embedded Redis socket). Default:
//  $XDG_RUNTIME_DIR/zcluster-NAME, else /tmp/zcluster-UID-NAME.
void zc_supervisor_set_runtime_dir(zc_supervisor_t *self, const char *dir);

//  The admin API's access key. Default: $ZC_ADMIN_KEY, else a random key
//  written to RUNTIME_DIR/admin.key (mode 0600).
void zc_supervisor_set_key(zc_supervisor_t *self, const char *key);

//  The admin API's port: 0 (default) picks a free one, -1 disables the
//  API. The port in use is written to RUNTIME_DIR/admin.json.
void zc_supervisor_set_admin_port(zc_supervisor_t *self, int port);

//  The admin API's listen address, an IPv4 or IPv6 address (NULL or "":
//  127.0.0.1, the default). An address other than loopback needs HTTPS
//  (zc_supervisor_set_admin_tls) unless allow_plaintext is 1: without it
//  zc_supervisor_run fails, since the access key would cross the network
//  in clear.
void zc_supervisor_set_admin_address(zc_supervisor_t *self, const char *address,
                                     int allow_plaintext);

//  Serves the admin API over HTTPS with the PEM certificate (or chain) in
//  cert_file and its private key in key_file, both read by
//  zc_supervisor_run (which fails if they cannot be read or do not match,
//  or if group or others may read key_file).
//  NULL, NULL (the default): plain HTTP.
void zc_supervisor_set_admin_tls(zc_supervisor_t *self, const char *cert_file,
                                 const char *key_file);

//  Pins worker N to the ((N-1) mod count)-th CPU of list ("0-3,6"; "auto":
//  every CPU this process may use). Returns 0, or -1 (ZC_ERR_INVALID) on a
//  bad list.
int zc_supervisor_set_cpus(zc_supervisor_t *self, const char *list);

//  The restart policy (default ZC_RESTART_PERMANENT).
void zc_supervisor_set_restart_policy(zc_supervisor_t *self, zc_restart_policy_t policy);

//  At most max_restarts respawns per group in any window_ms (default 10 in
//  60000); the next crash stops the group. max_restarts 0 stops it at the
//  first crash.
void zc_supervisor_set_restart_limit(zc_supervisor_t *self, int max_restarts, int window_ms);

//  Respawn delay: initial_ms after a first crash, doubled per consecutive
//  crash up to max_ms (default 100 and 10000).
void zc_supervisor_set_backoff(zc_supervisor_t *self, int initial_ms, int max_ms);

//  How long a worker may take to become ready (default 30000 ms). A worker
//  still starting after it is stopped and counted as a crash; a replacement
//  during a reload aborts the reload.
void zc_supervisor_set_ready_timeout(zc_supervisor_t *self, int ms);

//  For programs that never call zc_supervisor_ready: count a worker ready
//  once it has lived ms (default -1: wait for the ready signal).
void zc_supervisor_set_ready_after(zc_supervisor_t *self, int ms);

//  Time between SIGTERM and SIGKILL when stopping a worker (default 10000).
void zc_supervisor_set_stop_timeout(zc_supervisor_t *self, int ms);

//  Called on the master's thread when every expected worker is ready: once
//  after the first start, and once after each rolling reload, upgrade or
//  restart that completed (reason "start", "reload", "upgrade" or
//  "restart"); workers is how many are ready. The event "all-ready" says
//  the same (reason, and "workers" in its JSON).
typedef void(zc_supervisor_all_ready_fn)(zc_supervisor_t *self, const char *reason, int workers,
                                         void *arg);

//  Sets the all-ready callback (NULL for none).
void zc_supervisor_on_all_ready(zc_supervisor_t *self, zc_supervisor_all_ready_fn *fn, void *arg);

//  Sets the event callback (NULL for none).
void zc_supervisor_on_event(zc_supervisor_t *self, zc_supervisor_event_fn *fn, void *arg);

//  Registers a custom admin command, called as POST /NAME[/ARG...]. Returns
//  0, or -1 with ZC_ERR_INVALID if the name is not 1..100 of
//  [A-Za-z0-9_.-], ZC_ERR_DUPLICATE if a built-in or another command has it.
int zc_supervisor_command(zc_supervisor_t *self, const char *name, const char *help,
                          zc_supervisor_command_fn *fn, void *arg);

//  Runs the master: prepares the runtime directory, starts the embedded
//  Redis if needed and the admin API, spawns every worker and supervises
//  them until shutdown. Handles SIGCHLD, SIGHUP, SIGTERM and SIGINT while it
//  runs (and ignores SIGPIPE); the previous handlers are restored after.
//  Returns the exit code described above; with 1 (could not start), the
//  reason is also left in zc_supervisor_error/errstr. Call it once; one
//  supervisor runs at a time in a process. Every child is forked from the
//  calling thread and stopped before the call returns.
int zc_supervisor_run(zc_supervisor_t *self);

//  The methods below are for callbacks, on the master's thread.

//  Starts a rolling reload of every worker (as SIGHUP). Returns 0, or -1
//  (logged) with ZC_ERR_STATE if a reload is running, the master is
//  stopping or no worker is left to reload.
int zc_supervisor_reload(zc_supervisor_t *self);

//  Starts a rolling upgrade of group (NULL: the only group) to argv.
//  Returns 0 or -1 as zc_supervisor_reload, also with ZC_ERR_MISSING for an
//  unknown group and ZC_ERR_INVALID for no program or a NULL group among
//  several.
int zc_supervisor_upgrade(zc_supervisor_t *self, const char *group, char *const argv[]);

//  Sends sig to worker id. Returns 0, or -1 with ZC_ERR_MISSING if no live
//  worker has that id, ZC_ERR_SYSTEM if kill() fails.
int zc_supervisor_signal(zc_supervisor_t *self, const char *id, int sig);

//  Starts a graceful shutdown (as SIGTERM).
void zc_supervisor_shutdown(zc_supervisor_t *self);

//  Returns the worker table as JSON (see GET /workers); the caller frees it.
char *zc_supervisor_workers(zc_supervisor_t *self);

//  Returns the Redis URL the workers get ("" before zc_supervisor_run).
const char *zc_supervisor_redis_url(zc_supervisor_t *self);

//  Returns the runtime directory.
const char *zc_supervisor_runtime_dir(zc_supervisor_t *self);

//  Returns the admin API's port, or 0 if it is not listening.
int zc_supervisor_admin_port(zc_supervisor_t *self);

#ifdef __cplusplus
}
#endif

#endif
