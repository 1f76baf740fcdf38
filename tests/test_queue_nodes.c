/*  The task queue across processes: `zcluster worker` nodes on one private
    redis-server, driven by their line console, some of them SIGKILLed.
    Measures how fast a killed worker's jobs return to their queue. */
#include "testkit.h"
#include "zc_redis.h"
#include "zc_queue.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLUSTER "n"

static const char *s_url;

//  --------------------------------------------------------------------------
//  Runs seen in the workers' output ("done ID TASK ATTEMPT", "failed ID ...")

typedef struct {
    char id[80];
    char node[16];
    int done, failed;
    int64_t last_ms;
} s_tally_t;

static s_tally_t s_tally[1024];
static int s_tally_count;

static s_tally_t *s_find(const char *id)
{
    for (int i = 0; i < s_tally_count; i++)
        if (strcmp(s_tally[i].id, id) == 0) return &s_tally[i];
    return NULL;
}

static void s_note(const char *node, const char *line)
{
    int done = strncmp(line, "done ", 5) == 0, failed = strncmp(line, "failed ", 7) == 0;
    if (!done && !failed) return;
    char id[80];
    if (sscanf(line + (done ? 5 : 7), "%79s", id) != 1) return;
    s_tally_t *t = s_find(id);
    if (!t && s_tally_count < 1024) {
        t = &s_tally[s_tally_count++];
        snprintf(t->id, sizeof t->id, "%s", id);
    }
    if (!t) return;
    snprintf(t->node, sizeof t->node, "%s", node);
    t->done += done;
    t->failed += failed;
    t->last_ms = zt_now_ms();
}

typedef struct {
    zt_proc_t *proc;
    char id[16];
} s_node_t;

//  Reads every worker's output for ms milliseconds.
static void s_pump(s_node_t *nodes, int count, int ms)
{
    int64_t deadline = zt_now_ms() + ms;
    do {
        for (int i = 0; i < count; i++) {
            if (!nodes[i].proc) continue;
            const char *line;
            while ((line = zt_proc_expect(nodes[i].proc, "", 1)) != NULL)
                s_note(nodes[i].id, line);
        }
    } while (zt_now_ms() < deadline);
}

//  Pumps until id has count done runs, or timeout_ms.
static int s_wait_done(s_node_t *nodes, int count, const char *id, int runs, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < deadline) {
        s_pump(nodes, count, 5);
        s_tally_t *t = s_find(id);
        if (t && t->done >= runs) return 1;
    }
    return 0;
}

static zt_redis_t *s_redis;

//  Starts a worker; one that cannot start ends the test at once (the others
//  exit by themselves when their stdin closes).
static int s_start(s_node_t *node, const char *id, const char *queue, const char *concurrency)
{
    snprintf(node->id, sizeof node->id, "%s", id);
    node->proc = zt_cli_start("worker", "--redis", s_url, "--cluster", CLUSTER, "--id", id,
                              "--queue", queue, "--concurrency", concurrency, NULL);
    if (!ZT_CHECK(node->proc && zt_proc_expect(node->proc, "ready ", 10000))) {
        fprintf(stderr, "worker %s did not start: giving up\n", id);
        zt_redis_destroy(&s_redis);
        exit(zt_done());
    }
    return 0;
}

//  Sends a console command and returns its answer line (NULL on error or timeout).
static const char *s_ask(zt_proc_t *console, const char *command)
{
    zt_proc_send(console, "%s", command);
    const char *line = zt_proc_expect(console, "", 10000);
    if (!line || strncmp(line, "ok ", 3) != 0) {
        fprintf(stderr, "  '%s' answered '%s'\n", command, line ? line : "(nothing)");
        return NULL;
    }
    return line;
}

static zc_queue_stats_t s_stats(zc_queue_t *queue, const char *name)
{
    zc_queue_stats_t stats;
    ZT_EQ(zc_queue_stats(queue, name, &stats), 0);
    return stats;
}

//  Returns the node holding the scheduler lease, from Redis (docs/QUEUE.md).
static void s_scheduler(char *node, size_t size)
{
    node[0] = 0;
    redisContext *c = redisConnectUnix(strchr(s_url, '/') + 2);
    redisReply *reply =
        c ? (redisReply *)redisCommand(c, "GET zc:{%s}:q:scheduler", CLUSTER) : NULL;
    if (reply && reply->type == REDIS_REPLY_STRING) snprintf(node, size, "%s", reply->str);
    if (reply) freeReplyObject(reply);
    if (c) redisFree(c);
}

int main(void)
{
    s_redis = zt_redis_start();
    if (!ZT_CHECK(s_redis != NULL)) return zt_done();
    s_url = zt_redis_url(s_redis);

    zt_section("command line");
    zt_proc_t *p = zt_cli_start("worker", "--help", NULL);
    if (!ZT_CHECK(p && zt_proc_expect(p, "usage: zcluster worker", 5000))) {
        if (p) zt_proc_destroy(&p);
        zt_redis_destroy(&s_redis);
        return zt_done();
    }
    zt_proc_destroy(&p);
    zc_queue_t *queue = zc_queue_new(s_url, CLUSTER);
    p = zt_cli_start("worker", "--concurrency", "many", NULL);
    ZT_EQ(WEXITSTATUS(zt_proc_wait(p, 5000)), 64);
    zt_proc_destroy(&p);
    p = zt_cli_start("worker", "--redis", s_url, "--id", "bad id", NULL);
    ZT_EQ(WEXITSTATUS(zt_proc_wait(p, 5000)), 64);
    zt_proc_destroy(&p);
    p = zt_cli_start("worker", "--redis", "unix:///nonexistent/redis.sock", NULL);
    ZT_EQ(WEXITSTATUS(zt_proc_wait(p, 5000)), 1);
    zt_proc_destroy(&p);

    zt_section("ready is printed before the first run's line");
    //  A driver that waits for `ready` must not miss the runs of jobs that
    //  were queued before the worker started.
    zc_queue_item_t items[200];
    for (int i = 0; i < 200; i++)
        items[i] = (zc_queue_item_t){NULL, 0, NULL};
    ZT_EQ(zc_queue_enqueue_many(queue, "first", "noop", items, 200, NULL, NULL), 200);
    p = zt_cli_start("worker", "--redis", s_url, "--cluster", CLUSTER, "--id", "first", "--queue",
                     "first", NULL);
    const char *first = p ? zt_proc_expect(p, "", 10000) : NULL;
    ZT_CHECK(first && strncmp(first, "ready first", 11) == 0);
    ZT_CHECK(zt_proc_expect(p, "done ", 5000) != NULL);
    zt_proc_destroy(&p);
    ZT_CHECK(zc_queue_delete(queue, "first") >= 0);

    //  An admin console that drains nothing, and three workers.
    s_node_t admin = {0};
    ZT_EQ(s_start(&admin, "admin", "jobs", "0"), 0);
    s_node_t w[3] = {{0}};
    ZT_EQ(s_start(&w[0], "w0", "jobs", "2"), 0);
    ZT_EQ(s_start(&w[1], "w1", "jobs", "2"), 0);
    ZT_EQ(s_start(&w[2], "w2", "jobs", "2"), 0);

    zt_section("console: enqueue, args, dedupe, bad commands");
    const char *line = s_ask(admin.proc, "enqueue jobs echo [1,\"two\"] --id e1");
    ZT_CHECK(line && strcmp(line, "ok enqueue e1") == 0);
    ZT_CHECK(s_wait_done(w, 3, "e1", 1, 5000));
    ZT_EQ(zt_proc_command(admin.proc, "enqueue jobs noop --id d1 --in 60000"), 0);
    ZT_EQ(zt_proc_command(admin.proc, "enqueue jobs noop --id d1"), -1);
    ZT_EQ(zt_proc_command(admin.proc, "enqueue jobs"), -1);
    ZT_EQ(zt_proc_command(admin.proc, "enqueue jobs noop --in soon"), -1);
    ZT_EQ(zt_proc_command(admin.proc, "enqueue bad/queue noop"), -1);
    ZT_EQ(zt_proc_command(admin.proc, "frobnicate"), -1);
    ZT_EQ(zt_proc_command(admin.proc, "retry jobs nothing"), -1);
    line = s_ask(admin.proc, "stats jobs");
    ZT_CHECK(line && zt_field(line, "delayed") == 1 && zt_field(line, "processed") == 1);
    line = s_ask(admin.proc, "stats");
    ZT_CHECK(line && strstr(line, "node=admin") && zt_field(line, "claimed") == 0);

    zt_section("many jobs over three workers, each run once");
    for (int i = 0; i < 60; i++) {
        char command[64];
        snprintf(command, sizeof command, "enqueue jobs sleep %d --id s%d", i % 5, i);
        ZT_EQ(zt_proc_command(admin.proc, "%s", command), 0);
    }
    ZT_CHECK(s_wait_done(w, 3, "s59", 1, 10000));
    int64_t deadline = zt_now_ms() + 5000;
    while (s_stats(queue, "jobs").processed < 61 && zt_now_ms() < deadline)
        s_pump(w, 3, 10);
    s_pump(w, 3, 50);
    int once = 0, nodes_used[3] = {0};
    for (int i = 0; i < 60; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        s_tally_t *t = s_find(id);
        once += t && t->done == 1;
        for (int n = 0; n < 3 && t; n++)
            nodes_used[n] += strcmp(t->node, w[n].id) == 0;
    }
    ZT_EQ(once, 60);
    ZT_CHECK(nodes_used[0] > 0 && nodes_used[1] > 0 && nodes_used[2] > 0);
    printf("60 jobs ran on w0/w1/w2: %d/%d/%d\n", nodes_used[0], nodes_used[1], nodes_used[2]);

    zt_section("console: timeout, failed list, retry, delete");
    ZT_EQ(zt_proc_command(admin.proc, "enqueue jobs sleep 5000 --id t1 --timeout 200 --attempts 1"),
          0);
    ZT_EQ(zt_proc_command(admin.proc, "enqueue jobs fail --id f1 --attempts 2 --backoff 50"), 0);
    deadline = zt_now_ms() + 5000;
    while (s_stats(queue, "jobs").failed_list < 2 && zt_now_ms() < deadline)
        s_pump(w, 3, 10);
    //  A timed-out run prints its line once its handler sees the cancel.
    while ((!s_find("t1") || !s_find("t1")->failed || !s_find("f1") || s_find("f1")->failed < 2) &&
           zt_now_ms() < deadline)
        s_pump(w, 3, 10);
    ZT_CHECK(s_find("t1") && s_find("t1")->failed == 1);
    ZT_CHECK(s_find("f1") && s_find("f1")->failed == 2);
    line = s_ask(admin.proc, "failed jobs");
    ZT_CHECK(line && zt_field(line, "count") == 2);
    ZT_CHECK(line && strstr(line, "f1(2: the fail task always fails)") != NULL);
    ZT_CHECK(line && strstr(line, "t1(1: timed out after 200 ms)") != NULL);
    line = s_ask(admin.proc, "retry jobs f1");
    ZT_CHECK(line && strcmp(line, "ok retry f1") == 0);
    deadline = zt_now_ms() + 5000;
    while ((!s_find("f1") || s_find("f1")->failed < 4) && zt_now_ms() < deadline)
        s_pump(w, 3, 10); //  a fresh count of attempts: two more failures
    ZT_EQ(s_find("f1")->failed, 4);
    line = s_ask(admin.proc, "delete jobs");
    ZT_CHECK(line && zt_field(line, "deleted") == 3); //  d1 (delayed), t1, f1 (failed)
    line = s_ask(admin.proc, "stats jobs");
    ZT_CHECK(line && zt_field(line, "failed_list") == 0 && zt_field(line, "delayed") == 0);

    zt_section("a SIGKILLed worker's jobs return to their queue");
    s_node_t victim = {0};
    ZT_EQ(s_start(&victim, "victim", "slowq", "3"), 0);
    zc_job_opts_t opts = {0};
    for (int i = 0; i < 3; i++)
        ZT_EQ(zc_queue_enqueue(queue, "slowq", "sleep", "\xcd\x75\x30", 3, &opts, NULL), 0);
    deadline = zt_now_ms() + 5000;
    while (s_stats(queue, "slowq").inflight < 3 && zt_now_ms() < deadline)
        usleep(5000);
    ZT_EQ(s_stats(queue, "slowq").inflight, 3);
    usleep(300000); //  somewhere in the lease period
    zt_proc_signal(victim.proc, SIGKILL);
    int64_t killed = zt_now_ms();
    zc_queue_stats_t stats = {0};
    while (zt_now_ms() - killed < 10000) {
        stats = s_stats(queue, "slowq");
        if (stats.queued == 3) break;
        usleep(5000);
    }
    int64_t recovery = zt_now_ms() - killed;
    ZT_EQ(stats.queued, 3);
    ZT_EQ(stats.inflight, 0);
    ZT_EQ(stats.requeued, 3);
    ZT_CHECK(recovery < 5000);
    printf("a killed worker's 3 jobs were back on their queue after %lld ms\n",
           (long long)recovery);
    zt_proc_destroy(&victim.proc);

    zt_section("requeue_node returns a stopped node's jobs at once");
    s_node_t frozen = {0};
    ZT_EQ(s_start(&frozen, "frozen", "slowq", "3"), 0);
    deadline = zt_now_ms() + 5000;
    while (s_stats(queue, "slowq").inflight < 3 && zt_now_ms() < deadline)
        usleep(5000);
    zt_proc_signal(frozen.proc, SIGSTOP);
    int64_t asked = zt_now_ms();
    line = s_ask(admin.proc, "requeue frozen");
    int64_t requeue_ms = zt_now_ms() - asked;
    ZT_CHECK(line && zt_field(line, "requeued") == 3);
    stats = s_stats(queue, "slowq");
    ZT_EQ(stats.queued, 3);
    ZT_EQ(stats.inflight, 0);
    printf("requeue of a stopped node's 3 jobs took %lld ms\n", (long long)requeue_ms);
    zt_proc_signal(frozen.proc, SIGKILL);
    zt_proc_destroy(&frozen.proc);
    ZT_EQ(zc_queue_delete(queue, "slowq"), 3);

    zt_section("graceful stop: quit and SIGTERM finish runs and give the rest back");
    s_node_t calm = {0};
    snprintf(calm.id, sizeof calm.id, "calm");
    calm.proc = zt_cli_start("worker", "--redis", s_url, "--cluster", CLUSTER, "--id", "calm",
                             "--queue", "calmq", "--concurrency", "4", "--threads", "1", NULL);
    ZT_CHECK(zt_proc_expect(calm.proc, "ready", 10000) != NULL);
    for (int i = 0; i < 4; i++)
        ZT_EQ(zc_queue_enqueue(queue, "calmq", "sleep", "\xcc\xc8", 2, NULL, NULL), 0); //  200 ms
    deadline = zt_now_ms() + 5000;
    while (s_stats(queue, "calmq").inflight < 4 && zt_now_ms() < deadline)
        usleep(5000);
    //  Claimed is not started: wait until the one handler thread runs a job,
    //  the run that quit must let finish.
    long long executing = 0;
    while (executing < 1 && zt_now_ms() < deadline) {
        zt_proc_send(calm.proc, "stats");
        const char *answer = zt_proc_expect(calm.proc, "ok stats", 5000);
        executing = answer ? zt_field(answer, "executing") : -1;
        if (executing < 1) usleep(5000);
    }
    ZT_EQ(executing, 1);
    ZT_EQ(zt_proc_command(calm.proc, "quit"), 0);
    ZT_EQ(zt_proc_wait(calm.proc, 5000), 0);
    stats = s_stats(queue, "calmq");
    //  The running job finished (a second one may have started if the first
    //  ended before quit came); the rest went back unstarted.
    ZT_CHECK(stats.processed >= 1 && stats.processed <= 2);
    ZT_EQ(stats.processed + stats.queued, 4);
    ZT_EQ(stats.inflight, 0);
    zt_proc_destroy(&calm.proc);
    calm.proc = zt_cli_start("worker", "--redis", s_url, "--cluster", CLUSTER, "--id", "calm",
                             "--queue", "calmq", "--concurrency", "4", "--threads", "1", NULL);
    ZT_CHECK(zt_proc_expect(calm.proc, "done", 5000) != NULL);
    zt_proc_signal(calm.proc, SIGTERM);
    ZT_EQ(zt_proc_wait(calm.proc, 5000), 0);
    stats = s_stats(queue, "calmq");
    ZT_CHECK(stats.processed >= 2 && stats.processed + stats.queued == 4);
    ZT_EQ(stats.inflight, 0);
    zt_proc_destroy(&calm.proc);

    zt_section("recurring task: one enqueuer at a time, taken over when it is killed");
    //  Three consoles compete for the scheduler lease; one worker, started
    //  once one of them holds it (a holder keeps renewing it), runs the
    //  beats and is never killed, so a kill cannot double a run.
    ZT_EQ(zt_proc_command(admin.proc, "every 300 beats noop --name beat"), 0);
    ZT_EQ(zt_proc_command(admin.proc, "quit"), 0); //  resigns the lease if it held it
    zt_proc_wait(admin.proc, 5000);
    zt_proc_destroy(&admin.proc);
    for (int i = 0; i < 3; i++)
        zt_proc_destroy(&w[i].proc);
    s_node_t sched[3] = {{0}};
    ZT_EQ(s_start(&sched[0], "sched0", "nothing", "0"), 0);
    ZT_EQ(s_start(&sched[1], "sched1", "nothing", "0"), 0);
    ZT_EQ(s_start(&sched[2], "sched2", "nothing", "0"), 0);
    char holder[64] = "";
    deadline = zt_now_ms() + 5000;
    while (strncmp(holder, "sched", 5) != 0 && zt_now_ms() < deadline) {
        usleep(20000);
        s_scheduler(holder, sizeof holder);
    }
    s_node_t runner = {0};
    ZT_EQ(s_start(&runner, "runner", "beats", "2"), 0);
    s_pump(&runner, 1, 2500);
    s_scheduler(holder, sizeof holder);
    int killed_index = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(holder, sched[i].id) == 0) killed_index = i;
    ZT_CHECK(killed_index >= 0);
    if (killed_index >= 0) {
        zt_proc_signal(sched[killed_index].proc, SIGKILL);
        zt_proc_destroy(&sched[killed_index].proc);
    }
    killed = zt_now_ms();
    s_pump(&runner, 1, 4000);
    char new_holder[64];
    s_scheduler(new_holder, sizeof new_holder);
    ZT_CHECK(*new_holder && strcmp(new_holder, holder) != 0);
    //  Every beat ran once, on its 300 ms slot; the gap at the kill is the
    //  lease running out.
    int64_t slots[256];
    int n_slots = 0, doubled = 0;
    for (int i = 0; i < s_tally_count && n_slots < 256; i++)
        if (strncmp(s_tally[i].id, "every:beat:", 11) == 0) {
            slots[n_slots++] = atoll(s_tally[i].id + 11);
            doubled += s_tally[i].done != 1;
        }
    int64_t max_gap = 0, off_phase = 0;
    for (int i = 1; i < n_slots; i++) {
        int64_t gap = slots[i] - slots[i - 1];
        if (gap > max_gap) max_gap = gap;
        off_phase += gap % 300 != 0;
    }
    printf("recurring every 300 ms: %d beats, none doubled: %s, longest gap %lld ms "
           "(scheduler %s killed, %s took over)\n",
           n_slots, doubled ? "no" : "yes", (long long)max_gap, holder, new_holder);
    ZT_CHECK(n_slots >= 10);
    ZT_EQ(doubled, 0);
    ZT_EQ(off_phase, 0);
    ZT_CHECK(max_gap >= 300 && max_gap < 4000);
    int64_t since_kill = 0;
    for (int i = 0; i < s_tally_count; i++)
        if (strncmp(s_tally[i].id, "every:beat:", 11) == 0 && s_tally[i].last_ms > killed)
            since_kill++;
    ZT_CHECK(since_kill >= 3);

    for (int i = 0; i < 3; i++)
        zt_proc_destroy(&sched[i].proc);
    zt_proc_destroy(&runner.proc);
    zc_queue_destroy(&queue);
    zt_redis_destroy(&s_redis);
    return zt_done();
}
