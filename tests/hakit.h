/*  hakit — real Redis deployments for the Redis layer's tests: servers on
    TCP ports (ACL users need one), sentinels, and the processes of a Redis
    Cluster. Every process dies with the test (testkit's zt_proc_start), and
    logs to a file in its own directory, not to the test's output.
*/
#ifndef ZC_HAKIT_H_INCLUDED
#define ZC_HAKIT_H_INCLUDED

#include "testkit.h"
#include "zc_queue.h"
#include "zc_redis.h"

typedef struct _zh_server_t zh_server_t;

//  Starts redis-server on a free 127.0.0.1 port with extra arguments
//  (NULL-terminated, may be NULL) and waits until it answers (with
//  --cluster-enabled, on a port whose bus port, +10000, is free too). NULL
//  on failure.
zh_server_t *zh_server_start(const char *const *extra);

//  Starts a killed redis-server again on its port, empty, with extra
//  arguments (NULL-terminated, may be NULL). Returns 0, or -1 with *self_p
//  destroyed.
int zh_server_restart(zh_server_t **self_p, const char *const *extra);

//  Starts redis-sentinel on a free port, watching the master at
//  127.0.0.1:master_port as name (quorum 2), down after down_after_ms.
zh_server_t *zh_sentinel_start(const char *name, int master_port, int down_after_ms);

//  The server's port.
int zh_port(zh_server_t *self);

//  SIGKILLs the server and reaps it (the directory stays).
void zh_kill(zh_server_t *self);

//  Kills the server if it runs, removes its directory, frees it; idempotent.
void zh_destroy(zh_server_t **self_p);

//  A connection to 127.0.0.1:port as the default user (the caller destroys
//  it), for setting a server up.
zc_redis_t *zh_connect(int port);

//  Runs one command on 127.0.0.1:port and returns 1 if the reply is not an
//  error (format as redisCommand).
int zh_command_ok(int port, const char *format, ...);

//  Polls until the server at port says ROLE master (want 1) or not (0);
//  returns 1, or 0 after timeout_ms.
int zh_wait_role(int port, int want_master, int timeout_ms);

//  Polls command on the server at port until check accepts its reply;
//  returns 1, or 0 after timeout_ms.
int zh_wait_reply(int port, const char *command, int (*check)(const redisReply *), int timeout_ms);

//  A check for zh_wait_reply: INFO replication says the link to the master
//  is up.
int zh_link_up(const redisReply *reply);

//  What a failover test watches on the replica that is to be promoted:
//  when it became a master, and when each node's registry lease was
//  refreshed on it after that (the node came back).
typedef struct {
    int64_t promoted_at;
    int64_t back_at[16]; //  when the lease was refreshed (from its TTL)
} zh_watch_t;

//  Looks once: notes the promotion (ROLE) and then the leases of nodes ids
//  (count, at most 16) of cluster refreshed since (a lease of lease_ms that
//  ends after promotion + lease_ms). Returns how many came back so far.
int zh_watch(zh_watch_t *self, zc_redis_t *replica, const char *cluster, const char *const *ids,
             int count, int lease_ms);

//  The time the last of count nodes came back (0 if one has not).
int64_t zh_watch_done(zh_watch_t *self, int count);

//  The jobs a failover test enqueued (j-0 .. j-(enqueued-1), each
//  acknowledged) and how often a worker said it ran each.
#define ZH_JOBS_MAX 20000
typedef struct {
    int enqueued;
    unsigned char runs[ZH_JOBS_MAX];
} zh_jobs_t;

//  Enqueues the next job (task noop on queue_name). Returns 0, or -1 (the
//  queue's error says why).
int zh_jobs_enqueue(zh_jobs_t *self, zc_queue_t *queue, const char *queue_name);

//  Reads the `done j-N` lines a `zcluster worker` printed so far.
void zh_jobs_collect(zh_jobs_t *self, zt_proc_t *worker);

//  The acknowledged jobs that never ran / that ran more than once.
int zh_jobs_lost(zh_jobs_t *self);
int zh_jobs_twice(zh_jobs_t *self);

#endif
