/*  zc_supervisor_respawn — what a worker's exit means, and the respawn policy.

    An exit the master asked for (a stop reason is set) ends that process's
    story. An exit nobody asked for is a crash, unless the restart policy is
    transient and it exited 0 (then its slot is done). A crashed slot is
    respawned after an exponential backoff: the initial delay doubled per
    consecutive crash of that slot, up to a maximum, and back to the initial
    delay once a worker lived longer than the restart window.

    Why the restart limit is a sliding window and not a count since start:
    a worker that crashes once a day must not be given up on after ten days,
    and a crash loop must be stopped within seconds whatever happened
    before. A group keeps the times of its restarts within the last window;
    the crash that would make more than max_restarts stops the group (and,
    once no group is left running, the master: it never loops for ever).
*/
#include "zc_supervisor_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

//  --------------------------------------------------------------------------
//  Crashes, the restart window, group failure

void sup_group_fail(zc_supervisor_t *self, sup_group_t *group, const char *why)
{
    if (group->failed) return;
    group->failed = 1;
    if (self->reload.active && (!self->reload.group || self->reload.group == group ||
                                (self->reload.slot && self->reload.slot->group == group)))
        sup_reload_abort(self, "a group was stopped by its restart limit");
    for (int s = 0; s < group->slot_count; s++) {
        sup_slot_t *slot = group->slots[s];
        if (slot->state == SUP_REMOVED || slot->state == SUP_DONE) continue;
        slot->state = SUP_FAILED;
        slot->respawn_at = 0;
        if (slot->proc) sup_stop(self, slot->proc, "shutdown");
    }
    json_t *event = sup_event_new(self, "group");
    json_object_set_new(event, "group", json_string(group->name));
    json_object_set_new(event, "reason", json_string("failed"));
    json_object_set_new(event, "text", json_string(why));
    json_object_set_new(event, "restarts", json_integer(group->restart_count));
    json_object_set_new(event, "max_restarts", json_integer(self->max_restarts));
    json_object_set_new(event, "window_ms", json_integer(self->window_ms));
    sup_emit(self, event);
    self->exit_code = 3;
}

//  Forgets the group's restarts older than the window; returns how many are left.
static int s_restarts_in_window(zc_supervisor_t *self, sup_group_t *group, int64_t now)
{
    int kept = 0;
    for (int i = 0; i < group->restart_count; i++)
        if (now - group->restart_times[i] < self->window_ms)
            group->restart_times[kept++] = group->restart_times[i];
    group->restart_count = kept;
    return kept;
}

//  A slot's process exited unexpectedly: respawn it after a backoff, or
//  stop the group if that would exceed its restart limit.
static void s_on_crash(zc_supervisor_t *self, sup_slot_t *slot, int64_t uptime)
{
    sup_group_t *group = slot->group;
    int64_t now = zclock_mono();
    if (s_restarts_in_window(self, group, now) >= self->max_restarts) {
        char why[256];
        snprintf(why, sizeof why,
                 "restart limit reached: crashed again after %d restart(s) in the last %d ms "
                 "(at most %d allowed)",
                 group->restart_count, self->window_ms, self->max_restarts);
        slot->state = SUP_FAILED;
        sup_group_fail(self, group, why);
        return;
    }
    group->restart_times = (int64_t *)realloc(group->restart_times,
                                              sizeof(int64_t) * (size_t)(group->restart_count + 1));
    assert(group->restart_times);
    group->restart_times[group->restart_count++] = now;
    if (uptime >= self->window_ms) slot->failures = 0; //  it had been fine for a whole window
    int64_t delay = self->backoff_ms;
    for (int i = 0; i < slot->failures && delay < self->backoff_max_ms; i++)
        delay *= 2;
    if (delay > self->backoff_max_ms) delay = self->backoff_max_ms;
    slot->failures++;
    slot->restarts++;
    slot->state = SUP_BACKOFF;
    slot->respawn_at = now + delay;
}

//  Respawns the slots whose backoff is over.
void sup_respawn_due(zc_supervisor_t *self, int64_t now)
{
    for (int g = 0; g < self->group_count && !self->stopping; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++) {
            sup_slot_t *slot = self->groups[g]->slots[s];
            if (slot->state == SUP_BACKOFF && !slot->proc && slot->respawn_at &&
                now >= slot->respawn_at && !self->groups[g]->failed)
                sup_spawn_slot(self, slot, "crash");
        }
}

//  --------------------------------------------------------------------------
//  Exits

static const char *s_exit_reason(zc_supervisor_t *self, sup_proc_t *proc, int status)
{
    if (proc->stop_reason) return proc->stop_reason;
    if (self->policy == ZC_RESTART_TRANSIENT && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return "done";
    return "crash";
}

static void s_unlink_proc(zc_supervisor_t *self, sup_proc_t *proc)
{
    for (sup_proc_t **p = &self->procs; *p; p = &(*p)->next)
        if (*p == proc) {
            *p = proc->next;
            return;
        }
}

static void s_exit_event(zc_supervisor_t *self, sup_proc_t *proc, int status, const char *reason,
                         int64_t uptime)
{
    json_t *event = sup_event_new(self, "exit");
    sup_event_worker(event, proc);
    json_object_set_new(event, "reason", json_string(reason));
    json_object_set_new(event, "code", json_integer(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    json_object_set_new(event, "signal", json_integer(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    json_object_set_new(event, "uptime_ms", json_integer(uptime));
    if (proc->state == SUP_STARTING && !proc->stop_reason)
        json_object_set_new(event, "text", json_string("exited before it was ready"));
    sup_emit(self, event);
}

//  A reload's replacement died before it was ready: the reload is aborted.
static void s_replacement_exited(zc_supervisor_t *self, sup_proc_t *proc, int status)
{
    sup_reload_t *r = &self->reload;
    if (!r->active || r->fresh != proc) return;
    sup_slot_t *slot = proc->slot;
    char why[1024];
    if (WIFEXITED(status))
        snprintf(why, sizeof why, "%s exited with code %d before it was ready; kept %s", proc->id,
                 WEXITSTATUS(status), slot->proc ? slot->proc->id : "nothing");
    else
        snprintf(why, sizeof why, "%s was killed by signal %d before it was ready; kept %s",
                 proc->id, WTERMSIG(status), slot->proc ? slot->proc->id : "nothing");
    r->fresh = NULL;
    sup_reload_abort(self, why);
}

//  The slot's current process exited: what the slot does next.
static void s_slot_exited(zc_supervisor_t *self, sup_proc_t *proc, const char *reason,
                          int64_t uptime)
{
    sup_slot_t *slot = proc->slot;
    slot->proc = NULL;
    if (self->stopping)
        slot->state = slot->state == SUP_FAILED ? SUP_FAILED : SUP_STOPPED;
    else if (slot->state == SUP_FAILED)
        ; //  its group was stopped
    else if (proc->stop_reason && strcmp(proc->stop_reason, "shutdown") == 0)
        slot->state = SUP_REMOVED;
    else if (strcmp(reason, "done") == 0)
        slot->state = SUP_DONE;
    else
        s_on_crash(self, slot, uptime);
}

static void s_on_exit(zc_supervisor_t *self, sup_proc_t *proc, int status)
{
    sup_read_ready(self, proc); //  a ready line written just before exiting counts
    int64_t uptime = zclock_mono() - proc->started;
    const char *reason = s_exit_reason(self, proc, status);
    s_unlink_proc(self, proc);
    s_exit_event(self, proc, status, reason, uptime);
    proc->pid = 0;
    if (proc->stop_waiter) {
        sup_reply_json(proc->stop_waiter, 200,
                       json_pack("{s:b, s:s, s:i, s:i}", "ok", 1, "worker", proc->id, "code",
                                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, "killed",
                                 proc->killed));
        proc->stop_waiter = NULL;
    }
    if (proc->replacement)
        s_replacement_exited(self, proc, status);
    else if (proc->slot->proc == proc)
        s_slot_exited(self, proc, reason, uptime);
    if (self->reload.active && self->reload.old == proc) {
        self->reload.old = NULL;
        sup_reload_next(self);
    }
    sup_track_min_ready(self);
    sup_proc_free(proc);
}

void sup_reap(zc_supervisor_t *self)
{
    sup_proc_t *proc = self->procs;
    while (proc) {
        sup_proc_t *next = proc->next;
        int status = 0;
        pid_t rc = waitpid(proc->pid, &status, WNOHANG);
        if (rc == proc->pid)
            s_on_exit(self, proc, status);
        else if (rc < 0 && errno == ECHILD)
            s_on_exit(self, proc, 0); //  reaped elsewhere: the status is lost
        proc = next;
        //  s_on_exit may have spawned processes (pushed at the head): fine,
        //  they are young and will be looked at on the next SIGCHLD.
    }
    sup_redis_reap(self);
}
