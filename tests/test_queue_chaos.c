/*  Chaos: thousands of jobs over several `zcluster worker` processes.

    A calm run first: every job runs exactly once. Then a storm: workers are
    SIGKILLed while they run and replaced; every job must still complete at
    least once, and the runs done twice (a worker printed "done" but died
    before its ack reached Redis) may be no more than the jobs those workers
    held in flight when they were killed, read from their claim sets at
    once after each kill. Workers print each run before acking it, so the
    count of executions includes those of the killed workers. */
#include "testkit.h"
#include "zc_redis.h"
#include "zc_queue.h"
#include "zcluster.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER   "chaos"
#define JOBS      3000
#define MAX_PROCS 8

static const char *s_url;
static int s_runs[JOBS]; //  runs seen of each job of the current phase
static int s_lines;      //  done lines seen in the current phase
static int s_distinct;   //  jobs seen at least once

typedef struct {
    zt_proc_t *proc;
    char id[16];
} s_node_t;

static s_node_t s_nodes[MAX_PROCS];
static int s_node_count;

static void s_note(char prefix, const char *line)
{
    if (strncmp(line, "done ", 5) != 0 || line[5] != prefix) return;
    int index = atoi(line + 6);
    if (index < 0 || index >= JOBS) return;
    s_lines++;
    if (s_runs[index]++ == 0) s_distinct++;
}

//  Reads all workers' output (the dead ones' too, to its end) for ms.
static void s_pump(char prefix, int ms)
{
    int64_t deadline = zt_now_ms() + ms;
    do {
        for (int i = 0; i < s_node_count; i++) {
            const char *line;
            while (s_nodes[i].proc && (line = zt_proc_expect(s_nodes[i].proc, "", 1)) != NULL)
                s_note(prefix, line);
        }
    } while (zt_now_ms() < deadline);
}

static zt_redis_t *s_redis;

static void s_stop_all(void);

//  Starts a worker; a worker that cannot start ends the test at once
//  (its stdin closed, every other worker exits by itself).
static s_node_t *s_start(const char *id, const char *queue)
{
    s_node_t *node = &s_nodes[s_node_count++];
    snprintf(node->id, sizeof node->id, "%s", id);
    node->proc = zt_cli_start("worker", "--redis", s_url, "--cluster", CLUSTER, "--id", id,
                              "--queue", queue, "--concurrency", "4", NULL);
    if (!ZT_CHECK(node->proc && zt_proc_expect(node->proc, "ready ", 10000))) {
        fprintf(stderr, "worker %s did not start: giving up\n", id);
        s_stop_all();
        zt_redis_destroy(&s_redis);
        exit(zt_done());
    }
    return node;
}

static void s_stop_all(void)
{
    for (int i = 0; i < s_node_count; i++)
        zt_proc_destroy(&s_nodes[i].proc);
    s_node_count = 0;
}

static long long s_claims_of(redisContext *c, const char *node)
{
    redisReply *reply = (redisReply *)redisCommand(c, "SCARD zc:{%s}:q:node:%s", CLUSTER, node);
    long long n = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (reply) freeReplyObject(reply);
    return n;
}

//  Enqueues JOBS sleep jobs of 8..17 ms with ids PREFIX0.., in batches.
static int s_enqueue(zc_queue_t *queue, const char *name, char prefix)
{
    zc_queue_item_t *items = (zc_queue_item_t *)calloc(JOBS, sizeof *items);
    char(*ids)[16] = calloc(JOBS, 16);
    static unsigned char ms[JOBS];
    for (int i = 0; i < JOBS; i++) {
        snprintf(ids[i], 16, "%c%d", prefix, i);
        ms[i] = (unsigned char)(8 + i % 10); //  a msgpack positive fixint
        items[i].id = ids[i];
        items[i].args = &ms[i];
        items[i].args_size = 1;
    }
    int rc = zc_queue_enqueue_many(queue, name, "sleep", items, JOBS, NULL, NULL);
    free(items);
    free(ids);
    return rc;
}

static void s_reset(void)
{
    memset(s_runs, 0, sizeof s_runs);
    s_lines = s_distinct = 0;
}

//  Pumps until every job ran and the queue is drained, or timeout_ms.
static void s_drain(zc_queue_t *queue, const char *name, char prefix, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    zc_queue_stats_t stats;
    while (zt_now_ms() < deadline) {
        s_pump(prefix, 50);
        if (s_distinct == JOBS && zc_queue_stats(queue, name, &stats) == 0 &&
            stats.queued + stats.inflight + stats.delayed == 0)
            break;
    }
    s_pump(prefix, 200); //  lines still in the pipes
}

int main(void)
{
    zt_redis_t *redis = s_redis = zt_redis_start(); //  destroyed through s_redis
    if (!ZT_CHECK(redis != NULL)) return zt_done();
    s_url = zt_redis_url(redis);
    zc_queue_t *queue = zc_queue_new(s_url, CLUSTER);
    redisContext *redis_c = redisConnectUnix(zt_redis_socket(redis));
    ZT_CHECK(redis_c && !redis_c->err);

    zt_section("calm: 3000 jobs, 3 workers, no kills: every job exactly once");
    s_reset();
    s_start("c0", "calm");
    s_start("c1", "calm");
    s_start("c2", "calm");
    int64_t started = zt_now_ms();
    ZT_EQ(s_enqueue(queue, "calm", 'a'), JOBS);
    s_drain(queue, "calm", 'a', 60000);
    int64_t calm_ms = zt_now_ms() - started;
    int doubles = 0;
    for (int i = 0; i < JOBS; i++)
        doubles += s_runs[i] > 1 ? s_runs[i] - 1 : 0;
    ZT_EQ(s_distinct, JOBS);
    ZT_EQ(s_lines, JOBS);
    ZT_EQ(doubles, 0);
    zc_queue_stats_t stats;
    ZT_EQ(zc_queue_stats(queue, "calm", &stats), 0);
    ZT_EQ(stats.processed, JOBS);
    ZT_EQ(stats.lost_acks, 0);
    ZT_EQ(stats.requeued, 0);
    ZT_EQ(stats.inflight, 0);
    printf("calm: %d jobs in %lld ms, %d runs, %d doubles\n", JOBS, (long long)calm_ms, s_lines,
           doubles);
    s_stop_all();

    zt_section("storm: 3000 jobs, 4 workers, 2 SIGKILLed mid-run and replaced");
    s_reset();
    s_start("k0", "storm");
    s_start("k1", "storm");
    s_start("k2", "storm");
    s_start("k3", "storm");
    started = zt_now_ms();
    ZT_EQ(s_enqueue(queue, "storm", 'b'), JOBS);
    long long inflight_at_kills = 0;
    const char *victims[] = {"k0", "k1"};
    const char *replacements[] = {"r0", "r1"};
    int thresholds[] = {JOBS / 5, JOBS * 2 / 5};
    int64_t killed[2], recovered[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        int64_t deadline = zt_now_ms() + 30000;
        while (s_distinct < thresholds[k] && zt_now_ms() < deadline)
            s_pump('b', 2);
        s_node_t *victim = NULL;
        for (int i = 0; i < s_node_count; i++)
            if (strcmp(s_nodes[i].id, victims[k]) == 0) victim = &s_nodes[i];
        zt_proc_signal(victim->proc, SIGKILL);
        killed[k] = zt_now_ms();
        long long held = s_claims_of(redis_c, victims[k]);
        inflight_at_kills += held;
        printf("killed %s after %d jobs, holding %lld claims\n", victims[k], s_distinct, held);
        ZT_CHECK(held > 0); //  it was killed while running
        s_start(replacements[k], "storm");
    }
    //  Each victim's claims return when their leases lapse.
    while ((!recovered[0] || !recovered[1]) && zt_now_ms() - killed[1] < 10000) {
        s_pump('b', 2);
        for (int k = 0; k < 2; k++)
            if (!recovered[k] && s_claims_of(redis_c, victims[k]) == 0) recovered[k] = zt_now_ms();
    }
    int64_t recovery_max = 0;
    for (int k = 0; k < 2; k++) {
        ZT_CHECK(recovered[k] > 0);
        int64_t recovery = recovered[k] - killed[k];
        if (recovery > recovery_max) recovery_max = recovery;
        printf("  %s's claims were back on the queue %lld ms after its kill\n", victims[k],
               (long long)recovery);
    }
    s_drain(queue, "storm", 'b', 60000);
    int64_t storm_ms = zt_now_ms() - started;
    doubles = 0;
    int missing = 0;
    for (int i = 0; i < JOBS; i++) {
        doubles += s_runs[i] > 1 ? s_runs[i] - 1 : 0;
        missing += s_runs[i] == 0;
    }
    ZT_EQ(missing, 0);
    ZT_EQ(s_distinct, JOBS);
    ZT_CHECK(doubles <= inflight_at_kills);
    ZT_CHECK(recovery_max < 5000);
    ZT_EQ(zc_queue_stats(queue, "storm", &stats), 0);
    ZT_EQ(stats.processed, JOBS);
    ZT_EQ(stats.inflight + stats.queued + stats.delayed + stats.failed_list, 0);
    ZT_EQ(stats.lost_acks, 0);
    ZT_CHECK(stats.requeued > 0 && stats.requeued <= inflight_at_kills);
    printf("storm: %d jobs in %lld ms, %d runs, %d doubles, %lld in flight at the kills, "
           "%lld requeued, slowest recovery %lld ms\n",
           JOBS, (long long)storm_ms, s_lines, doubles, inflight_at_kills,
           (long long)stats.requeued, (long long)recovery_max);
    s_stop_all();

    redisFree(redis_c);
    zc_queue_destroy(&queue);
    zt_redis_destroy(&s_redis);
    return zt_done();
}
