/*  zc_supervisor internals, shared by its files (internal to libzcluster):

    zc_supervisor.c          the class: settings, errors, the table's lookups
    zc_supervisor_spawn.c    starting and stopping a worker; its ready socket
    zc_supervisor_respawn.c  exits: crashes, backoff, the restart window
    zc_supervisor_reload.c   rolling reload, upgrade, restart of one worker
    zc_supervisor_run.c      zc_supervisor_run: start, the loop, timers, shutdown
    zc_supervisor_runtime.c  the runtime directory: lock, key, admin.json
    zc_supervisor_redis.c    the private Redis (one server, or zc_local_ha's set):
                             start, restart, stop
    zc_supervisor_events.c   events: log, memory ring, callback, Redis
    zc_supervisor_admin.c    the admin API's commands and their JSON
    zc_supervisor_ready.c    the worker's side: ready and status lines

    The table: a supervisor has groups; a group has slots (a position that
    should always have a worker); a slot has at most one current process
    and, during a reload, one replacement. A process that was replaced or
    whose slot was removed stays in the process list, retired, until it is
    reaped. Slots are never freed before the supervisor, so a reload can
    hold pointers to them.

    Times are zclock_mono() ms unless a name says "wall" (zclock_time()).
*/
#ifndef ZC_SUPERVISOR_INTERNAL_H_INCLUDED
#define ZC_SUPERVISOR_INTERNAL_H_INCLUDED

#include "zc_admin.h"
#include "zc_embedded_redis.h"
#include "zc_failure.h"
#include "zc_identity.h"
#include "zc_local_ha.h"
#include "zc_redis.h"
#include "zc_supervisor.h"

#include <czmq.h>
#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#define SUP_NAME_MAX    100 //  group and command names
#define SUP_ID_MAX      (ZC_NAME_MAX + 24)
#define SUP_STATUS_MAX  256
#define SUP_MAX_CPUS    1024
#define SUP_MAX_WAITERS 16
#define SUP_EVENT_RING  1000
#define SUP_MAX_WORKERS 1024
#define SUP_REDIS_MAX   (1 + ZC_LOCAL_HA_REPLICAS_MAX + ZC_LOCAL_HA_SENTINELS)

typedef enum {
    SUP_STARTING = 0, //  process spawned, not ready yet
    SUP_READY,        //  process ready
    SUP_STOPPING,     //  process sent SIGTERM
    SUP_BACKOFF,      //  slot: waiting to respawn
    SUP_DONE,         //  slot: finished (transient exit 0)
    SUP_FAILED,       //  slot: its group hit the restart limit
    SUP_STOPPED,      //  slot: stopped by the master's shutdown
    SUP_REMOVED       //  slot: stopped for good by `shutdown ID`
} sup_state_t;

typedef struct sup_group_t sup_group_t;
typedef struct sup_slot_t sup_slot_t;
typedef struct sup_proc_t sup_proc_t;

struct sup_proc_t {
    sup_slot_t *slot;
    int number; //  N of NAME-worker-N
    char id[SUP_ID_MAX];
    pid_t pid;
    sup_state_t state; //  STARTING, READY or STOPPING
    int replacement;   //  1 while it waits to take over its slot
    const char *start_reason;
    const char *stop_reason; //  why the master stopped it; NULL if not asked
    int64_t started;
    int64_t started_wall;
    int64_t ready_at; //  0 until ready
    int64_t deadline; //  STARTING: ready timeout; STOPPING: SIGKILL
    int killed;       //  SIGKILL sent
    int cpu;          //  pinned CPU or -1
    int ready_fd;     //  master's end of the ready socket, -1 once closed
    char status[SUP_STATUS_MAX + 1];
    char **argv;                     //  owned, NULL-terminated
    zc_admin_request_t *stop_waiter; //  `shutdown ID` waiting for the exit
    sup_proc_t *next;
};

struct sup_slot_t {
    sup_group_t *group;
    sup_state_t state; //  the slot's own state when it has no process
    int number;        //  the id number it keeps while in backoff
    sup_proc_t *proc;  //  the current process, or NULL
    int restarts;      //  respawns after crashes
    int failures;      //  consecutive crashes, for the backoff
    int64_t respawn_at;
    char **argv; //  what it runs (owned)
};

struct sup_group_t {
    char name[SUP_NAME_MAX + 1];
    char **argv; //  the program, owned
    int count;   //  requested (0: one per CPU, resolved at run)
    sup_slot_t **slots;
    int slot_count;
    int64_t *restart_times; //  restarts in the window
    int restart_count;
    int failed;
};

typedef struct {
    int active;
    const char *kind;   //  "reload", "upgrade" or "restart"
    sup_group_t *group; //  upgrade: the group; NULL: every group
    char **argv;        //  upgrade: the new program (owned)
    sup_slot_t **queue;
    int queue_len, next;
    sup_slot_t *slot;  //  the slot being replaced
    sup_proc_t *fresh; //  its replacement
    sup_proc_t *old;   //  the replaced process, until it exits
    int replaced;
    int64_t started;
    int min_ready, expected; //  fewest workers ready at any moment, and the count
    zc_admin_request_t *waiters[SUP_MAX_WAITERS];
    int waiter_count;
} sup_reload_t;

//  One process of the private Redis and its restarts (zc_supervisor_redis.c).
typedef struct {
    zc_embedded_redis_t *server; //  owned by the supervisor or its zc_local_ha
    const char *name;            //  NULL for the single server
    int64_t restart_at;          //  0: not waiting to restart
    int failures;                //  consecutive deaths, for the backoff
    int64_t restarts[8];         //  restarts in the last minute
    int restart_count;
} sup_redis_proc_t;

typedef struct {
    char name[SUP_NAME_MAX + 1];
    char *help;
    zc_supervisor_command_fn *fn;
    void *arg;
} sup_command_t;

struct _zc_supervisor_t {
    char name[ZC_NAME_MAX + 1]; //  the cluster name
    char redis_url[1024];       //  as set; the embedded server's once it runs
    char runtime_dir[256];      //  "" if the name cannot make the default one
    char *key;
    int key_generated;
    int admin_port;
    char admin_address[64];                 //  "" : 127.0.0.1
    int admin_plaintext;                    //  plain HTTP allowed off loopback
    char *admin_cert_file, *admin_key_file; //  HTTPS; NULL: plain HTTP
    int cpus[SUP_MAX_CPUS];
    int cpu_count;
    zc_restart_policy_t policy;
    int max_restarts, window_ms;
    int backoff_ms, backoff_max_ms;
    int ready_timeout_ms, ready_after_ms, stop_timeout_ms;
    char **extra_args;
    int extra_count;
    zc_supervisor_event_fn *event_fn;
    void *event_arg;
    zc_supervisor_all_ready_fn *all_ready_fn;
    void *all_ready_arg;
    const char *all_ready_reason; //  pending all-ready event, or NULL
    sup_command_t *commands;
    int command_count;
    zc_failure_t failure; //  the last call's outcome

    sup_group_t **groups;
    int group_count;
    sup_proc_t *procs;
    sup_reload_t reload;
    char last_reload[512]; //  JSON of the last finished reload
    int64_t started;
    int running, stopping, finished, forced, exit_code;
    zc_admin_request_t *shutdown_waiters[SUP_MAX_WAITERS];
    int shutdown_waiter_count;

    zc_admin_t *admin;
    int lock_fd;

    //  the private Redis (zc_supervisor_redis.c): one server, or a master,
    //  replicas and sentinels (redis_replicas > 0)
    int redis_replicas;
    zc_embedded_redis_t *embedded;
    zc_local_ha_t *ha;
    sup_redis_proc_t redis_procs[SUP_REDIS_MAX];
    int redis_proc_count;

    //  events (zc_supervisor_events.c)
    zc_identity_t identity; //  filled at start, once the Redis URL is known
    int64_t event_seq;
    char *ring[SUP_EVENT_RING];
    int64_t ring_seq[SUP_EVENT_RING];
    zlist_t *callbacks; //  event texts waiting for the callback
    zc_redis_t *redis;  //  publishes the events; NULL before start
    zc_redis_args_t publish[3];
    uint64_t events_unpublished;

    //  the workers' cluster credentials (zc_supervisor_keys.c)
    char keys_generated[300]; //  the file the master made, "" if given one
};

//  zc_supervisor.c
int sup_fail(zc_supervisor_t *self, int log_level, zc_error_t kind, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
void sup_ok(zc_supervisor_t *self);
const char *sup_state_name(sup_state_t state);
char **sup_argv_copy(char *const argv[]);
void sup_argv_free(char ***argv_p);
int sup_allowed_cpus(int *cpus, int max);
int sup_ready_count(zc_supervisor_t *self);
int sup_expected_count(zc_supervisor_t *self);
int sup_free_number(zc_supervisor_t *self);
sup_proc_t *sup_find_proc(zc_supervisor_t *self, const char *id);
sup_slot_t *sup_find_slot(zc_supervisor_t *self, const char *id);
sup_group_t *sup_find_group(zc_supervisor_t *self, const char *name);

//  zc_supervisor_spawn.c
sup_proc_t *sup_spawn(zc_supervisor_t *self, sup_slot_t *slot, char *const argv[],
                      const char *reason, int replacement, char *err, size_t errlen);
int sup_spawn_slot(zc_supervisor_t *self, sup_slot_t *slot, const char *reason);
void sup_proc_free(sup_proc_t *proc);
void sup_read_ready(zc_supervisor_t *self, sup_proc_t *proc);
void sup_on_ready(zc_supervisor_t *self, sup_proc_t *proc);

//  Emits the pending all-ready event (and calls back) if every expected
//  worker is ready and no reload runs.
void sup_check_all_ready(zc_supervisor_t *self);
void sup_stop(zc_supervisor_t *self, sup_proc_t *proc, const char *reason);
void sup_kill(pid_t pid, int sig);
void sup_kill_all(zc_supervisor_t *self);
int sup_stop_slot(zc_supervisor_t *self, sup_slot_t *slot, zc_admin_request_t *waiter);
void sup_track_min_ready(zc_supervisor_t *self);

//  zc_supervisor_respawn.c
void sup_reap(zc_supervisor_t *self);
void sup_group_fail(zc_supervisor_t *self, sup_group_t *group, const char *why);
void sup_respawn_due(zc_supervisor_t *self, int64_t now);

//  zc_supervisor_reload.c
int sup_reload_begin(zc_supervisor_t *self, const char *kind, sup_group_t *group, sup_slot_t *only,
                     char *const argv[], zc_admin_request_t *waiter);
void sup_reload_takeover(zc_supervisor_t *self, sup_proc_t *fresh);
void sup_reload_next(zc_supervisor_t *self);
void sup_reload_abort(zc_supervisor_t *self, const char *why);

//  zc_supervisor_run.c
void sup_begin_shutdown(zc_supervisor_t *self);

//  zc_supervisor_runtime.c
int sup_runtime_prepare(zc_supervisor_t *self);
int sup_key_prepare(zc_supervisor_t *self);
int sup_admin_info_write(zc_supervisor_t *self);
//  Starts the admin API as set (zc_admin_new) and writes admin.json.
//  Returns 0, or -1 (logged) if it cannot.
int sup_admin_open(zc_supervisor_t *self);
void sup_runtime_cleanup(zc_supervisor_t *self);

//  zc_supervisor_keys.c: checks $ZC_KEYS, or makes DIR/cluster.keys and
//  points $ZC_KEYS at it (0 or -1, failure set); removes what it made.
int sup_keys_prepare(zc_supervisor_t *self);
void sup_keys_cleanup(zc_supervisor_t *self);

//  zc_supervisor_redis.c
int sup_redis_start(zc_supervisor_t *self);
void sup_redis_reap(zc_supervisor_t *self);
void sup_redis_due(zc_supervisor_t *self, int64_t now);
void sup_redis_stop(zc_supervisor_t *self);
//  The earliest time a private Redis process is due to restart, 0 if none.
int64_t sup_redis_next_restart(zc_supervisor_t *self);
//  The private Redis's processes as JSON [{"name", "pid", "port"}] (GET /health).
json_t *sup_redis_processes_json(zc_supervisor_t *self);

//  zc_supervisor_events.c
int sup_events_open(zc_supervisor_t *self);
json_t *sup_event_new(zc_supervisor_t *self, const char *event);
void sup_event_worker(json_t *event, sup_proc_t *proc);
void sup_event_reason(zc_supervisor_t *self, const char *event, const char *reason);
void sup_emit(zc_supervisor_t *self, json_t *event);
void sup_events_dispatch(zc_supervisor_t *self);
void sup_events_close(zc_supervisor_t *self);

//  zc_supervisor_admin.c
void sup_admin_handle(zc_admin_request_t *request, void *arg);
json_t *sup_workers_json(zc_supervisor_t *self);
void sup_reply_json(zc_admin_request_t *request, int status, json_t *body);

//  Answers {"ok": false, "error": error} with status.
void sup_reply_error(zc_admin_request_t *request, int status, const char *error);

//  A JSON string of text, bytes beyond ASCII as '?' when text is not UTF-8.
json_t *sup_json_string(const char *text);

//  GET|POST /queue/..., GET /cache/locks (zc_supervisor_inspect.c).
void sup_admin_queue(zc_supervisor_t *self, zc_admin_request_t *request);
void sup_admin_cache(zc_supervisor_t *self, zc_admin_request_t *request);

//  GET /metrics, in the Prometheus text format (zc_supervisor_metrics.c).
void sup_admin_metrics(zc_supervisor_t *self, zc_admin_request_t *request);

#endif
