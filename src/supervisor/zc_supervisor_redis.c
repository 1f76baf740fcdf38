/*  zc_supervisor_redis — the master's care of its embedded redis-server.

    With no Redis URL the master starts a private redis-server
    (zc_embedded_redis) before any worker and hands its URL to them. It is
    supervised like a worker: restarted after a backoff (100 ms doubled per
    consecutive death, at most 5 s) if it dies, at most 5 times in any
    minute (the 6th death shuts the master down with exit code 1, since the
    workers cannot do without it), and stopped after the last worker.
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define REDIS_START_WAIT 5000 //  ms for the first start to answer PING
#define REDIS_STOP_WAIT  2000 //  ms between SIGTERM and SIGKILL
#define REDIS_MAX_DEATHS 5    //  restarts allowed in a minute

int sup_redis_start(zc_supervisor_t *self)
{
    self->embedded = zc_embedded_redis_new(self->runtime_dir);
    if (!self->embedded)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                        "embedded Redis: runtime dir path too long for a unix socket");
    char err[256];
    if (zc_embedded_redis_start(self->embedded, REDIS_START_WAIT, err, sizeof err))
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_REDIS, "embedded Redis: %s", err);
    snprintf(self->redis_url, sizeof self->redis_url, "%s", zc_embedded_redis_url(self->embedded));
    return 0;
}

static void s_on_exit(zc_supervisor_t *self, int status)
{
    json_t *event = sup_event_new(self, "redis");
    json_object_set_new(event, "reason", json_string("exited"));
    json_object_set_new(event, "code", json_integer(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    json_object_set_new(event, "signal", json_integer(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    sup_emit(self, event);
    if (self->stopping) return;
    int64_t now = zclock_mono();
    int kept = 0;
    for (int i = 0; i < self->redis_restart_count; i++)
        if (now - self->redis_restarts[i] < 60000)
            self->redis_restarts[kept++] = self->redis_restarts[i];
    self->redis_restart_count = kept;
    if (kept >= REDIS_MAX_DEATHS) {
        zc_log(ZC_LOG_ERROR, "supervisor",
               "the embedded redis-server died 6 times in a minute: "
               "shutting down");
        if (self->exit_code == 0) self->exit_code = 1;
        sup_begin_shutdown(self);
        return;
    }
    self->redis_restarts[self->redis_restart_count++] = now;
    int delay = 100 << (self->redis_failures < 6 ? self->redis_failures : 6);
    self->redis_failures++;
    self->redis_restart_at = now + (delay > 5000 ? 5000 : delay);
}

void sup_redis_reap(zc_supervisor_t *self)
{
    int status = 0;
    if (self->embedded && zc_embedded_redis_reap(self->embedded, &status)) s_on_exit(self, status);
}

static void s_restart(zc_supervisor_t *self)
{
    self->redis_restart_at = 0;
    char err[256];
    json_t *event = sup_event_new(self, "redis");
    if (zc_embedded_redis_start(self->embedded, 0, err, sizeof err) == 0) {
        json_object_set_new(event, "reason", json_string("started"));
        json_object_set_new(event, "pid", json_integer(zc_embedded_redis_pid(self->embedded)));
        json_object_set_new(event, "url", json_string(self->redis_url));
    } else {
        json_object_set_new(event, "reason", json_string("exited"));
        json_object_set_new(event, "text", json_string(err));
        self->redis_restart_at = zclock_mono() + 1000;
    }
    sup_emit(self, event);
}

//  Restarts the server once its backoff is over.
void sup_redis_due(zc_supervisor_t *self, int64_t now)
{
    if (self->embedded && self->redis_restart_at && now >= self->redis_restart_at &&
        !self->stopping)
        s_restart(self);
}

//  Stops the server (after the last worker) and says so.
void sup_redis_stop(zc_supervisor_t *self)
{
    if (!self->embedded || zc_embedded_redis_pid(self->embedded) <= 0) return;
    zc_embedded_redis_stop(self->embedded, REDIS_STOP_WAIT);
    sup_event_reason(self, "redis", "stopped");
}
