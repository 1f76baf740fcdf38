/*  The CLI's long-running commands under a master (issue 18).

    `zcluster start -n 3 -- zcluster worker --queue q`: the workers take
    their id, cluster and Redis from the master's ZC_* variables, say they
    are ready, and keep draining with stdin at /dev/null, while this process
    enqueues a job every 10 ms through a SIGKILL and respawn, a SIGHUP
    rolling reload and a SIGTERM stop. Jobs complete in every phase, none is
    stranded or fails, none runs twice except around the SIGKILL, and the
    stop finishes the running jobs and gives the others back.

    `zcluster start -n 3 -- zcluster node`: three nodes form a cluster (the
    registry and a fourth, console node see them), a SIGKILLed one is
    respawned under its id and rejoins, a reload replaces every node and the
    master stops cleanly.

    `zcluster start -- zcluster cache`: the console has nothing to serve
    there and says so (exit 64) rather than claim it is ready and end. */
#include "supkit.h"
#include "zc_queue.h"

#define WORKERS          3
#define CONCURRENCY      4 //  the worker's default: what a SIGKILL may double
#define JOBS_MAX         20000
#define ENQUEUE_EVERY_MS 10

//  --------------------------------------------------------------------------
//  A steady flow of jobs, and what the workers print about them

typedef struct {
    zs_master_t *master;
    zc_queue_t *queue;
    const char *name;    //  cluster
    int producing;       //  enqueue a job every ENQUEUE_EVERY_MS
    int job_ms;          //  what each job sleeps
    int enqueued;        //  jobs job-0 .. job-(enqueued-1)
    int enqueue_errors;  //  enqueues Redis refused
    int done;            //  `done` lines
    int ready_lines;     //  `ready` lines with an id NAME-worker-N
    int bad_ready_lines; //  `ready` lines with another id
    unsigned char runs[JOBS_MAX];
    int64_t next_enqueue;
    int64_t last_done; //  when the last `done` line came, 0: not watching
    int64_t longest_gap;
} s_flow_t;

//  Enqueues job-N (a sleep of job_ms) if it is time, or at once if force;
//  counts the enqueues Redis refused.
static void s_enqueue(s_flow_t *flow, int force)
{
    int64_t now = zt_now_ms();
    if (!force && (!flow->producing || now < flow->next_enqueue)) return;
    if (flow->enqueued == JOBS_MAX) return;
    flow->next_enqueue = now + ENQUEUE_EVERY_MS;
    char id[32];
    snprintf(id, sizeof id, "job-%d", flow->enqueued);
    zc_job_opts_t opts = {.id = id};
    unsigned char args = (unsigned char)flow->job_ms; //  a msgpack positive fixint
    if (zc_queue_enqueue(flow->queue, "q", "sleep", &args, 1, &opts, NULL) == 0)
        flow->enqueued++;
    else
        flow->enqueue_errors++;
}

//  Reads what the master's stdout has (its workers' lines), for up to ms.
static void s_read_output(s_flow_t *flow, int ms)
{
    const char *line;
    while ((line = zt_proc_expect(flow->master->proc, "", ms)) != NULL) {
        int n;
        char id[128];
        if (sscanf(line, "done job-%d", &n) == 1 && n >= 0 && n < JOBS_MAX) {
            flow->runs[n] += flow->runs[n] < 255;
            flow->done++;
            int64_t now = zt_now_ms();
            if (flow->last_done && now - flow->last_done > flow->longest_gap)
                flow->longest_gap = now - flow->last_done;
            if (flow->last_done) flow->last_done = now;
        } else if (sscanf(line, "ready %127s", id) == 1) {
            char prefix[128];
            snprintf(prefix, sizeof prefix, "%s-worker-", flow->name);
            if (strncmp(id, prefix, strlen(prefix)) == 0)
                flow->ready_lines++;
            else
                flow->bad_ready_lines++;
        }
        ms = 0;
    }
}

typedef int(s_until_fn)(s_flow_t *flow, void *arg);

//  Keeps the jobs flowing and the output read for up to ms, or until until
//  (checked every 250 ms) says 1. Returns 1 if it did (or if until is NULL).
static int s_pump(s_flow_t *flow, int ms, s_until_fn *until, void *arg)
{
    int64_t deadline = zt_now_ms() + ms, check = 0;
    while (zt_now_ms() < deadline) {
        s_enqueue(flow, 0);
        s_read_output(flow, 2);
        if (until && zt_now_ms() >= check) {
            if (until(flow, arg)) return 1;
            check = zt_now_ms() + 250;
        }
    }
    return until == NULL;
}

static zc_queue_stats_t s_stats(s_flow_t *flow)
{
    zc_queue_stats_t stats = {0};
    if (zc_queue_stats(flow->queue, "q", &stats)) stats.processed = -1;
    return stats;
}

//  Until: every job enqueued was acked and nothing waits or runs.
static int s_drained(s_flow_t *flow, void *arg)
{
    zc_queue_stats_t s = s_stats(flow);
    return s.queued == 0 && s.delayed == 0 && s.inflight == 0 && s.processed == flow->enqueued;
}

//  --------------------------------------------------------------------------
//  The master's workers

//  1 if no pid of before is among the workers' now.
static int s_all_replaced(zs_master_t *master, const int *before, int count)
{
    int now[16];
    int n = zs_pids(master, now, 16);
    for (int i = 0; i < count; i++)
        for (int j = 0; j < n; j++)
            if (before[i] == now[j]) return 0;
    return 1;
}

//  The event (event, worker, reason; NULL: any) published after seq, or
//  NULL (the caller decrefs it). Does not wait.
static json_t *s_event(zs_master_t *master, long long seq, const char *event, const char *worker,
                       const char *reason)
{
    json_t *events = zs_events(master, seq), *found = NULL, *e;
    size_t i;
    json_array_foreach(events, i, e)
    {
        if (!found && !strcmp(zs_str(e, "event"), event) &&
            (!worker || !strcmp(zs_str(e, "worker"), worker)) &&
            (!reason || !strcmp(zs_str(e, "reason"), reason)))
            found = json_deep_copy(e);
    }
    json_decref(events);
    return found;
}

//  What a respawn is waited for with: the worker, its old pid, the events
//  after seq.
typedef struct {
    const char *id;
    int old_pid;
    long long seq;
} s_respawn_t;

//  Until: the worker was respawned after a crash, and all are ready again.
static int s_respawned(s_flow_t *flow, void *arg)
{
    s_respawn_t *r = (s_respawn_t *)arg;
    json_t *event = s_event(flow->master, r->seq, "start", r->id, "crash");
    int pid = zs_pid(flow->master, r->id);
    int ok = event && pid > 0 && pid != r->old_pid && zs_ready_count(flow->master) == WORKERS;
    json_decref(event);
    return ok;
}

//  Until: more jobs were requeued than in the stats given.
static int s_requeued(s_flow_t *flow, void *arg)
{
    return s_stats(flow).requeued > ((zc_queue_stats_t *)arg)->requeued;
}

//  Until: the reload after seq is over (done or aborted).
static int s_reload_over(s_flow_t *flow, void *arg)
{
    long long seq = *(long long *)arg;
    json_t *done = s_event(flow->master, seq, "reload", NULL, "done");
    json_t *aborted = s_event(flow->master, seq, "reload", NULL, "aborted");
    int over = done || aborted;
    json_decref(done);
    json_decref(aborted);
    return over;
}

//  Starts `zcluster start -n WORKERS --redis URL -- zcluster PROGRAM ARGS`
//  (args NULL-terminated) for cluster name; NULL if it did not start.
static zs_master_t *s_master(const char *name, const char *url, const char *const *args)
{
    const char *cli = getenv("ZC_CLI");
    const char *opts[32] = {"--redis", url, "-n", "3", "--stop-timeout", "15s", "--", cli};
    int n = 8;
    for (int i = 0; args[i] && n < 31; i++)
        opts[n++] = args[i];
    opts[n] = NULL;
    return zs_start(name, opts, NULL);
}

//  --------------------------------------------------------------------------
//  zcluster start -- zcluster worker

//  Checks that jobs completed in this phase: processed grew since before,
//  and no stretch of the phase went without a completion for long.
static void s_check_flowed(s_flow_t *flow, const char *phase, const zc_queue_stats_t *before)
{
    zc_queue_stats_t after = s_stats(flow);
    printf("  %s: processed %lld -> %lld, longest gap between completions %lld ms\n", phase,
           (long long)before->processed, (long long)after.processed, (long long)flow->longest_gap);
    ZT_CHECK(after.processed > before->processed + 20);
    ZT_CHECK(flow->longest_gap < 3000);
    flow->longest_gap = 0;
}

//  SIGKILLs worker pid of id at a moment it holds claims (it is stopped
//  while they are counted, so none ends in between). Returns 1 if it did;
//  that it holds claims under id shows it took its id from ZC_NODE_ID.
static int s_kill_holding(s_flow_t *flow, const char *id, int pid)
{
    int64_t deadline = zt_now_ms() + 10000;
    while (pid > 0 && zt_now_ms() < deadline) {
        kill(pid, SIGSTOP);
        redisReply *held =
            zs_redis(zc_queue_redis_url(flow->queue), "SCARD zc:{%s}:q:node:%s", flow->name, id);
        int holds = held && held->type == REDIS_REPLY_INTEGER && held->integer > 0;
        if (held) freeReplyObject(held);
        if (holds) return kill(pid, SIGKILL) == 0;
        kill(pid, SIGCONT);
        s_pump(flow, 30, NULL, NULL);
    }
    return 0;
}

//  SIGKILLs worker 2: respawned under its id, its jobs return, jobs flow.
static void s_worker_kill(s_flow_t *flow)
{
    zs_master_t *master = flow->master;
    zc_queue_stats_t before = s_stats(flow);
    char id[128];
    zs_worker_id(master, 1, id, sizeof id);
    s_respawn_t respawn = {id, zs_pid(master, id), zs_last_seq(master)};
    ZT_CHECK(s_kill_holding(flow, id, respawn.old_pid));
    ZT_CHECK(s_pump(flow, 20000, s_respawned, &respawn));
    //  Its claims lapse (1.5 s) and return: counted as requeued (a loaded
    //  machine may take longer; the 2 s target is measured, not asserted).
    ZT_CHECK(s_pump(flow, 15000, s_requeued, &before));
    s_check_flowed(flow, "SIGKILL and respawn", &before);
}

//  SIGHUP: every worker replaced, one at a time; jobs flow throughout.
static void s_worker_reload(s_flow_t *flow)
{
    zs_master_t *master = flow->master;
    zc_queue_stats_t before = s_stats(flow);
    int pids[WORKERS];
    ZT_EQ(zs_pids(master, pids, WORKERS), WORKERS);
    long long seq = zs_last_seq(master);
    kill(master->pid, SIGHUP);
    ZT_CHECK(s_pump(flow, 40000, s_reload_over, &seq));
    json_t *done = s_event(master, seq, "reload", NULL, "done");
    ZT_CHECK(done != NULL);
    json_decref(done);
    ZT_CHECK(s_all_replaced(master, pids, WORKERS));
    ZT_EQ(zs_ready_count(master), WORKERS);
    s_pump(flow, 500, NULL, NULL);
    s_check_flowed(flow, "SIGHUP reload", &before);
}

//  Stops producing and checks that nothing is stranded: every job ran,
//  none failed, none twice except around the SIGKILL.
static void s_worker_drain(s_flow_t *flow)
{
    flow->producing = 0;
    flow->last_done = 0;
    ZT_CHECK(s_pump(flow, 20000, s_drained, NULL));
    s_read_output(flow, 300);
    zc_queue_stats_t s = s_stats(flow);
    int missing = 0, doubles = 0;
    for (int i = 0; i < flow->enqueued; i++) {
        missing += flow->runs[i] == 0;
        doubles += flow->runs[i] > 1;
    }
    printf("  drained: enqueued=%d processed=%lld requeued=%lld lost_acks=%lld failed=%lld "
           "done lines=%d missing=%d doubles=%d\n",
           flow->enqueued, (long long)s.processed, (long long)s.requeued, (long long)s.lost_acks,
           (long long)s.failed, flow->done, missing, doubles);
    ZT_EQ(flow->enqueue_errors, 0);
    ZT_EQ(s.processed, flow->enqueued);
    ZT_EQ(s.queued + s.delayed + s.inflight, 0);
    ZT_EQ(s.failed + s.failed_list, 0);
    ZT_EQ(missing, 0);
    ZT_CHECK(doubles <= CONCURRENCY); //  only a job done but not acked when SIGKILLed
}

//  SIGTERM with jobs running: the master exits 0, the running jobs finish,
//  the others go back to the queue, nothing is left claimed.
static void s_worker_stop(s_flow_t *flow)
{
    zs_master_t *master = flow->master;
    int pids[WORKERS];
    int count = zs_pids(master, pids, WORKERS);
    int first = flow->enqueued;
    flow->job_ms = 100;
    for (int i = 0; i < 40; i++)
        s_enqueue(flow, 1);
    s_pump(flow, 150, NULL, NULL); //  some start
    ZT_EQ(zs_stop(master, SIGTERM, 30000), 0);
    s_read_output(flow, 500); //  to the end of the output
    ZT_EQ(zs_wait_gone(pids, count, 5000), 0);
    zc_queue_stats_t s = s_stats(flow);
    int done = 0, doubles = 0;
    for (int i = first; i < flow->enqueued; i++) {
        done += flow->runs[i] > 0;
        doubles += flow->runs[i] > 1;
    }
    printf("  stopped: burst=%d processed=%d queued=%lld inflight=%lld\n", flow->enqueued - first,
           done, (long long)s.queued, (long long)s.inflight);
    ZT_EQ(s.inflight, 0);
    ZT_EQ(s.processed + s.queued, flow->enqueued);
    ZT_EQ(s.processed, first + done);
    ZT_EQ(doubles, 0);
    ZT_EQ(s.failed, 0);
}

static void s_test_worker(const char *url)
{
    zt_section("zcluster start -- zcluster worker");
    static s_flow_t flow;
    char name[64];
    snprintf(name, sizeof name, "sw%d", (int)getpid());
    flow.name = name;
    flow.job_ms = 20;
    flow.queue = zc_queue_new(url, name);
    const char *args[] = {"worker", "--queue", "q", NULL};
    flow.master = s_master(name, url, args);
    ZT_CHECK(flow.master && flow.queue);
    if (!flow.master || !flow.queue) return;
    int ready = zs_wait_ready(flow.master, WORKERS, 20000);
    ZT_CHECK(ready);
    if (ready) {
        flow.producing = 1;
        zc_queue_stats_t before = s_stats(&flow);
        flow.last_done = zt_now_ms();
        s_pump(&flow, 2000, NULL, NULL);
        s_check_flowed(&flow, "steady", &before);
        s_worker_kill(&flow);
        s_worker_reload(&flow);
        s_worker_drain(&flow);
        //  The respawn and the reload's 3 replacements said ready with their
        //  ids from ZC_NODE_ID (the first 3 may come before the master's line).
        ZT_CHECK(flow.ready_lines >= 1 + WORKERS);
        ZT_EQ(flow.bad_ready_lines, 0);
        s_worker_stop(&flow);
    } else
        ZT_EQ(zs_stop(flow.master, SIGTERM, 30000), 0);
    zs_destroy(&flow.master);
    zc_queue_destroy(&flow.queue);
}

//  --------------------------------------------------------------------------
//  zcluster start -- zcluster node

//  1 if redis answers 1 to SISMEMBER zc:{name}:nodes id.
static int s_registered(const char *url, const char *name, const char *id)
{
    redisReply *reply = zs_redis(url, "SISMEMBER zc:{%s}:nodes %s", name, id);
    int yes = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    if (reply) freeReplyObject(reply);
    return yes;
}

//  1 if the registry's node set is the master's workers and extra, and
//  each worker's record has its pid.
static int s_registry_is(const char *url, const char *name, zs_master_t *master, const char *extra)
{
    json_t *reply = zs_get(master, "/workers");
    json_t *workers = json_object_get(reply, "workers");
    redisReply *card = zs_redis(url, "SCARD zc:{%s}:nodes", name);
    int ok = card && card->type == REDIS_REPLY_INTEGER &&
             card->integer == (long long)json_array_size(workers) + 1 &&
             s_registered(url, name, extra);
    if (card) freeReplyObject(card);
    size_t i;
    json_t *w;
    json_array_foreach(workers, i, w)
    {
        const char *id = zs_str(w, "id");
        redisReply *pid = ok ? zs_redis(url, "HGET zc:{%s}:node:%s pid", name, id) : NULL;
        ok = ok && s_registered(url, name, id) && pid && pid->type == REDIS_REPLY_STRING &&
             atoll(pid->str) == zs_int(w, "pid");
        if (pid) freeReplyObject(pid);
    }
    json_decref(reply);
    return ok;
}

//  Waits up to ms for s_registry_is. Returns 1 if it came.
static int s_wait_registry(const char *url, const char *name, zs_master_t *master,
                           const char *extra, int ms)
{
    int64_t deadline = zt_now_ms() + ms;
    while (zt_now_ms() < deadline) {
        if (s_registry_is(url, name, master, extra)) return 1;
        zs_sleep_ms(100);
    }
    return 0;
}

//  Calls ping on every node from the console node; returns the replies
//  (the console's own included).
static int s_ping_all(zt_proc_t *probe, const char *tag)
{
    if (zt_proc_send(probe, "call %s * ping 5000", tag)) return -1;
    char prefix[96]; //  "result " + a tag of up to 63 bytes + " "
    snprintf(prefix, sizeof prefix, "result %s ", tag);
    const char *line = zt_proc_expect(probe, prefix, 15000);
    return line ? (int)zt_field(line, "replies") : -1;
}

//  Pings every node until all `expected` answer or ms passed: the probe
//  calls the peers it knows, and after a respawn or a reload its view
//  catches up with the registry's a moment later. Returns the last count.
static int s_ping_until(zt_proc_t *probe, const char *tag, int expected, int ms)
{
    int64_t deadline = zt_now_ms() + ms;
    int replies = -1;
    for (int round = 0; replies != expected && zt_now_ms() < deadline; round++) {
        char round_tag[64];
        snprintf(round_tag, sizeof round_tag, "%s.%d", tag, round);
        replies = s_ping_all(probe, round_tag);
        if (replies != expected) usleep(100 * 1000);
    }
    return replies;
}

static void s_test_node(const char *url)
{
    zt_section("zcluster start -- zcluster node");
    char name[64];
    snprintf(name, sizeof name, "sn%d", (int)getpid());
    const char *args[] = {"node", NULL};
    zs_master_t *master = s_master(name, url, args);
    ZT_CHECK(master != NULL);
    if (!master) return;
    int ready = zs_wait_ready(master, WORKERS, 20000);
    ZT_CHECK(ready);
    //  The probe joins with the credentials the master made for its workers.
    char keys[300];
    snprintf(keys, sizeof keys, "%s/cluster.keys", master->dir);
    zt_proc_t *probe = zt_cli_start("node", "--redis", url, "--cluster", name, "--id", "probe",
                                    "--keys", keys, NULL);
    ZT_CHECK(probe && zt_proc_expect(probe, "ready probe", 15000));
    if (ready && probe) {
        ZT_CHECK(s_wait_registry(url, name, master, "probe", 10000));
        ZT_EQ(s_ping_until(probe, "p1", WORKERS + 1, 10000), WORKERS + 1);

        //  SIGKILL one: respawned under its id, it registers anew.
        char id[128], added[160];
        zs_worker_id(master, 1, id, sizeof id);
        int old_pid = zs_pid(master, id);
        long long seq = zs_last_seq(master);
        kill(old_pid, SIGKILL);
        json_t *event = zs_wait_event(master, seq, "start", id, "crash", 15000);
        ZT_CHECK(event != NULL);
        json_decref(event);
        ZT_CHECK(zs_wait_ready(master, WORKERS, 20000));
        ZT_CHECK(zs_pid(master, id) != old_pid);
        snprintf(added, sizeof added, "added %s", id);
        ZT_CHECK(zt_proc_expect(probe, added, 15000) != NULL);
        ZT_CHECK(s_wait_registry(url, name, master, "probe", 10000));
        ZT_EQ(s_ping_until(probe, "p2", WORKERS + 1, 10000), WORKERS + 1);

        //  SIGHUP: every node replaced, one at a time.
        int pids[WORKERS];
        ZT_EQ(zs_pids(master, pids, WORKERS), WORKERS);
        seq = zs_last_seq(master);
        kill(master->pid, SIGHUP);
        event = zs_wait_event(master, seq, "reload", NULL, "done", 40000);
        ZT_CHECK(event != NULL);
        json_decref(event);
        ZT_CHECK(s_all_replaced(master, pids, WORKERS));
        ZT_CHECK(zs_wait_ready(master, WORKERS, 10000));
        ZT_CHECK(s_wait_registry(url, name, master, "probe", 10000));
        ZT_EQ(s_ping_until(probe, "p3", WORKERS + 1, 10000), WORKERS + 1);
    }
    if (probe) ZT_EQ(zt_proc_command(probe, "quit"), 0);
    zt_proc_destroy(&probe);
    int pids[WORKERS];
    int count = zs_pids(master, pids, WORKERS);
    ZT_EQ(zs_stop(master, SIGTERM, 30000), 0);
    ZT_EQ(zs_wait_gone(pids, count, 5000), 0);
    redisReply *set = zs_redis(url, "SCARD zc:{%s}:nodes", name);
    ZT_CHECK(set && set->type == REDIS_REPLY_INTEGER && set->integer == 0);
    if (set) freeReplyObject(set);
    zs_destroy(&master);
}

//  --------------------------------------------------------------------------
//  zcluster start -- zcluster cache

//  The cache console has nothing to serve under a master: it says so and
//  exits 64 before it is ready, instead of saying `ready` and ending.
static void s_test_cache(const char *url)
{
    zt_section("zcluster start -- zcluster cache");
    char name[64];
    snprintf(name, sizeof name, "sc%d", (int)getpid());
    const char *cli = getenv("ZC_CLI");
    const char *opts[] = {"--redis", url,  "-n", "1",     "--max-restarts",
                          "0",       "--", cli,  "cache", NULL};
    zs_master_t *master = zs_start(name, opts, NULL);
    ZT_CHECK(master != NULL);
    if (!master) return;
    ZT_CHECK(zt_proc_expect(master->proc, "ready ", 2000) == NULL);
    ZT_EQ(zs_stop(master, 0, 15000), 3); //  the group stopped at its first exit
    json_t *events = zs_redis_events(url, name), *e;
    int exits = 0, code = -2;
    size_t i;
    json_array_foreach(events, i, e)
    {
        if (strcmp(zs_str(e, "event"), "exit") == 0) {
            exits++;
            code = (int)zs_int(e, "code");
        }
    }
    json_decref(events);
    ZT_EQ(exits, 1);
    ZT_EQ(code, 64);
    zs_destroy(&master);
}

int main(int argc, char **argv)
{
    zs_worker_main(argc, argv);
    zt_redis_t *redis = zt_redis_start();
    ZT_CHECK(redis != NULL);
    if (redis) {
        s_test_worker(zt_redis_url(redis));
        s_test_node(zt_redis_url(redis));
        s_test_cache(zt_redis_url(redis));
    }
    zt_redis_destroy(&redis);
    return zt_done();
}
