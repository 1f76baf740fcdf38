/*  hakit — real Redis deployments for the Redis layer's tests. */
#include "hakit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _zh_server_t {
    char dir[64];
    int port;
    zt_proc_t *proc;
};

//  Returns 1 if nothing listens on 127.0.0.1:port now (0: any), port in *port.
static int s_port_free(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)*port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int ok = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
             getsockname(fd, (struct sockaddr *)&addr, &len) == 0;
    if (ok) *port = ntohs(addr.sin_port);
    close(fd);
    return ok;
}

//  A TCP port nothing listens on now (the kernel's choice); for a Redis
//  Cluster node one below 55536 whose bus port (+10000) is free too.
static int s_free_port(int cluster)
{
    int port = 0;
    if (!cluster) return s_port_free(&port) ? port : -1;
    for (int i = 0; i < 1000; i++) {
        port = 20000 + (int)((unsigned)rand() % 35000);
        int bus = port + 10000;
        if (s_port_free(&port) && s_port_free(&bus)) return port;
    }
    return -1;
}

//  Polls PING until the server answers (PONG, or NOAUTH: it is up).
static int s_wait_up(int port)
{
    for (int i = 0; i < 500; i++) {
        zc_redis_t *redis = zh_connect(port);
        redisReply *reply = zc_redis_command(redis, "PING");
        int up = reply != NULL;
        if (reply) freeReplyObject(reply);
        zc_redis_destroy(&redis);
        if (up) return 0;
        usleep(10000);
    }
    return -1;
}

static zh_server_t *s_new(int cluster)
{
    zh_server_t *self = (zh_server_t *)calloc(1, sizeof *self);
    snprintf(self->dir, sizeof self->dir, "/tmp/zc-test-ha-XXXXXX");
    if (!mkdtemp(self->dir)) {
        free(self);
        return NULL;
    }
    self->port = s_free_port(cluster);
    return self;
}

//  Starts argv and waits for the server; destroys self on failure.
static zh_server_t *s_run(zh_server_t *self, char *const *argv)
{
    self->proc = zt_proc_start(argv, NULL);
    if (!self->proc || s_wait_up(self->port)) {
        fprintf(stderr, "hakit: %s on port %d did not start\n", argv[0], self->port);
        zh_destroy(&self);
    }
    return self;
}

//  Runs redis-server on self's port and directory.
static zh_server_t *s_server_run(zh_server_t *self, const char *const *extra)
{
    char port[16], log[128];
    snprintf(port, sizeof port, "%d", self->port);
    snprintf(log, sizeof log, "%s/redis.log", self->dir);
    //  A replica syncs at once (the default diskless sync waits 5 s for
    //  more replicas).
    const char *argv[64] = {"redis-server",
                            "--port",
                            port,
                            "--bind",
                            "127.0.0.1",
                            "--dir",
                            self->dir,
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--logfile",
                            log,
                            "--loglevel",
                            "notice",
                            "--repl-diskless-sync-delay",
                            "0"};
    int argc = 17;
    for (int i = 0; extra && extra[i] && argc < 63; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    return s_run(self, (char *const *)argv);
}

zh_server_t *zh_server_start(const char *const *extra)
{
    int cluster = 0;
    for (int i = 0; extra && extra[i]; i++)
        cluster |= strcmp(extra[i], "--cluster-enabled") == 0;
    zh_server_t *self = s_new(cluster);
    return self ? s_server_run(self, extra) : NULL;
}

int zh_server_restart(zh_server_t **self_p, const char *const *extra)
{
    zh_kill(*self_p);
    *self_p = s_server_run(*self_p, extra);
    return *self_p ? 0 : -1;
}

zh_server_t *zh_sentinel_start(const char *name, int master_port, int down_after_ms)
{
    zh_server_t *self = s_new(0);
    if (!self) return NULL;
    char conf[128];
    snprintf(conf, sizeof conf, "%s/sentinel.conf", self->dir);
    FILE *file = fopen(conf, "w");
    if (!file) {
        zh_destroy(&self);
        return NULL;
    }
    fprintf(file,
            "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s/sentinel.log\n"
            "sentinel monitor %s 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds %s %d\n"
            "sentinel failover-timeout %s 10000\n"
            "sentinel parallel-syncs %s 1\n",
            self->port, self->dir, self->dir, name, master_port, name, down_after_ms, name, name);
    fclose(file);
    char *argv[] = {"redis-sentinel", conf, NULL};
    return s_run(self, argv);
}

int zh_port(zh_server_t *self)
{
    return self->port;
}

void zh_kill(zh_server_t *self)
{
    if (!self->proc) return;
    zt_proc_signal(self->proc, SIGKILL);
    zt_proc_wait(self->proc, 5000);
    zt_proc_destroy(&self->proc);
}

void zh_destroy(zh_server_t **self_p)
{
    zh_server_t *self = *self_p;
    if (!self) return;
    zh_kill(self);
    char command[128];
    snprintf(command, sizeof command, "rm -rf %s", self->dir);
    if (system(command) != 0) fprintf(stderr, "hakit: could not remove %s\n", self->dir);
    free(self);
    *self_p = NULL;
}

zc_redis_t *zh_connect(int port)
{
    char text[64], err[256];
    snprintf(text, sizeof text, "redis://127.0.0.1:%d", port);
    zc_redis_url_t url;
    zc_redis_url_parse(text, &url, err, sizeof err);
    zc_redis_t *redis = zc_redis_new(&url, 2000);
    zc_redis_set_backoff(redis, 0, 0);
    return redis;
}

int zh_command_ok(int port, const char *format, ...)
{
    zc_redis_t *redis = zh_connect(port);
    redisContext *c = zc_redis_context(redis);
    redisReply *reply = NULL;
    if (c) {
        va_list ap;
        va_start(ap, format);
        reply = (redisReply *)redisvCommand(c, format, ap);
        va_end(ap);
    }
    int ok = reply && reply->type != REDIS_REPLY_ERROR;
    if (!ok)
        fprintf(stderr, "hakit: %s: %s\n", format, reply ? reply->str : zc_redis_errstr(redis));
    if (reply) freeReplyObject(reply);
    zc_redis_destroy(&redis);
    return ok;
}

int zh_wait_role(int port, int want_master, int timeout_ms)
{
    int64_t end = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < end) {
        zc_redis_t *redis = zh_connect(port);
        redisReply *reply = zc_redis_command(redis, "ROLE");
        int master = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                     strcmp(reply->element[0]->str, "master") == 0;
        int answered = reply && reply->type == REDIS_REPLY_ARRAY;
        if (reply) freeReplyObject(reply);
        zc_redis_destroy(&redis);
        if (answered && master == want_master) return 1;
        usleep(20000);
    }
    return 0;
}

int zh_wait_reply(int port, const char *command, int (*check)(const redisReply *), int timeout_ms)
{
    int64_t end = zt_now_ms() + timeout_ms;
    zc_redis_t *redis = zh_connect(port);
    int ok = 0;
    while (!ok && zt_now_ms() < end) {
        redisReply *reply = zc_redis_command(redis, command);
        ok = reply && check(reply);
        if (reply) freeReplyObject(reply);
        if (!ok) usleep(50000);
    }
    zc_redis_destroy(&redis);
    return ok;
}

int zh_link_up(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_STRING && strstr(reply->str, "master_link_status:up");
}

int zh_watch(zh_watch_t *self, zc_redis_t *replica, const char *cluster, const char *const *ids,
             int count, int lease_ms)
{
    if (!self->promoted_at) {
        redisReply *reply = zc_redis_command(replica, "ROLE");
        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
            strcmp(reply->element[0]->str, "master") == 0)
            self->promoted_at = zt_now_ms();
        if (reply) freeReplyObject(reply);
        if (!self->promoted_at) return 0;
    }
    int back = 0;
    for (int i = 0; i < count && i < 16; i++) {
        redisReply *reply = zc_redis_command(replica, "PTTL zc:{%s}:lease:%s", cluster, ids[i]);
        int64_t now = zt_now_ms();
        long long pttl = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -3;
        if (reply) freeReplyObject(reply);
        //  When the lease was set, from its time to live: the moment the node
        //  came back, however late this look (the test's loop may be held
        //  up). Clocks: the server's ms against ours, a few ms apart at most.
        int64_t refreshed = now + pttl - lease_ms;
        if (pttl > 0 && refreshed >= self->promoted_at - 5 && !self->back_at[i])
            self->back_at[i] = refreshed > self->promoted_at ? refreshed : self->promoted_at;
        back += self->back_at[i] != 0;
    }
    return back;
}

int64_t zh_watch_done(zh_watch_t *self, int count)
{
    int64_t last = 0;
    for (int i = 0; i < count && i < 16; i++) {
        if (!self->back_at[i]) return 0;
        if (self->back_at[i] > last) last = self->back_at[i];
    }
    return last;
}

int zh_jobs_enqueue(zh_jobs_t *self, zc_queue_t *queue, const char *queue_name)
{
    if (self->enqueued == ZH_JOBS_MAX) return -1;
    char id[32];
    snprintf(id, sizeof id, "j-%d", self->enqueued);
    zc_job_opts_t opts = {.id = id};
    if (zc_queue_enqueue(queue, queue_name, "noop", NULL, 0, &opts, NULL)) return -1;
    self->enqueued++;
    return 0;
}

void zh_jobs_collect(zh_jobs_t *self, zt_proc_t *worker)
{
    const char *line;
    while ((line = zt_proc_expect(worker, "done j-", 1)) != NULL) {
        int n = atoi(line + 7);
        if (n >= 0 && n < ZH_JOBS_MAX && self->runs[n] < 255) self->runs[n]++;
    }
}

int zh_jobs_lost(zh_jobs_t *self)
{
    int lost = 0;
    for (int i = 0; i < self->enqueued; i++)
        lost += self->runs[i] == 0;
    return lost;
}

int zh_jobs_twice(zh_jobs_t *self)
{
    int twice = 0;
    for (int i = 0; i < self->enqueued; i++)
        twice += self->runs[i] > 1;
    return twice;
}
