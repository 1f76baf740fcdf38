/*  zc_embedded_redis — a private redis-server for a master without a Redis URL,
    or one process of a private master, replicas and sentinels (zc_local_ha).

    Why a child process and a unix socket: the default run of `zcluster
    start` must work on a machine with nothing configured, and must not
    collide with another master or a system Redis. A socket in the master's
    0700 runtime directory is private to the user and needs no port. Nothing
    is saved (--save '' --appendonly no): the registry, cache and queues of
    an embedded cluster live as long as its master. For the same reason the
    server gets SIGTERM if the master dies (zc_spawn's death signal): there
    is nothing to save, and nobody else could stop it. A server that keeps
    data would want to outlive a crashed master instead.
*/
#include "zc_embedded_redis.h"
#include "zc_redis.h"
#include "zc_spawn.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct _zc_embedded_redis_t {
    char dir[256];
    char program[32];     //  redis-server or redis-sentinel
    char conf[512];       //  its configuration file; "" for the socket server
    zc_redis_url_t where; //  where it answers PING, parsed
    char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char url[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
    pid_t pid;
};

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

zc_embedded_redis_t *zc_embedded_redis_new(const char *dir)
{
    assert(dir);
    zc_embedded_redis_t *self = (zc_embedded_redis_t *)calloc(1, sizeof(zc_embedded_redis_t));
    assert(self);
    int n = snprintf(self->socket, sizeof self->socket, "%s/redis.sock", dir);
    if (n < 0 || (size_t)n >= sizeof self->socket || strlen(dir) >= sizeof self->dir) {
        free(self);
        return NULL;
    }
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    snprintf(self->program, sizeof self->program, "redis-server");
    snprintf(self->url, sizeof self->url, "unix://%s", self->socket);
    char err[256];
    if (zc_redis_url_parse(self->url, &self->where, err, sizeof err)) {
        free(self);
        return NULL;
    }
    return self;
}

zc_embedded_redis_t *zc_embedded_redis_new_conf(const char *program, const char *conf,
                                                const char *url)
{
    assert(program && conf && url);
    zc_embedded_redis_t *self = (zc_embedded_redis_t *)calloc(1, sizeof(zc_embedded_redis_t));
    assert(self);
    char err[256];
    if (strlen(program) >= sizeof self->program || strlen(conf) >= sizeof self->conf ||
        zc_redis_url_parse(url, &self->where, err, sizeof err)) {
        free(self);
        return NULL;
    }
    snprintf(self->program, sizeof self->program, "%s", program);
    snprintf(self->conf, sizeof self->conf, "%s", conf);
    return self;
}

void zc_embedded_redis_destroy(zc_embedded_redis_t **self_p)
{
    assert(self_p);
    zc_embedded_redis_t *self = *self_p;
    if (!self) return;
    zc_embedded_redis_stop(self, 2000);
    free(self);
    *self_p = NULL;
}

//  Returns 1 if the server answers PING.
static int s_ping(zc_redis_t *redis)
{
    redisReply *reply = zc_redis_command(redis, "PING");
    int ok = reply && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
    if (reply) freeReplyObject(reply);
    return ok;
}

//  Waits up to wait_ms for the server to answer. Returns 0, or -1 with a
//  reason in err (the server is then stopped or reaped).
static int s_wait_ready(zc_embedded_redis_t *self, int wait_ms, char *err, size_t errlen)
{
    zc_redis_t *redis = zc_redis_new(&self->where, 500);
    zc_redis_set_backoff(redis, 0, 0); //  the loop below paces the attempts
    int ready = 0, status = 0, exited = 0;
    for (int waited = 0; waited < wait_ms && !ready && !exited; waited += 10) {
        ready = s_ping(redis);
        exited = !ready && zc_embedded_redis_reap(self, &status);
        if (!ready && !exited) s_sleep_ms(10);
    }
    zc_redis_destroy(&redis);
    if (ready) return 0;
    char where[300];
    if (exited)
        snprintf(err, errlen, "%s exited at start (status %d)", self->program, status);
    else {
        snprintf(err, errlen, "%s did not answer on %s within %d ms", self->program,
                 zc_redis_url_where(&self->where, where, sizeof where), wait_ms);
        zc_embedded_redis_stop(self, 1000);
    }
    return -1;
}

int zc_embedded_redis_start(zc_embedded_redis_t *self, int wait_ms, char *err, size_t errlen)
{
    assert(self);
    if (self->pid > 0) return 0;
    if (*self->socket) unlink(self->socket); //  left by a master that was killed
    char *socket_argv[] = {"redis-server", "--port",           "0",       "--unixsocket",
                           self->socket,   "--unixsocketperm", "700",     "--dir",
                           self->dir,      "--save",           "",        "--appendonly",
                           "no",           "--loglevel",       "warning", NULL};
    char *conf_argv[] = {self->program, self->conf, NULL}; //  secrets stay in the file
    zc_spawn_t spawn = {.argv = *self->conf ? conf_argv : socket_argv,
                        .envp = environ,
                        .fd3 = -1,
                        .cpu = -1,
                        .quiet = 1,
                        .death_signal = SIGTERM};
    pid_t pid = zc_spawn(&spawn);
    if (pid < 0) {
        snprintf(err, errlen, "cannot start %s: %s", self->program, strerror(errno));
        return -1;
    }
    self->pid = pid;
    return wait_ms > 0 ? s_wait_ready(self, wait_ms, err, errlen) : 0;
}

pid_t zc_embedded_redis_pid(zc_embedded_redis_t *self)
{
    assert(self);
    return self->pid;
}

int zc_embedded_redis_reap(zc_embedded_redis_t *self, int *status)
{
    assert(self);
    if (self->pid <= 0) return 0;
    int st = 0;
    pid_t rc = waitpid(self->pid, &st, WNOHANG);
    if (rc == self->pid || (rc < 0 && errno == ECHILD)) {
        self->pid = 0;
        if (status) *status = st;
        return 1;
    }
    return 0;
}

void zc_embedded_redis_stop(zc_embedded_redis_t *self, int timeout_ms)
{
    assert(self);
    if (self->pid <= 0) return;
    kill(self->pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (zc_embedded_redis_reap(self, NULL)) break;
        s_sleep_ms(5);
    }
    if (self->pid > 0) {
        kill(self->pid, SIGKILL);
        while (waitpid(self->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        self->pid = 0;
    }
    if (*self->socket) unlink(self->socket);
}

const char *zc_embedded_redis_url(zc_embedded_redis_t *self)
{
    assert(self);
    return self->url;
}
