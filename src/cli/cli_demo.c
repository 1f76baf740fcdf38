/*  zcluster demo — a supervised local cluster doing real work, with a summary.

    The demo is a master (the library's zc_supervisor, in this process) with
    a private redis-server and N worker processes, each one `zcluster demo
    --worker` started with its node id in ZC_NODE_ID. The workers find each
    other through the Redis registry and then:
      - exchange public, group ("odd"/"even" by index) and private messages
        directly over ZeroMQ, each counting what it got from whom;
      - share a task queue in Redis: each enqueues its part of the tasks and
        all of them drain the queue together, so the sum over workers shows
        that no task was lost or run twice;
    and report back to the master with a status line. The master then shows
    the supervisor at work: it SIGKILLs one worker (respawned), does a
    rolling reload gated on readiness, and shuts everything down gracefully.

    Barriers: a worker must not send before every peer is subscribed to it
    (ZeroMQ drops PUB messages for a subscriber that has not connected yet),
    so workers meet twice: "up" (sent until everyone has mine) and "go"
    (sent once I have everyone's "up": whoever has my "go" has my "up" too,
    so my messages reach it). Both are re-sent until every peer's arrived.
*/
#include "cli.h"
#include "cli_args.h"
#include "zc_queue.h"
#include "zc_supervisor.h"
#include "zcluster.h"

#include <czmq.h>
#include <jansson.h>
#include <limits.h>
#include <msgpack.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEMO_MAX_WORKERS 8
#define DEMO_QUEUE       "demo"

//  --------------------------------------------------------------------------
//  Worker side

typedef struct {
    int index, workers;
    uint64_t public_n, group_n, private_n, strangers;
    atomic_long tasks, sum;
    int rpc_ok;                 //  RPC checks that came back right
    zc_queue_t *queue;          //  the shared task queue
    zc_queue_worker_t *drainer; //  this worker's share of draining it
} s_worker_t;

//  RPC method "square": msgpack integer in, its square out.
static void s_rpc_square(zc_rpc_request_t *request, void *arg)
{
    msgpack_unpacked in;
    msgpack_unpacked_init(&in);
    size_t offset = 0;
    if (msgpack_unpack_next(&in, (const char *)zc_rpc_request_args(request),
                            zc_rpc_request_size(request), &offset) != MSGPACK_UNPACK_SUCCESS ||
        in.data.type != MSGPACK_OBJECT_POSITIVE_INTEGER || in.data.via.u64 > 1000000) {
        msgpack_unpacked_destroy(&in);
        zc_rpc_fail(request, 1, "square takes a small non-negative integer");
        return;
    }
    int64_t x = (int64_t)in.data.via.u64;
    msgpack_unpacked_destroy(&in);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    msgpack_pack_int64(&pk, x * x);
    zc_rpc_respond(request, out.data, out.size);
    msgpack_sbuffer_destroy(&out);
}

//  Calls "square" on the next worker and "ping" on every node; counts the
//  checks that came back right (2 when all is well).
static int s_rpc_checks(zc_node_t *node, zc_rpc_t *rpc, s_worker_t *w)
{
    char next[256];
    zc_supervisor_worker_id(next, sizeof next, zc_node_cluster(node), w->index % w->workers + 1);
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    msgpack_pack_int(&pk, w->index);
    int ok = 0;
    zc_rpc_call_t *call = zc_rpc_call(rpc, ZC_RPC_NODE, next, "square", args.data, args.size, 5000);
    const zc_rpc_reply_t *reply = zc_rpc_call_reply(call, 0);
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    if (zc_rpc_call_status(call) == ZC_OK && reply &&
        msgpack_unpack_next(&result, (const char *)reply->data, reply->size, &offset) ==
            MSGPACK_UNPACK_SUCCESS &&
        result.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        result.data.via.u64 == (uint64_t)(w->index * w->index))
        ok++;
    msgpack_unpacked_destroy(&result);
    zc_rpc_call_destroy(&call);
    msgpack_sbuffer_destroy(&args);
    call = zc_rpc_call(rpc, ZC_RPC_ALL_GATHER, NULL, "ping", NULL, 0, 5000);
    if (zc_rpc_call_status(call) == ZC_OK && zc_rpc_call_replies(call) == (size_t)w->workers &&
        zc_rpc_call_missing(call) == 0)
        ok++;
    zc_rpc_call_destroy(&call);
    return ok;
}

static volatile sig_atomic_t s_stop;

static void s_on_term(int sig)
{
    s_stop = 1;
}

static const char *s_group_of(int index)
{
    return index % 2 ? "odd" : "even";
}

//  A worker's index from text (its ZC_WORKER_INDEX, or the number after
//  the last '-' of its id): 1..max, or 0 if text says none.
static int64_t s_index(const char *text, int64_t max)
{
    int64_t index = 0;
    return text && cli_args_number(text, 1, max, &index) == 0 ? index : 0;
}

static void s_on_hello(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg)
{
    s_worker_t *w = (s_worker_t *)arg;
    const char *dash = strrchr(zc_msg_sender(msg), '-');
    int from = (int)s_index(dash ? dash + 1 : NULL, w->workers);
    if (from < 1 || from > w->workers || from == w->index)
        w->strangers++;
    else if (zc_msg_kind(msg) == ZC_KIND_PUBLIC)
        w->public_n++;
    else if (zc_msg_kind(msg) == ZC_KIND_GROUP)
        w->group_n++;
    else if (zc_msg_kind(msg) == ZC_KIND_PRIVATE)
        w->private_n++;
}

static int s_task_square(zc_job_t *job, void *arg)
{
    s_worker_t *w = (s_worker_t *)arg;
    size_t size = 0;
    const void *args = zc_job_args(job, &size);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    int rc = -1;
    if (msgpack_unpack_next(&unpacked, (const char *)args, size, NULL) == MSGPACK_UNPACK_SUCCESS &&
        unpacked.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        long n = (long)unpacked.data.via.u64;
        atomic_fetch_add(&w->tasks, 1);
        atomic_fetch_add(&w->sum, n * n);
        rc = 0;
    } else
        zc_job_set_error(job, "expected an integer");
    msgpack_unpacked_destroy(&unpacked);
    return rc;
}

//  Publishes `name` until every peer confirmed it (see the file comment).
static int s_barrier(zc_node_t *node, const char *name, int peers, int timeout_ms)
{
    char up[64], go[64];
    snprintf(up, sizeof up, "%s.up", name);
    snprintf(go, sizeof go, "%s.go", name);
    int64_t deadline = zclock_mono() + timeout_ms;
    int have_ups = 0;
    while (zclock_mono() < deadline && !s_stop) {
        zc_node_confirm(node, up);
        if (have_ups) zc_node_confirm(node, go);
        zlist_t *ups = zc_node_wait_confirmations(node, up, (size_t)peers, 100);
        have_ups |= ups != NULL;
        zlist_destroy(&ups);
        zlist_t *gos = have_ups ? zc_node_wait_confirmations(node, go, (size_t)peers, 1) : NULL;
        int done = gos != NULL;
        zlist_destroy(&gos);
        if (done) {
            zc_node_confirm(node, go);
            return 0;
        }
    }
    return -1;
}

//  Enqueues this worker's share of the tasks: numbers index-1, index-1+N...
static int s_enqueue(zc_queue_t *queue, s_worker_t *w, int tasks)
{
    for (int i = w->index - 1; i < tasks; i += w->workers) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init(&sbuf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
        msgpack_pack_int(&pk, i);
        char id[32];
        snprintf(id, sizeof id, "square-%d", i);
        zc_job_opts_t opts = {.id = id};
        int rc = zc_queue_enqueue(queue, DEMO_QUEUE, "square", sbuf.data, sbuf.size, &opts, NULL);
        msgpack_sbuffer_destroy(&sbuf);
        //  A task still live from an earlier start is not a failure: it runs once.
        if (rc < 0 && zc_queue_error(queue) != ZC_ERR_DUPLICATE) return -1;
    }
    return 0;
}

//  Sends count messages of each kind; waits to receive what it should.
static int s_exchange(zc_node_t *node, s_worker_t *w, int count)
{
    char text[64], next[256];
    snprintf(text, sizeof text, "hello from %s", zc_node_id(node));
    zc_supervisor_worker_id(next, sizeof next, zc_node_cluster(node), w->index % w->workers + 1);
    for (int i = 0; i < count && !s_stop; i++) {
        zc_node_publish(node, "hello", text, strlen(text));
        zc_node_shout(node, s_group_of(w->index), "hello", text, strlen(text));
        while (zc_node_whisper(node, next, "hello", text, strlen(text)) != 0 && !s_stop)
            zc_node_recv(node, 1);
        zc_node_recv(node, 0);
    }
    int same_group = 0;
    for (int j = 1; j <= w->workers; j++)
        same_group += j != w->index && j % 2 == w->index % 2;
    uint64_t want_public = (uint64_t)count * (uint64_t)(w->workers - 1);
    uint64_t want_group = (uint64_t)count * (uint64_t)same_group;
    int64_t deadline = zclock_mono() + 15000;
    while (zclock_mono() < deadline && !s_stop &&
           (w->public_n < want_public || w->group_n < want_group || w->private_n < (uint64_t)count))
        zc_node_recv(node, 10);
    return 0;
}

//  Drains the shared queue together with the other workers after
//  enqueueing this worker's share; says in status what went wrong, if
//  anything. The queue and drainer stay on w until the worker exits.
static void s_worker_tasks(zc_node_t *node, s_worker_t *w, int tasks, char *status, size_t cap)
{
    w->queue = zc_queue_new(NULL, zc_node_cluster(node));
    w->drainer = w->queue ? zc_queue_worker_new(w->queue, zc_node_id(node)) : NULL;
    zc_queue_worker_t *drainer = w->drainer;
    if (!*status && drainer) {
        zc_queue_worker_register(drainer, "square", s_task_square, w);
        zc_queue_worker_add_queue(drainer, DEMO_QUEUE);
        zc_queue_worker_set_concurrency(drainer, 8);
        zc_queue_worker_set_threads(drainer, 0);
        if (zc_queue_worker_start(drainer))
            snprintf(status, cap, "error task queue: %s", zc_queue_worker_errstr(drainer));
        else if (s_enqueue(w->queue, w, tasks))
            snprintf(status, cap, "error task queue: %s", zc_queue_errstr(w->queue));
    } else if (!*status)
        snprintf(status, cap, "error no task queue");
    int64_t deadline = zclock_mono() + 20000;
    zc_queue_stats_t stats = {0};
    while (!*status && !s_stop && zclock_mono() < deadline) {
        if (zc_queue_stats(w->queue, DEMO_QUEUE, &stats) == 0 && stats.processed >= tasks) break;
        zc_node_recv(node, 20);
    }
    zc_queue_worker_stop(drainer);
}

//  A fresh worker's part of the demo; its report (or what went wrong) in
//  status.
static void s_worker_demo(zc_node_t *node, zc_rpc_t *rpc, s_worker_t *w, int count, int tasks,
                          char *status, size_t cap)
{
    //  1. Meet every peer, then messages of every kind.
    int64_t t0 = zclock_mono();
    if (s_barrier(node, "start", w->workers - 1, 20000))
        snprintf(status, cap, "error not every peer showed up");
    else
        s_exchange(node, w, count);
    int64_t messages_ms = zclock_mono() - t0;

    //  2. RPC: "square" on the next worker, "ping" on every node.
    if (!*status) w->rpc_ok = s_rpc_checks(node, rpc, w);

    //  3. Tasks: enqueue a share, drain the queue together.
    s_worker_tasks(node, w, tasks, status, cap);

    //  4. Leave nobody behind before reporting.
    if (!*status && s_barrier(node, "done", w->workers - 1, 20000))
        snprintf(status, cap, "error not every peer finished");
    zc_mesh_stats_t ms;
    zc_mesh_stats(zc_node_mesh(node), &ms);
    if (!*status)
        snprintf(status, cap,
                 "report public=%" PRIu64 " group=%" PRIu64 " private=%" PRIu64
                 " strangers=%" PRIu64 " lost=%" PRIu64 " tasks=%ld sum=%ld ms=%lld rpc=%d",
                 w->public_n, w->group_n, w->private_n, w->strangers, ms.lost,
                 atomic_load(&w->tasks), atomic_load(&w->sum), (long long)messages_ms, w->rpc_ok);
}

//  A respawned or reloaded worker: back in the cluster, nothing to redo.
static void s_worker_rejoin(zc_node_t *node, int workers, char *status, size_t cap)
{
    int64_t deadline = zclock_mono() + 10000;
    while (zc_node_peer_count(node) < (size_t)(workers - 1) && zclock_mono() < deadline && !s_stop)
        zc_node_recv(node, 20);
    snprintf(status, cap, "rejoined peers=%zu", zc_node_peer_count(node));
}

//  The worker's node, started and in its group, serving "square" (*rpc_p),
//  or NULL after telling the master why not.
static zc_node_t *s_worker_start(s_worker_t *w, zc_rpc_t **rpc_p)
{
    zc_node_t *node = zc_node_new(NULL); //  NAME-worker-N from the master
    if (!node || w->index < 1) {
        zc_supervisor_status("error not started by a zcluster master");
        zc_node_destroy(&node);
        return NULL;
    }
    zc_node_join(node, s_group_of(w->index));
    zc_mesh_on(zc_node_mesh(node), "hello", s_on_hello, w);
    if (zc_node_start(node)) {
        zc_supervisor_status("error the node did not start");
        zc_node_destroy(&node);
        return NULL;
    }
    *rpc_p = zc_rpc_new(node);
    zc_rpc_register(*rpc_p, "square", s_rpc_square, NULL);
    return node;
}

static int s_worker_run(int workers, int count, int tasks)
{
    const char *reason = getenv("ZC_START_REASON");
    s_worker_t w;
    memset(&w, 0, sizeof w);
    w.index = (int)s_index(getenv("ZC_WORKER_INDEX"), INT_MAX);
    w.workers = workers;
    zc_rpc_t *rpc = NULL;
    zc_node_t *node = s_worker_start(&w, &rpc);
    if (!node) return 1;
    //  After CZMQ set up its own handlers: SIGTERM is ours to handle.
    signal(SIGTERM, s_on_term);
    zc_supervisor_ready();
    char status[256] = "";
    if (!reason || strcmp(reason, "start") == 0)
        s_worker_demo(node, rpc, &w, count, tasks, status, sizeof status);
    else
        s_worker_rejoin(node, workers, status, sizeof status);
    zc_supervisor_status(status);
    while (!s_stop)
        zc_node_recv(node, 100);
    zc_queue_worker_destroy(&w.drainer);
    zc_queue_destroy(&w.queue);
    zc_rpc_destroy(&rpc);
    zc_node_destroy(&node);
    return 0;
}

//  --------------------------------------------------------------------------
//  Master side

typedef struct {
    int workers, count, tasks;
    int64_t t0;
    int ready, phase; //  0 exchange, 1 respawn, 2 reload, 3 stopping
    char reports[DEMO_MAX_WORKERS + 1][256];
    int reported;
    char victim[64];
    int64_t killed_at;
    long long respawn_ms, reload_ms, reload_min_ready, reload_expected, reload_replaced;
    int reload_ok, respawn_ok;
    char failure[512];
} s_demo_t;

static volatile sig_atomic_t s_timed_out;

static void s_on_alarm(int sig)
{
    s_timed_out = 1;
    kill(getpid(), SIGTERM); //  the supervisor's graceful shutdown
}

static double s_secs(s_demo_t *d)
{
    return (double)(zclock_mono() - d->t0) / 1000;
}

//  Records the first failure (what, then detail) and shuts the demo down.
static void s_fail(zc_supervisor_t *sup, s_demo_t *d, const char *what, const char *detail)
{
    if (!*d->failure) snprintf(d->failure, sizeof d->failure, "%s%s", what, detail);
    d->phase = 3;
    zc_supervisor_shutdown(sup);
}

static void s_on_event(zc_supervisor_t *sup, const zc_supervisor_event_t *e, void *arg)
{
    s_demo_t *d = (s_demo_t *)arg;
    const char *worker = e->worker ? e->worker : "";
    const char *dash = strrchr(worker, '-');
    int index = (int)s_index(dash ? dash + 1 : NULL, d->workers);
    if (!strcmp(e->event, "ready") && d->phase == 0 && ++d->ready == d->workers) {
        printf("[%6.2f s] %d workers ready; they find each other in the registry, exchange "
               "messages and share the tasks\n",
               s_secs(d), d->workers);
        fflush(stdout);
    } else if (!strcmp(e->event, "ready") && d->phase == 1 && !strcmp(worker, d->victim)) {
        d->respawn_ms = (long long)(zclock_mono() - d->killed_at);
        d->respawn_ok = 1;
        printf("[%6.2f s] the master respawned %s: ready again %lld ms after the SIGKILL\n",
               s_secs(d), worker, d->respawn_ms);
        printf("[%6.2f s] rolling reload (as on SIGHUP): one worker at a time, each replacement "
               "ready before its predecessor stops\n",
               s_secs(d));
        fflush(stdout);
        d->phase = 2;
        if (zc_supervisor_reload(sup)) s_fail(sup, d, "the reload did not start", "");
    } else if (!strcmp(e->event, "status") && e->text && d->phase == 0) {
        if (!strncmp(e->text, "error", 5))
            s_fail(sup, d, "a worker failed: ", e->text);
        else if (!strncmp(e->text, "report ", 7) && index >= 1 && index <= d->workers &&
                 !*d->reports[index]) {
            snprintf(d->reports[index], sizeof d->reports[index], "%s", e->text + 7);
            if (++d->reported == d->workers) {
                printf("[%6.2f s] every worker reported\n", s_secs(d));
                zc_supervisor_worker_id(d->victim, sizeof d->victim, "demo", 2);
                printf("[%6.2f s] SIGKILL %s\n", s_secs(d), d->victim);
                fflush(stdout);
                d->phase = 1;
                d->killed_at = zclock_mono();
                if (zc_supervisor_signal(sup, d->victim, SIGKILL))
                    s_fail(sup, d, "no worker to kill", "");
            }
        }
    } else if (!strcmp(e->event, "reload") && d->phase == 2 && strcmp(e->reason, "started") != 0) {
        json_t *j = json_loads(e->json, 0, NULL);
        d->reload_ok = !strcmp(e->reason, "done");
        d->reload_ms = (long long)json_integer_value(json_object_get(j, "ms"));
        d->reload_min_ready = (long long)json_integer_value(json_object_get(j, "min_ready"));
        d->reload_expected = (long long)json_integer_value(json_object_get(j, "expected"));
        d->reload_replaced = (long long)json_integer_value(json_object_get(j, "replaced"));
        json_decref(j);
        printf("[%6.2f s] reload %s: %lld of %d workers replaced in %lld ms, never fewer than "
               "%lld of %lld ready\n",
               s_secs(d), e->reason, d->reload_replaced, d->workers, d->reload_ms,
               d->reload_min_ready, d->reload_expected);
        printf("[%6.2f s] graceful shutdown: SIGTERM to every worker, the private Redis last\n",
               s_secs(d));
        fflush(stdout);
        d->phase = 3;
        zc_supervisor_shutdown(sup);
    } else if (!strcmp(e->event, "exit") && !strcmp(e->reason, "crash") && d->phase == 0)
        s_fail(sup, d, "a worker crashed during the exchange: ", worker);
    else if (!strcmp(e->event, "group") && !strcmp(e->reason, "failed"))
        s_fail(sup, d, "the workers hit the restart limit: ", e->text ? e->text : "");
}

//  Checks one report against what the worker must have got. Returns 1 if right.
static int s_check_report(s_demo_t *d, int i, long *tasks, long *sum)
{
    unsigned long long pub = 0, grp = 0, prv = 0, strangers = 0, lost = 0;
    long t = 0, s = 0;
    long long ms = 0;
    int rpc = 0;
    if (sscanf(d->reports[i],
               "public=%llu group=%llu private=%llu strangers=%llu lost=%llu tasks=%ld sum=%ld "
               "ms=%lld rpc=%d",
               &pub, &grp, &prv, &strangers, &lost, &t, &s, &ms, &rpc) != 9)
        return 0;
    int same_group = 0;
    for (int j = 1; j <= d->workers; j++)
        same_group += j != i && j % 2 == i % 2;
    unsigned long long c = (unsigned long long)d->count;
    int ok = pub == c * (unsigned long long)(d->workers - 1) &&
             grp == c * (unsigned long long)same_group && prv == c && !strangers && !lost &&
             rpc == 2;
    char id[64];
    zc_supervisor_worker_id(id, sizeof id, "demo", i);
    printf("  %-14s %-5s %9llu %9llu %9llu %5llu %5d/2 %7ld   %s\n", id, s_group_of(i), pub, grp,
           prv, lost, rpc, t, ok ? "ok" : "WRONG");
    *tasks += t;
    *sum += s;
    return ok;
}

//  The master: a supervisor with a group of `zcluster demo --worker`
//  processes, its runtime files in dir (a new directory under /tmp, cap
//  bytes). Returns NULL after saying why not.
static zc_supervisor_t *s_master_new(const s_demo_t *d, const char *redis, char *dir, size_t cap)
{
    char exe[4096], count_text[16], tasks_text[16], workers_text[16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "zcluster demo: cannot find its own executable\n");
        return NULL;
    }
    exe[n] = 0;
    snprintf(dir, cap, "/tmp/zcluster-demo-XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "zcluster demo: cannot create a runtime directory in /tmp\n");
        return NULL;
    }
    snprintf(count_text, sizeof count_text, "%d", d->count);
    snprintf(tasks_text, sizeof tasks_text, "%d", d->tasks);
    snprintf(workers_text, sizeof workers_text, "%d", d->workers);
    char *const argv[] = {exe,       "demo",     "--worker", "--workers", workers_text,
                          "--count", count_text, "--tasks",  tasks_text,  NULL};
    zc_supervisor_t *sup = zc_supervisor_new("demo");
    zc_supervisor_add_group(sup, "demo", d->workers, argv);
    zc_supervisor_set_runtime_dir(sup, dir);
    zc_supervisor_set_redis(sup, redis);
    zc_supervisor_set_admin_port(sup, -1);
    zc_supervisor_set_ready_timeout(sup, 15000);
    zc_supervisor_set_stop_timeout(sup, 5000);
    zc_supervisor_set_backoff(sup, 50, 1000);
    return sup;
}

//  Prints the table of reports and the verdict. Returns 1 if all is well.
static int s_summary(s_demo_t *d, int code)
{
    int ok = d->reported == d->workers && !*d->failure && !s_timed_out && code == 0;
    long total_tasks = 0, total_sum = 0, want_sum = 0;
    for (long i = 0; i < d->tasks; i++)
        want_sum += i * i;
    if (d->reported) {
        printf("\n  %-14s %-5s %9s %9s %9s %5s %7s %7s\n", "worker", "group", "public", "group",
               "private", "lost", "rpc", "tasks");
        for (int i = 1; i <= d->workers; i++)
            ok &= *d->reports[i] ? s_check_report(d, i, &total_tasks, &total_sum) : 0;
        printf("  %-14s %-5s %9s %9s %9s %5s %7s %7ld   %s\n", "total", "", "", "", "", "", "",
               total_tasks, total_tasks == d->tasks && total_sum == want_sum ? "ok" : "WRONG");
        ok &= total_tasks == d->tasks && total_sum == want_sum;
    }
    ok &= d->respawn_ok && d->reload_ok && d->reload_min_ready >= d->workers;
    printf("\n");
    if (*d->failure)
        printf("FAILED: %s\n", d->failure);
    else if (s_timed_out)
        printf("FAILED: the demo did not finish within 90 s\n");
    else if (!ok)
        printf("FAILED: see the table above\n");
    else
        printf("OK: every worker got %d public messages from each other worker, %d group\n"
               "messages from each member of its own group only and %d private messages from\n"
               "the worker before it, none lost; RPC calls to the next worker and to all\n"
               "workers answered right; the %d tasks ran once each, spread over the\n"
               "workers; the killed worker came back in %lld ms and the rolling reload kept all\n"
               "%d workers ready throughout.\n",
               d->count, d->count, d->count, d->tasks, d->respawn_ms, d->workers);
    return ok;
}

static int s_master_run(int workers, int count, int tasks, const char *redis)
{
    s_demo_t d;
    memset(&d, 0, sizeof d);
    d.workers = workers;
    d.count = count;
    d.tasks = tasks;
    char dir[64];
    if (!getenv("ZC_LOG_LEVEL")) { //  the demo tells its own story (workers inherit this)
        setenv("ZC_LOG_LEVEL", "error", 1);
        zc_log_set_level(ZC_LOG_ERROR);
    }
    zc_supervisor_t *sup = s_master_new(&d, redis, dir, sizeof dir);
    if (!sup) return 1;
    d.t0 = zclock_mono();
    zc_supervisor_on_event(sup, s_on_event, &d);
    printf("zcluster %s demo: a master supervising %d worker processes and %s;\n"
           "%d messages of each kind per worker, %d tasks on a shared queue\n\n",
           zcluster_version(), workers,
           redis && *redis ? "the given Redis" : "a private redis-server", count, tasks);
    fflush(stdout);
    signal(SIGALRM, s_on_alarm);
    alarm(90);
    int code = zc_supervisor_run(sup);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    zc_supervisor_destroy(&sup);
    rmdir(dir);
    printf("[%6.2f s] master exited with code %d\n", s_secs(&d), code);
    return s_summary(&d, code) ? 0 : 1;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: zcluster demo [--workers N (2..%d, default 4)] [--count N (default "
            "1000)]\n"
            "                     [--tasks N (default 200)] [--redis URL] [--keys FILE]\n"
            "                     [membership settings, passed on to the workers]\n\n"
            "Runs a master (as `zcluster start` would) with a private redis-server "
            "unless\n--redis is given, and N workers that exchange public, group and "
            "private\nmessages and share a task queue; then kills one worker, reloads "
            "them all\nand shuts down, and prints a summary: OK (exit 0) or "
            "FAILED.\n\n" CLI_USAGE_MEMBERSHIP,
            DEMO_MAX_WORKERS);
}

//  The command line of `zcluster demo`.
typedef struct {
    cli_cluster_t where; //  --redis
    int64_t workers, count, tasks;
    int worker; //  --worker: run as one of the master's workers
} s_options_t;

//  Takes --workers, --count, --tasks or --worker (cli_option_fn over an
//  s_options_t). A value that is not a number counts as -1, out of range.
static int s_option(void *self, int option, const char *value)
{
    s_options_t *o = (s_options_t *)self;
    int taken = cli_membership_option("demo", option, value);
    if (taken) return taken == 1 ? -1 : taken;
    int64_t *number = option == 'n' ? &o->workers : option == 'c' ? &o->count : &o->tasks;
    if (option == 'W')
        o->worker = 1;
    else if (cli_args_number(value, INT_MIN, INT_MAX, number))
        *number = -1;
    return -1;
}

int cli_demo(int argc, char **argv)
{
    static struct option options[] = {{"workers", required_argument, 0, 'n'},
                                      {"nodes", required_argument, 0, 'n'},
                                      {"count", required_argument, 0, 'c'},
                                      {"tasks", required_argument, 0, 't'},
                                      CLI_OPTION_REDIS,
                                      CLI_OPTION_KEYS,
                                      {"worker", no_argument, 0, 'W'},
                                      CLI_OPTION_MEMBERSHIP,
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    s_options_t o = {{NULL, NULL, NULL, NULL}, 4, 1000, 200, 0};
    cli_args_t args = {"n:c:t:h", options, s_usage, &o.where, NULL, s_option, &o};
    int rc = cli_args_parse(&args, argc, argv);
    if (rc >= 0) return rc;
    if (o.workers < 2 || o.workers > DEMO_MAX_WORKERS || o.count < 1 || o.count > 1000000 ||
        o.tasks < 0 || o.tasks > 100000) {
        fprintf(stderr,
                "zcluster demo: --workers must be 2..%d, --count 1..1000000, --tasks 0..100000\n",
                DEMO_MAX_WORKERS);
        return CLI_USAGE;
    }
    if (o.worker) return s_worker_run((int)o.workers, (int)o.count, (int)o.tasks);
    return s_master_run((int)o.workers, (int)o.count, (int)o.tasks, o.where.redis);
}
