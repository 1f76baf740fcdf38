/*  zc_local_ha — a private master, replicas and sentinels on loopback.

    Why this shape: it is the smallest Redis that survives the loss of its
    master, built from the same parts a production setup uses (Sentinel
    promotes a replica; zc_redis follows the sentinels), so a user can try
    a failover on one machine. Three sentinels with a quorum of 2 keep
    working when one of them is down.

    Why a password: the embedded server's unix socket is private to the
    user (0700 directory); TCP ports on loopback are open to every local
    user. Every process is given one password, generated at start, that
    exists only in the configuration files (mode 0600, in the 0700 runtime
    directory) and in the workers' ZC_REDIS_URL, never on a command line.
    The sentinels ask for it too (requirepass), and use it among themselves
    (sentinel-pass) and with the servers (auth-pass, masterauth).

    Why a restarted server comes back as a replica: nothing is kept on disk,
    so a master restarted in place would be empty, and its replicas would
    copy the empty data set. A dead server therefore waits until the
    sentinels name another master, then follows it.

    The sentinels are told the replicas up front (known-replica), so a
    failover works at once rather than after their first INFO round, and
    notice a dead master after SENTINEL_DOWN_AFTER ms.
*/
#include "zc_local_ha.h"
#include "zc_private_file.h"
#include "zc_redis.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define MASTER_NAME          "local"
#define SENTINEL_DOWN_AFTER  2000  //  ms without an answer before a failover
#define SENTINEL_FAILOVER_MS 10000 //  a failover that takes longer is tried again
#define PROCESSES_MAX        (1 + ZC_LOCAL_HA_REPLICAS_MAX + ZC_LOCAL_HA_SENTINELS)

struct _zc_local_ha_t {
    char dir[256];
    int servers; //  master + replicas
    int count;   //  servers + sentinels
    char password[49];
    int ports[PROCESSES_MAX];
    char names[PROCESSES_MAX][24];
    zc_embedded_redis_t *procs[PROCESSES_MAX];
    char url[1024];
};

zc_local_ha_t *zc_local_ha_new(const char *dir, int replicas)
{
    assert(dir);
    //  The longest file name, "sentinel-3.conf", and room for Redis's own
    //  temporary names next to it.
    if (replicas < 1 || replicas > ZC_LOCAL_HA_REPLICAS_MAX || strlen(dir) > 200) return NULL;
    zc_local_ha_t *self = (zc_local_ha_t *)calloc(1, sizeof(zc_local_ha_t));
    assert(self);
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    self->servers = 1 + replicas;
    self->count = self->servers + ZC_LOCAL_HA_SENTINELS;
    for (int i = 0; i < self->count; i++)
        if (i < self->servers)
            snprintf(self->names[i], sizeof self->names[i], "redis-%d", i + 1);
        else
            snprintf(self->names[i], sizeof self->names[i], "sentinel-%d", i - self->servers + 1);
    return self;
}

//  The path of process index's file with extension ext.
static void s_file(zc_local_ha_t *self, int index, const char *ext, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s.%s", self->dir, self->names[index], ext);
}

//  Removes every file a process of the set may have left: its
//  configuration (with the password) and a replica's copy of the data.
static void s_remove_files(zc_local_ha_t *self)
{
    char path[300];
    for (int i = 0; i < self->count; i++) {
        s_file(self, i, "conf", path, sizeof path);
        unlink(path);
        s_file(self, i, "rdb", path, sizeof path);
        unlink(path);
    }
}

void zc_local_ha_destroy(zc_local_ha_t **self_p)
{
    assert(self_p);
    zc_local_ha_t *self = *self_p;
    if (!self) return;
    zc_local_ha_stop(self, 2000);
    for (int i = 0; i < self->count; i++)
        zc_embedded_redis_destroy(&self->procs[i]);
    explicit_bzero(self->password, sizeof self->password);
    explicit_bzero(self->url, sizeof self->url);
    free(self);
    *self_p = NULL;
}

//  Picks count distinct free loopback ports (the kernel's choice; each
//  socket stays bound until all are picked, so no two are the same).
static int s_pick_ports(int *ports, int count)
{
    int fds[PROCESSES_MAX], rc = 0;
    for (int i = 0; i < count; i++) {
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof addr;
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&addr, sizeof addr) ||
            getsockname(fds[i], (struct sockaddr *)&addr, &len))
            rc = -1;
        ports[i] = ntohs(addr.sin_port);
    }
    for (int i = 0; i < count; i++)
        if (fds[i] >= 0) close(fds[i]);
    return rc;
}

//  Writes server index's file: a replica of master_port, or a master (0).
static int s_server_conf(zc_local_ha_t *self, int index, int master_port)
{
    char text[2048], replicaof[64] = "";
    if (master_port) snprintf(replicaof, sizeof replicaof, "replicaof 127.0.0.1 %d\n", master_port);
    //  A replica syncs at once: the default diskless sync waits 5 s for
    //  more replicas.
    snprintf(text, sizeof text,
             "port %d\nbind 127.0.0.1\ndir %s\ndbfilename %s.rdb\nsave \"\"\n"
             "appendonly no\nloglevel warning\nrepl-diskless-sync-delay 0\n"
             "requirepass %s\nmasterauth %s\n%s",
             self->ports[index], self->dir, self->names[index], self->password, self->password,
             replicaof);
    char path[300];
    s_file(self, index, "conf", path, sizeof path);
    int rc = zc_private_file_write(path, text);
    explicit_bzero(text, sizeof text);
    return rc;
}

//  Writes sentinel index's file: it watches the first master and knows the
//  replicas from the start.
static int s_sentinel_conf(zc_local_ha_t *self, int index)
{
    char text[4096];
    int n = snprintf(text, sizeof text,
                     "port %d\nbind 127.0.0.1\ndir %s\nloglevel warning\n"
                     "requirepass %s\nsentinel sentinel-pass %s\n"
                     "sentinel monitor %s 127.0.0.1 %d 2\nsentinel auth-pass %s %s\n"
                     "sentinel down-after-milliseconds %s %d\n"
                     "sentinel failover-timeout %s %d\nsentinel parallel-syncs %s 1\n",
                     self->ports[index], self->dir, self->password, self->password, MASTER_NAME,
                     self->ports[0], MASTER_NAME, self->password, MASTER_NAME, SENTINEL_DOWN_AFTER,
                     MASTER_NAME, SENTINEL_FAILOVER_MS, MASTER_NAME);
    for (int i = 1; i < self->servers && n > 0 && (size_t)n < sizeof text; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "sentinel known-replica %s 127.0.0.1 %d\n",
                      MASTER_NAME, self->ports[i]);
    char path[300];
    s_file(self, index, "conf", path, sizeof path);
    int rc = zc_private_file_write(path, text);
    explicit_bzero(text, sizeof text);
    return rc;
}

//  A URL for one process of the set, with the password.
static void s_process_url(zc_local_ha_t *self, int index, char *url, size_t cap)
{
    snprintf(url, cap, "redis://:%s@127.0.0.1:%d", self->password, self->ports[index]);
}

//  Makes the password, the ports, the files and the processes.
static int s_prepare(zc_local_ha_t *self, char *err, size_t errlen)
{
    unsigned char bytes[24];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
        snprintf(err, errlen, "getrandom: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf(self->password + 2 * i, 3, "%02x", bytes[i]);
    explicit_bzero(bytes, sizeof bytes);
    if (s_pick_ports(self->ports, self->count)) {
        snprintf(err, errlen, "no free loopback port: %s", strerror(errno));
        return -1;
    }
    int n = snprintf(self->url, sizeof self->url, "redis-sentinel://:%s@", self->password);
    for (int i = self->servers; i < self->count; i++)
        n += snprintf(self->url + n, sizeof self->url - (size_t)n, "%s127.0.0.1:%d",
                      i > self->servers ? "," : "", self->ports[i]);
    snprintf(self->url + n, sizeof self->url - (size_t)n, "/%s", MASTER_NAME);
    for (int i = 0; i < self->count; i++) {
        int bad = i < self->servers ? s_server_conf(self, i, i ? self->ports[0] : 0)
                                    : s_sentinel_conf(self, i);
        if (bad) {
            snprintf(err, errlen, "cannot write %s/%s.conf: %s", self->dir, self->names[i],
                     strerror(errno));
            return -1;
        }
        char conf[300], url[128];
        s_file(self, i, "conf", conf, sizeof conf);
        s_process_url(self, i, url, sizeof url);
        zc_embedded_redis_destroy(&self->procs[i]);
        self->procs[i] = zc_embedded_redis_new_conf(
            i < self->servers ? "redis-server" : "redis-sentinel", conf, url);
        explicit_bzero(url, sizeof url);
        assert(self->procs[i]); //  the paths and the URL were checked above
    }
    return 0;
}

int zc_local_ha_start(zc_local_ha_t *self, int wait_ms, char *err, size_t errlen)
{
    assert(self);
    int rc = s_prepare(self, err, errlen);
    for (int i = 0; i < self->count && rc == 0; i++) {
        char why[256];
        rc = zc_embedded_redis_start(self->procs[i], wait_ms, why, sizeof why);
        if (rc) snprintf(err, errlen, "%s: %s", self->names[i], why);
    }
    if (rc) zc_local_ha_stop(self, 1000);
    return rc;
}

int zc_local_ha_count(zc_local_ha_t *self)
{
    assert(self);
    return self->count;
}

zc_embedded_redis_t *zc_local_ha_process(zc_local_ha_t *self, int index)
{
    assert(self && index >= 0 && index < self->count);
    return self->procs[index];
}

const char *zc_local_ha_name(zc_local_ha_t *self, int index)
{
    assert(self && index >= 0 && index < self->count);
    return self->names[index];
}

int zc_local_ha_port(zc_local_ha_t *self, int index)
{
    assert(self && index >= 0 && index < self->count);
    return self->ports[index];
}

//  The port of the master the first sentinel to answer names, or 0 if
//  none answers.
static int s_current_master(zc_local_ha_t *self)
{
    int port = 0;
    for (int i = self->servers; i < self->count && !port; i++) {
        char text[128], err[256];
        zc_redis_url_t url;
        s_process_url(self, i, text, sizeof text);
        int bad = zc_redis_url_parse(text, &url, err, sizeof err);
        explicit_bzero(text, sizeof text);
        if (bad) continue;
        zc_redis_t *sentinel = zc_redis_new(&url, 500);
        explicit_bzero(&url, sizeof url);
        zc_redis_set_backoff(sentinel, 0, 0);
        redisReply *reply =
            zc_redis_command(sentinel, "SENTINEL get-master-addr-by-name %s", MASTER_NAME);
        if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[1]->type == REDIS_REPLY_STRING)
            port = atoi(reply->element[1]->str);
        if (reply) freeReplyObject(reply);
        zc_redis_destroy(&sentinel);
    }
    return port;
}

int zc_local_ha_prepare_restart(zc_local_ha_t *self, int index, char *err, size_t errlen)
{
    assert(self && index >= 0 && index < self->count);
    if (index >= self->servers) return 0;
    int master = s_current_master(self), named = -1, others = 0;
    if (master == 0) return 1;
    for (int i = 0; i < self->servers; i++) {
        if (self->ports[i] == master) named = i;
        if (i != index) others += zc_embedded_redis_pid(self->procs[i]) > 0;
    }
    if (named == index) {
        if (others) return 1; //  a failover to one of them is on its way
        master = 0;           //  every server died: nothing is left to keep
    } else if (named >= 0 && zc_embedded_redis_pid(self->procs[named]) <= 0)
        return 1; //  its master is dead too: that one comes back first
    if (s_server_conf(self, index, master)) {
        snprintf(err, errlen, "cannot write %s/%s.conf: %s", self->dir, self->names[index],
                 strerror(errno));
        return -1;
    }
    return 0;
}

const char *zc_local_ha_url(zc_local_ha_t *self)
{
    assert(self);
    return self->url;
}

void zc_local_ha_stop(zc_local_ha_t *self, int timeout_ms)
{
    assert(self);
    for (int i = self->count - 1; i >= 0; i--)
        if (self->procs[i]) zc_embedded_redis_stop(self->procs[i], timeout_ms);
    s_remove_files(self);
}
