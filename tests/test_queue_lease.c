/*  The job lease when Redis goes away.

    First, one worker and one long job: once the worker is cut off from
    Redis for longer than it can renew the lease, the handler sees
    zc_job_lost(); it stops, and the job is given back (not counted as a
    failure) and runs again once Redis is back.

    Then the figures: two workers (threads of this process, lease 1500 ms)
    run jobs of 100 to 3300 ms, each through a TCP proxy of its own to a
    private redis-server, so the test can cut a worker off. Half the jobs
    are "careful": their handler watches zc_job_cancelled() and, once it
    turns true, stops without committing its work; the other half are
    "naive" and always finish. A run that finishes commits; a job committed
    twice is a double.

    Three outages of 2.5 s, longer than the lease:
    - Redis hung: redis-server stopped (SIGSTOP), every call waits.
    - Redis down: both workers cut off at once (as a Redis restart would).
    - One worker cut off while the other keeps running (a partition).

    Afterwards every job must have committed (none stranded); the doubles of
    each kind are printed and checked. */
#include "testkit.h"
#include "zc_job.h"
#include "zc_queue.h"
#include "zc_queue_worker.h"
#include "zcluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define LEASE_MS  1500
#define OUTAGE_MS 2500
#define JOBS      60

//  --------------------------------------------------------------------------
//  A TCP proxy to the unix socket of redis-server that can be cut

#define PROXY_PAIRS 32

typedef struct {
    int listen_fd, port;
    char target[108];
    int fds[PROXY_PAIRS][2]; //  client side, server side; -1 when free
    atomic_int cut;          //  1: drop every connection and refuse new ones
    atomic_int quit;
    pthread_t thread;
} s_proxy_t;

static void s_proxy_close(s_proxy_t *self, int pair)
{
    close(self->fds[pair][0]);
    close(self->fds[pair][1]);
    self->fds[pair][0] = self->fds[pair][1] = -1;
}

static void s_proxy_accept(s_proxy_t *self)
{
    int client = accept(self->listen_fd, NULL, NULL);
    if (client < 0) return;
    int server = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", self->target);
    int pair = -1;
    for (int i = 0; i < PROXY_PAIRS && pair < 0; i++)
        if (self->fds[i][0] < 0) pair = i;
    if (atomic_load(&self->cut) || pair < 0 ||
        connect(server, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(client);
        close(server);
        return;
    }
    self->fds[pair][0] = client;
    self->fds[pair][1] = server;
}

//  Copies what is readable on one side to the other; returns -1 at the end.
static int s_proxy_copy(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0) return -1;
    for (ssize_t done = 0; done < n;) {
        ssize_t w = write(to, buf + done, (size_t)(n - done));
        if (w <= 0) return -1;
        done += w;
    }
    return 0;
}

static void *s_proxy_run(void *arg)
{
    s_proxy_t *self = (s_proxy_t *)arg;
    while (!atomic_load(&self->quit)) {
        struct pollfd pfd[1 + 2 * PROXY_PAIRS];
        int map[1 + 2 * PROXY_PAIRS];
        int n = 0;
        pfd[n++] = (struct pollfd){self->listen_fd, POLLIN, 0};
        int cut = atomic_load(&self->cut);
        for (int i = 0; i < PROXY_PAIRS; i++) {
            if (self->fds[i][0] < 0) continue;
            if (cut) {
                s_proxy_close(self, i);
                continue;
            }
            for (int side = 0; side < 2; side++) {
                map[n] = i * 2 + side;
                pfd[n++] = (struct pollfd){self->fds[i][side], POLLIN, 0};
            }
        }
        if (poll(pfd, (nfds_t)n, 10) <= 0) continue;
        if (pfd[0].revents) s_proxy_accept(self);
        for (int k = 1; k < n; k++) {
            int pair = map[k] / 2, side = map[k] % 2;
            if (!pfd[k].revents || self->fds[pair][0] < 0) continue;
            if (s_proxy_copy(self->fds[pair][side], self->fds[pair][1 - side]))
                s_proxy_close(self, pair);
        }
    }
    for (int i = 0; i < PROXY_PAIRS; i++)
        if (self->fds[i][0] >= 0) s_proxy_close(self, i);
    return NULL;
}

static int s_proxy_start(s_proxy_t *self, const char *target)
{
    memset(self, 0, sizeof *self);
    memset(self->fds, -1, sizeof self->fds);
    snprintf(self->target, sizeof self->target, "%s", target);
    self->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(self->listen_fd, (struct sockaddr *)&addr, sizeof addr) ||
        listen(self->listen_fd, 16) || getsockname(self->listen_fd, (struct sockaddr *)&addr, &len))
        return -1;
    self->port = ntohs(addr.sin_port);
    return pthread_create(&self->thread, NULL, s_proxy_run, self);
}

static void s_proxy_stop(s_proxy_t *self)
{
    atomic_store(&self->quit, 1);
    pthread_join(self->thread, NULL);
    close(self->listen_fd);
}

//  --------------------------------------------------------------------------
//  Jobs: "careful" ones stop once cancelled, "naive" ones always finish

typedef struct {
    int commits;   //  runs that finished and committed their work
    int abandoned; //  runs that stopped early, committing nothing
} s_job_t;

static s_job_t s_jobs[JOBS];
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

static int s_index(zc_job_t *job)
{
    int i = atoi(zc_job_id(job) + 1);
    return i >= 0 && i < JOBS ? i : 0;
}

//  Works 100..3300 ms (by the job's number), watching the flag if careful.
static int s_work(zc_job_t *job, int careful)
{
    int i = s_index(job);
    int64_t end = zt_now_ms() + 100 + (i % 5) * 800;
    while (zt_now_ms() < end) {
        if (careful && zc_job_cancelled(job)) {
            pthread_mutex_lock(&s_lock);
            s_jobs[i].abandoned++;
            pthread_mutex_unlock(&s_lock);
            zc_job_set_error(job, "stopped: the claim may be lost");
            return -1;
        }
        usleep(5000);
    }
    pthread_mutex_lock(&s_lock);
    s_jobs[i].commits++;
    pthread_mutex_unlock(&s_lock);
    return 0;
}

static int s_careful(zc_job_t *job, void *arg)
{
    return s_work(job, 1);
}

static int s_naive(zc_job_t *job, void *arg)
{
    return s_work(job, 0);
}

//  The long job of the first part: its first run lasts until the lease is
//  lost, the next ones 100 ms.
static atomic_int s_watch_runs, s_watch_commits;
static atomic_llong s_watch_lost_at; //  when its first run saw zc_job_lost
static atomic_int s_watch_finished_lost;

static int s_watch(zc_job_t *job, void *arg)
{
    int first = atomic_fetch_add(&s_watch_runs, 1) == 0;
    int64_t end = zt_now_ms() + (first ? 10000 : 100);
    while (zt_now_ms() < end) {
        if (zc_job_lost(job)) {
            atomic_store(&s_watch_lost_at, zt_now_ms());
            ZT_CHECK(zc_job_cancelled(job));
            zc_job_set_error(job, "stopped: the claim may be lost");
            return -1;
        }
        usleep(5000);
    }
    atomic_fetch_add(&s_watch_commits, 1);
    return 0;
}

static void s_watch_finished(zc_job_t *job, int rc, void *arg)
{
    if (rc) atomic_store(&s_watch_finished_lost, zc_job_lost(job));
}

static zc_queue_worker_t *s_worker(const char *url, const char *cluster, const char *id)
{
    zc_queue_t *queue = zc_queue_new(url, cluster);
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, id);
    zc_queue_destroy(&queue);
    zc_queue_worker_register(worker, "careful", s_careful, NULL);
    zc_queue_worker_register(worker, "naive", s_naive, NULL);
    zc_queue_worker_register(worker, "watch", s_watch, NULL);
    zc_queue_worker_on_finish(worker, s_watch_finished, NULL);
    zc_queue_worker_add_queue(worker, "work");
    zc_queue_worker_set_concurrency(worker, 8);
    zc_queue_worker_set_lease(worker, LEASE_MS);
    if (zc_queue_worker_start(worker)) zc_queue_worker_destroy(&worker);
    return worker;
}

//  One worker cut off while it runs a long job: the handler is told, stops,
//  and the job is given back and runs again.
static void s_handler_told(zt_redis_t *redis)
{
    zt_section("a handler is told when its lease cannot be renewed");
    s_proxy_t proxy;
    ZT_EQ(s_proxy_start(&proxy, zt_redis_socket(redis)), 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", proxy.port);
    zc_queue_worker_t *worker = s_worker(url, "told", "solo");
    zc_queue_t *queue = zc_queue_new(zt_redis_url(redis), "told");
    zc_job_opts_t opts = {.id = "long"};
    ZT_EQ(zc_queue_enqueue(queue, "work", "watch", NULL, 0, &opts, NULL), 0);
    int64_t deadline = zt_now_ms() + 5000;
    while (atomic_load(&s_watch_runs) == 0 && zt_now_ms() < deadline)
        usleep(5000);
    usleep(200000);
    int64_t cut = zt_now_ms();
    atomic_store(&proxy.cut, 1);
    while (!atomic_load(&s_watch_lost_at) && zt_now_ms() < cut + 3000)
        usleep(5000);
    int64_t told_after = atomic_load(&s_watch_lost_at) - cut;
    usleep((useconds_t)(cut + OUTAGE_MS - zt_now_ms()) * 1000);
    atomic_store(&proxy.cut, 0);
    deadline = zt_now_ms() + 5000;
    zc_queue_stats_t stats = {0};
    while (zt_now_ms() < deadline &&
           (zc_queue_stats(queue, "work", &stats) || stats.processed < 1 || stats.inflight))
        usleep(10000);
    zc_queue_worker_stats_t ws;
    zc_queue_worker_stats(worker, &ws);
    printf("cut off %d ms into the job: the handler was told after %lld ms (lease %d ms); "
           "the job ran %d times, committed %d\n",
           200, (long long)told_after, LEASE_MS, atomic_load(&s_watch_runs),
           atomic_load(&s_watch_commits));
    //  The last renewal was at most lease/4 before the cut; the flag turns
    //  when 7/8 of the lease has gone unrenewed.
    ZT_CHECK(told_after >= LEASE_MS * 7 / 8 - LEASE_MS / 4 - 50 && told_after <= LEASE_MS);
    ZT_CHECK(atomic_load(&s_watch_finished_lost));
    ZT_EQ(atomic_load(&s_watch_runs), 2);
    ZT_EQ(atomic_load(&s_watch_commits), 1);
    ZT_EQ(ws.lease_lost, 1);
    ZT_EQ(ws.released, 1); //  given back, not failed
    ZT_EQ(ws.failed, 0);
    ZT_EQ(stats.processed, 1);
    ZT_EQ(stats.retried + stats.failed + stats.lost_acks, 0);
    zc_queue_worker_destroy(&worker);
    zc_queue_destroy(&queue);
    s_proxy_stop(&proxy);
}

typedef struct {
    int stranded;
    int doubles[2]; //  naive, careful
    int abandoned;
    uint64_t lost, lease_lost, released;
} s_outcome_t;

typedef enum { S_HUNG, S_DOWN, S_PARTITION } s_outage_t;

//  Returns the pid of the redis-server, or -1.
static pid_t s_redis_pid(zt_redis_t *redis)
{
    redisContext *c = redisConnectUnix(zt_redis_socket(redis));
    redisReply *reply = c && !c->err ? redisCommand(c, "INFO server") : NULL;
    const char *field = reply && reply->str ? strstr(reply->str, "process_id:") : NULL;
    pid_t pid = field ? (pid_t)atoi(field + 11) : -1;
    if (reply) freeReplyObject(reply);
    if (c) redisFree(c);
    return pid;
}

//  Starts (on) or ends an outage.
static void s_outage(pid_t redis_pid, s_proxy_t *proxies, s_outage_t outage, int on)
{
    if (outage == S_HUNG)
        kill(redis_pid, on ? SIGSTOP : SIGCONT);
    else
        for (int w = 0; w < (outage == S_DOWN ? 2 : 1); w++)
            atomic_store(&proxies[w].cut, on);
}

//  Runs JOBS jobs through two workers with an outage of OUTAGE_MS once
//  the jobs flow.
static s_outcome_t s_scenario(zt_redis_t *redis, const char *cluster, s_outage_t outage)
{
    s_outcome_t out = {0};
    memset(s_jobs, 0, sizeof s_jobs);
    s_proxy_t proxies[2];
    zc_queue_worker_t *workers[2] = {NULL, NULL};
    for (int w = 0; w < 2; w++) {
        ZT_EQ(s_proxy_start(&proxies[w], zt_redis_socket(redis)), 0);
        char url[64], id[16];
        snprintf(url, sizeof url, "redis://127.0.0.1:%d", proxies[w].port);
        snprintf(id, sizeof id, "w%d", w + 1);
        workers[w] = s_worker(url, cluster, id);
        ZT_CHECK(workers[w] != NULL);
    }
    zc_queue_t *queue = zc_queue_new(zt_redis_url(redis), cluster);
    for (int i = 0; i < JOBS; i++) {
        char id[16];
        snprintf(id, sizeof id, "j%d", i);
        zc_job_opts_t opts = {.id = id, .max_attempts = 10, .backoff_ms = 50};
        ZT_EQ(zc_queue_enqueue(queue, "work", i % 2 ? "careful" : "naive", NULL, 0, &opts, NULL),
              0);
    }
    pid_t redis_pid = s_redis_pid(redis);
    ZT_CHECK(redis_pid > 0);
    usleep(1500000);
    s_outage(redis_pid, proxies, outage, 1);
    usleep(OUTAGE_MS * 1000);
    s_outage(redis_pid, proxies, outage, 0);

    int64_t deadline = zt_now_ms() + 30000;
    zc_queue_stats_t stats;
    while (zt_now_ms() < deadline) {
        int missing = 0;
        pthread_mutex_lock(&s_lock);
        for (int i = 0; i < JOBS; i++)
            missing += s_jobs[i].commits == 0;
        pthread_mutex_unlock(&s_lock);
        if (!missing && zc_queue_stats(queue, "work", &stats) == 0 &&
            stats.queued + stats.inflight + stats.delayed == 0)
            break;
        usleep(20000);
    }
    for (int w = 0; w < 2; w++) {
        zc_queue_worker_stats_t ws;
        zc_queue_worker_stats(workers[w], &ws);
        out.lost += ws.lost;
        out.lease_lost += ws.lease_lost;
        out.released += ws.released;
        zc_queue_worker_destroy(&workers[w]);
        s_proxy_stop(&proxies[w]);
    }
    for (int i = 0; i < JOBS; i++) {
        out.stranded += s_jobs[i].commits == 0;
        if (s_jobs[i].commits > 1) out.doubles[i % 2] += s_jobs[i].commits - 1;
        out.abandoned += s_jobs[i].abandoned;
    }
    ZT_EQ(zc_queue_stats(queue, "work", &stats), 0);
    ZT_EQ(stats.queued + stats.inflight + stats.delayed + stats.failed_list, 0);
    zc_queue_destroy(&queue);
    return out;
}

//  Runs one scenario and prints its figures.
static s_outcome_t s_measure(zt_redis_t *redis, const char *cluster, s_outage_t outage,
                             const char *what)
{
    zt_section(what);
    s_outcome_t o = s_scenario(redis, cluster, outage);
    printf("%s %d ms, lease %d ms: %d stranded, doubles: %d naive, %d careful; "
           "%d runs stopped early; %llu leases not kept, %llu results lost, %llu given back\n",
           what, OUTAGE_MS, LEASE_MS, o.stranded, o.doubles[0], o.doubles[1], o.abandoned,
           (unsigned long long)o.lease_lost, (unsigned long long)o.lost,
           (unsigned long long)o.released);
    ZT_EQ(o.stranded, 0);
    //  A job runs twice only where a lease could not be kept.
    ZT_CHECK(o.doubles[0] + o.doubles[1] <= (int)o.lease_lost);
    return o;
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    if (!ZT_CHECK(redis != NULL)) return zt_done();

    s_handler_told(redis);
    s_outcome_t hung = s_measure(redis, "hung", S_HUNG, "Redis hung (SIGSTOP)");
    ZT_EQ(hung.doubles[1], 0);
    s_outcome_t down = s_measure(redis, "down", S_DOWN, "Redis down for every worker");
    ZT_EQ(down.doubles[1], 0);
    s_measure(redis, "cut", S_PARTITION, "one worker cut off");

    zt_redis_destroy(&redis);
    return zt_done();
}
