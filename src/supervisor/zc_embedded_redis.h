/*  zc_embedded_redis — the private redis-server a master starts when no
    Redis URL is given (internal to libzcluster).

    The server listens on DIR/redis.sock only (no TCP port), keeps nothing
    on disk, and is a child of the master: the supervisor reaps it, restarts
    it if it dies, and stops it after the last worker. It gets SIGTERM if
    the process (thread) that started it dies.

    The same class runs one process of a local HA setup (zc_local_ha): a
    redis-server or redis-sentinel started with a configuration file, which
    holds its settings and password so that none shows on its command line.
*/
#ifndef ZC_EMBEDDED_REDIS_H_INCLUDED
#define ZC_EMBEDDED_REDIS_H_INCLUDED

#include <sys/types.h>

typedef struct _zc_embedded_redis_t zc_embedded_redis_t;

//  Prepares a server with its socket in dir (which must exist). Returns NULL
//  if the socket path would be too long for a unix socket.
zc_embedded_redis_t *zc_embedded_redis_new(const char *dir);

//  Prepares `program conf` (program from PATH: redis-server or
//  redis-sentinel), up once it answers PING at url (which may hold the
//  password). Returns NULL if a string is too long or url is not valid.
zc_embedded_redis_t *zc_embedded_redis_new_conf(const char *program, const char *conf,
                                                const char *url);

//  Stops the server if it runs (as zc_embedded_redis_stop with 2000 ms),
//  frees it and sets *self_p to NULL; idempotent.
void zc_embedded_redis_destroy(zc_embedded_redis_t **self_p);

//  Starts the server (redis-server, or the program given, from PATH). With wait_ms > 0, waits that
//  long for it to answer PING. Returns 0, or -1 with a reason in err.
int zc_embedded_redis_start(zc_embedded_redis_t *self, int wait_ms, char *err, size_t errlen);

//  Returns the server's pid, or 0 if it does not run.
pid_t zc_embedded_redis_pid(zc_embedded_redis_t *self);

//  Reaps the server if it exited. Returns 1 if it did (and fills *status),
//  0 if it still runs or was not started.
int zc_embedded_redis_reap(zc_embedded_redis_t *self, int *status);

//  Sends SIGTERM, waits up to timeout_ms, then SIGKILL; reaps it.
void zc_embedded_redis_stop(zc_embedded_redis_t *self, int timeout_ms);

//  Returns "unix://DIR/redis.sock" ("" for a server with a configuration
//  file: its URL may hold a password, and zc_local_ha has the one to use).
const char *zc_embedded_redis_url(zc_embedded_redis_t *self);

#endif
