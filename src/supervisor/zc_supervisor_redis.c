/*  zc_supervisor_redis — the master's care of its private Redis.

    With no Redis URL the master starts a private redis-server
    (zc_embedded_redis) before any worker and hands its URL to them; with
    redis replicas set, a local HA setup instead (zc_local_ha: a master,
    replicas and three sentinels), and the workers get its sentinel URL.
    Each process is supervised like a worker: restarted after a backoff
    (100 ms doubled per consecutive death, at most 5 s) if it dies, at most
    5 times in any minute (the 6th death of one process shuts the master
    down with exit code 1, since the workers cannot do without it), and
    stopped after the last worker. A dead server of a local HA setup waits
    for the sentinels to promote another before it comes back, as a
    replica (zc_local_ha_prepare_restart); that wait is not a death.
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
#define REDIS_HA_RECHECK 250  //  ms between looks at the sentinels' master

//  Puts server (named name, NULL for the single server) under care.
static void s_add_process(zc_supervisor_t *self, zc_embedded_redis_t *server, const char *name)
{
    sup_redis_proc_t *proc = &self->redis_procs[self->redis_proc_count++];
    memset(proc, 0, sizeof *proc);
    proc->server = server;
    proc->name = name;
}

//  Starts the local HA setup and hands its sentinel URL to the workers.
static int s_start_ha(zc_supervisor_t *self)
{
    self->ha = zc_local_ha_new(self->runtime_dir, self->redis_replicas);
    if (!self->ha)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                        "local HA Redis: runtime dir path too long");
    char err[256];
    if (zc_local_ha_start(self->ha, REDIS_START_WAIT, err, sizeof err))
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_REDIS, "local HA Redis: %s", err);
    for (int i = 0; i < zc_local_ha_count(self->ha); i++)
        s_add_process(self, zc_local_ha_process(self->ha, i), zc_local_ha_name(self->ha, i));
    snprintf(self->redis_url, sizeof self->redis_url, "%s", zc_local_ha_url(self->ha));
    return 0;
}

int sup_redis_start(zc_supervisor_t *self)
{
    if (self->redis_replicas > 0) return s_start_ha(self);
    self->embedded = zc_embedded_redis_new(self->runtime_dir);
    if (!self->embedded)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                        "embedded Redis: runtime dir path too long for a unix socket");
    char err[256];
    if (zc_embedded_redis_start(self->embedded, REDIS_START_WAIT, err, sizeof err))
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_REDIS, "embedded Redis: %s", err);
    s_add_process(self, self->embedded, NULL);
    snprintf(self->redis_url, sizeof self->redis_url, "%s", zc_embedded_redis_url(self->embedded));
    return 0;
}

//  A "redis" event about proc, with its name in a local HA setup.
static json_t *s_event_new(zc_supervisor_t *self, sup_redis_proc_t *proc, const char *reason)
{
    json_t *event = sup_event_new(self, "redis");
    json_object_set_new(event, "reason", json_string(reason));
    if (proc->name) json_object_set_new(event, "server", json_string(proc->name));
    return event;
}

//  Says a process died and schedules its restart, or shuts the master down
//  if it died too often.
static void s_on_exit(zc_supervisor_t *self, sup_redis_proc_t *proc, int status)
{
    json_t *event = s_event_new(self, proc, "exited");
    json_object_set_new(event, "code", json_integer(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    json_object_set_new(event, "signal", json_integer(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    sup_emit(self, event);
    if (self->stopping) return;
    int64_t now = zclock_mono();
    int kept = 0;
    for (int i = 0; i < proc->restart_count; i++)
        if (now - proc->restarts[i] < 60000) proc->restarts[kept++] = proc->restarts[i];
    proc->restart_count = kept;
    if (kept >= REDIS_MAX_DEATHS) {
        zc_log(ZC_LOG_ERROR, "supervisor",
               "the embedded %s died 6 times in a minute: shutting down",
               proc->name ? proc->name : "redis-server");
        if (self->exit_code == 0) self->exit_code = 1;
        sup_begin_shutdown(self);
        return;
    }
    proc->restarts[proc->restart_count++] = now;
    int delay = 100 << (proc->failures < 6 ? proc->failures : 6);
    proc->failures++;
    proc->restart_at = now + (delay > 5000 ? 5000 : delay);
}

void sup_redis_reap(zc_supervisor_t *self)
{
    for (int i = 0; i < self->redis_proc_count; i++) {
        int status = 0;
        if (zc_embedded_redis_reap(self->redis_procs[i].server, &status))
            s_on_exit(self, &self->redis_procs[i], status);
    }
}

//  Starts a dead process again (a server of the HA setup only once the
//  sentinels allow it) and says so.
static void s_restart(zc_supervisor_t *self, int index)
{
    sup_redis_proc_t *proc = &self->redis_procs[index];
    proc->restart_at = 0;
    char err[256];
    int rc = self->ha ? zc_local_ha_prepare_restart(self->ha, index, err, sizeof err) : 0;
    if (rc == 1) { //  no other master yet: look again soon
        proc->restart_at = zclock_mono() + REDIS_HA_RECHECK;
        return;
    }
    if (rc == 0) rc = zc_embedded_redis_start(proc->server, 0, err, sizeof err);
    json_t *event = s_event_new(self, proc, rc == 0 ? "started" : "exited");
    if (rc == 0) {
        json_object_set_new(event, "pid", json_integer(zc_embedded_redis_pid(proc->server)));
        char shown[1100]; //  the URL without its password
        json_object_set_new(event, "url",
                            json_string(zc_redis_url_redact(self->redis_url, shown, sizeof shown)));
    } else {
        json_object_set_new(event, "text", json_string(err));
        proc->restart_at = zclock_mono() + 1000;
    }
    sup_emit(self, event);
}

//  Restarts the processes whose backoff is over.
void sup_redis_due(zc_supervisor_t *self, int64_t now)
{
    for (int i = 0; i < self->redis_proc_count && !self->stopping; i++)
        if (self->redis_procs[i].restart_at && now >= self->redis_procs[i].restart_at)
            s_restart(self, i);
}

int64_t sup_redis_next_restart(zc_supervisor_t *self)
{
    int64_t next = 0;
    for (int i = 0; i < self->redis_proc_count; i++) {
        int64_t at = self->redis_procs[i].restart_at;
        if (at && (!next || at < next)) next = at;
    }
    return next;
}

json_t *sup_redis_processes_json(zc_supervisor_t *self)
{
    json_t *list = json_array();
    for (int i = 0; i < self->redis_proc_count; i++) {
        sup_redis_proc_t *proc = &self->redis_procs[i];
        json_t *entry = json_pack("{s:s, s:i}", "name", proc->name ? proc->name : "redis", "pid",
                                  (int)zc_embedded_redis_pid(proc->server));
        if (self->ha)
            json_object_set_new(entry, "port", json_integer(zc_local_ha_port(self->ha, i)));
        json_array_append_new(list, entry);
    }
    return list;
}

//  Stops the private Redis (after the last worker) and says so.
void sup_redis_stop(zc_supervisor_t *self)
{
    int running = 0;
    for (int i = 0; i < self->redis_proc_count; i++)
        running |= zc_embedded_redis_pid(self->redis_procs[i].server) > 0;
    if (self->ha)
        zc_local_ha_stop(self->ha, REDIS_STOP_WAIT); //  also removes its files
    else if (running)
        zc_embedded_redis_stop(self->embedded, REDIS_STOP_WAIT);
    if (running) sup_event_reason(self, "redis", "stopped");
}
