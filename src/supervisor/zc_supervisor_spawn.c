/*  zc_supervisor_spawn — starting a worker, hearing from it, stopping it.

    A worker is started with its identity in the environment (the contract
    in zc_supervisor.h) and one end of a unix SOCK_SEQPACKET socket pair as
    fd 3, on which it writes "ready" and "status TEXT" lines
    (zc_supervisor_ready.c is the worker's side). The master polls the other
    end from its loop; end of input closes it.

    Stopping is SIGTERM to the worker's process group, and a deadline after
    which the timers (zc_supervisor_run.c) send SIGKILL. zc_spawn makes the
    child ask for SIGTERM if the master dies, so a master that is SIGKILLed
    leaves no worker behind (docs/SUPERVISOR.md, "When the master dies").
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"
#include "zc_spawn.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

extern char **environ;

#define LOG_SOURCE "supervisor"

//  --------------------------------------------------------------------------
//  Starting

//  The environment for a worker: ours without the variables we set, plus them.
static char **s_worker_env(zc_supervisor_t *self, sup_proc_t *proc, sup_slot_t *slot)
{
    static const char *ours[] = {
        "ZC_NODE_ID=",      "ZC_CLUSTER=",      "ZC_REDIS_URL=",    "ZC_MASTER_PID=",
        "ZC_WORKER_INDEX=", "ZC_WORKER_GROUP=", "ZC_START_REASON=", "ZC_RESTARTS=",
        "ZC_READY_FD=",     "ZC_ADMIN_KEY="};
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = (char **)calloc(n + 16, sizeof(char *));
    assert(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int skip = 0;
        for (size_t j = 0; j < sizeof ours / sizeof ours[0] && !skip; j++)
            skip = strncmp(environ[i], ours[j], strlen(ours[j])) == 0;
        if (!skip) env[k++] = strdup(environ[i]);
    }
    char line[1200];
    snprintf(line, sizeof line, "ZC_NODE_ID=%s", proc->id);
    env[k++] = strdup(line);
    snprintf(line, sizeof line, "ZC_CLUSTER=%s", self->name);
    env[k++] = strdup(line);
    snprintf(line, sizeof line, "ZC_REDIS_URL=%s", self->redis_url);
    env[k++] = strdup(line);
    snprintf(line, sizeof line, "ZC_MASTER_PID=%d", (int)getpid());
    env[k++] = strdup(line);
    snprintf(line, sizeof line, "ZC_WORKER_INDEX=%d", proc->number);
    env[k++] = strdup(line);
    snprintf(line, sizeof line, "ZC_WORKER_GROUP=%s", slot->group->name);
    env[k++] = strdup(line);
    snprintf(line, sizeof line, "ZC_START_REASON=%s", proc->start_reason);
    env[k++] = strdup(line);
    snprintf(line, sizeof line, "ZC_RESTARTS=%d", slot->restarts);
    env[k++] = strdup(line);
    env[k++] = strdup("ZC_READY_FD=3");
    return env;
}

void sup_proc_free(sup_proc_t *proc)
{
    if (proc->ready_fd >= 0) close(proc->ready_fd);
    sup_argv_free(&proc->argv);
    free(proc);
}

//  A process record for slot, not started yet: its number, id, CPU and
//  command line (argv plus the extra arguments).
static sup_proc_t *s_proc_new(zc_supervisor_t *self, sup_slot_t *slot, char *const argv[],
                              const char *reason, int replacement)
{
    sup_proc_t *proc = (sup_proc_t *)calloc(1, sizeof(sup_proc_t));
    assert(proc);
    proc->slot = slot;
    proc->ready_fd = -1;
    proc->start_reason = reason;
    proc->replacement = replacement;
    //  A respawn keeps the number its slot kept through the backoff.
    proc->number = !replacement && slot->state == SUP_BACKOFF && slot->number > 0
                       ? slot->number
                       : sup_free_number(self);
    zc_supervisor_worker_id(proc->id, sizeof proc->id, self->name, proc->number);
    proc->cpu = self->cpu_count ? self->cpus[(proc->number - 1) % self->cpu_count] : -1;
    int argc = 0;
    while (argv[argc])
        argc++;
    proc->argv = (char **)calloc((size_t)(argc + self->extra_count + 1), sizeof(char *));
    assert(proc->argv);
    for (int i = 0; i < argc; i++)
        proc->argv[i] = strdup(argv[i]);
    for (int i = 0; i < self->extra_count; i++)
        proc->argv[argc + i] = strdup(self->extra_args[i]);
    return proc;
}

//  Forks and executes proc with its ready socket. Returns 0, or -1 with a
//  reason in err.
static int s_exec(zc_supervisor_t *self, sup_proc_t *proc, char *err, size_t errlen)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair)) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return -1;
    }
    fcntl(pair[0], F_SETFL, O_NONBLOCK);
    char **env = s_worker_env(self, proc, proc->slot);
    //  SIGTERM if the master dies: a worker gets to leave cleanly.
    zc_spawn_t spawn = {.argv = proc->argv,
                        .envp = env,
                        .fd3 = pair[1],
                        .cpu = proc->cpu,
                        .quiet = 0,
                        .death_signal = SIGTERM};
    proc->pid = zc_spawn(&spawn);
    int spawn_errno = errno;
    for (int i = 0; env[i]; i++)
        free(env[i]);
    free(env);
    close(pair[1]);
    if (proc->pid < 0) {
        snprintf(err, errlen, "cannot execute %s: %s", proc->argv[0], strerror(spawn_errno));
        close(pair[0]);
        return -1;
    }
    proc->ready_fd = pair[0];
    return 0;
}

sup_proc_t *sup_spawn(zc_supervisor_t *self, sup_slot_t *slot, char *const argv[],
                      const char *reason, int replacement, char *err, size_t errlen)
{
    sup_proc_t *proc = s_proc_new(self, slot, argv, reason, replacement);
    if (s_exec(self, proc, err, errlen)) {
        sup_proc_free(proc);
        return NULL;
    }
    proc->state = SUP_STARTING;
    proc->started = zclock_mono();
    proc->started_wall = zclock_time();
    proc->deadline = proc->started + self->ready_timeout_ms;
    proc->next = self->procs;
    self->procs = proc;

    json_t *event = sup_event_new(self, "start");
    sup_event_worker(event, proc);
    json_object_set_new(event, "reason", json_string(reason));
    sup_emit(self, event);
    return proc;
}

//  Starts the slot's (non-replacement) process. Returns 0, or -1 after
//  failing the group if the program cannot be executed.
int sup_spawn_slot(zc_supervisor_t *self, sup_slot_t *slot, const char *reason)
{
    char err[512];
    sup_proc_t *proc = sup_spawn(self, slot, slot->argv, reason, 0, err, sizeof err);
    if (!proc) {
        //  Retrying cannot make a missing program appear: give up on the group.
        sup_group_fail(self, slot->group, err);
        return -1;
    }
    slot->proc = proc;
    slot->number = proc->number;
    slot->state = SUP_STARTING;
    slot->respawn_at = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Readiness and status lines from workers

void sup_track_min_ready(zc_supervisor_t *self)
{
    if (self->reload.active) {
        int ready = sup_ready_count(self);
        if (ready < self->reload.min_ready) self->reload.min_ready = ready;
    }
}

void sup_on_ready(zc_supervisor_t *self, sup_proc_t *proc)
{
    if (proc->state != SUP_STARTING) return;
    proc->state = SUP_READY;
    proc->ready_at = zclock_mono();
    if (!proc->replacement && proc->slot->proc == proc) proc->slot->state = SUP_READY;
    json_t *event = sup_event_new(self, "ready");
    sup_event_worker(event, proc);
    json_object_set_new(event, "after_ms", json_integer(proc->ready_at - proc->started));
    sup_emit(self, event);
    if (proc->replacement) sup_reload_takeover(self, proc);
    sup_check_all_ready(self);
}

void sup_check_all_ready(zc_supervisor_t *self)
{
    int expected = sup_expected_count(self), ready = sup_ready_count(self);
    if (!self->all_ready_reason || self->reload.active || self->stopping || expected <= 0 ||
        ready < expected)
        return;
    const char *reason = self->all_ready_reason;
    self->all_ready_reason = NULL;
    json_t *event = sup_event_new(self, "all-ready");
    json_object_set_new(event, "reason", json_string(reason));
    json_object_set_new(event, "workers", json_integer(ready));
    sup_emit(self, event);
    if (self->all_ready_fn) self->all_ready_fn(self, reason, ready, self->all_ready_arg);
}

static void s_on_line(zc_supervisor_t *self, sup_proc_t *proc, char *line)
{
    if (strcmp(line, "ready") == 0)
        sup_on_ready(self, proc);
    else if (strncmp(line, "status", 6) == 0 && (line[6] == ' ' || line[6] == 0)) {
        const char *text = line[6] ? line + 7 : "";
        snprintf(proc->status, sizeof proc->status, "%s", text);
        json_t *event = sup_event_new(self, "status");
        sup_event_worker(event, proc);
        json_object_set_new(event, "text", json_string(proc->status));
        sup_emit(self, event);
    } else
        zc_log(ZC_LOG_DEBUG, LOG_SOURCE, "%s: ignored line '%.60s' on the ready socket", proc->id,
               line);
}

//  Reads what the worker sent; closes the socket at end of input.
void sup_read_ready(zc_supervisor_t *self, sup_proc_t *proc)
{
    while (proc->ready_fd >= 0) {
        char packet[1024];
        ssize_t n = recv(proc->ready_fd, packet, sizeof packet - 1, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            close(proc->ready_fd);
            proc->ready_fd = -1;
            return;
        }
        packet[n] = 0;
        //  A packet holds one or more lines; bytes that are not text end a line.
        char *p = packet;
        while (*p) {
            size_t len = strcspn(p, "\n\r");
            char keep = p[len];
            p[len] = 0;
            for (char *c = p; *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f) *c = ' ';
            if (len) s_on_line(self, proc, p);
            p += len + (keep ? 1 : 0);
        }
    }
}

//  --------------------------------------------------------------------------
//  Stopping

//  Signals a worker's process group (its children too), or the process alone.
void sup_kill(pid_t pid, int sig)
{
    if (pid > 0 && kill(-pid, sig) < 0) kill(pid, sig);
}

//  Sends SIGTERM; SIGKILL follows after the stop timeout.
void sup_stop(zc_supervisor_t *self, sup_proc_t *proc, const char *reason)
{
    if (proc->state == SUP_STOPPING) return;
    proc->stop_reason = reason;
    proc->state = SUP_STOPPING;
    proc->deadline = zclock_mono() + self->stop_timeout_ms;
    sup_kill(proc->pid, SIGTERM);
    sup_track_min_ready(self);
}

void sup_kill_all(zc_supervisor_t *self)
{
    self->forced = 1;
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next) {
        if (proc->state != SUP_STOPPING) sup_stop(self, proc, "shutdown");
        if (!proc->killed) {
            proc->killed = 1;
            sup_kill(proc->pid, SIGKILL);
        }
    }
}

//  `shutdown ID`: stops the slot's worker for good; waiter (may be NULL)
//  gets the answer once it exited. Returns 0, or -1 if it cannot.
int sup_stop_slot(zc_supervisor_t *self, sup_slot_t *slot, zc_admin_request_t *waiter)
{
    if (self->reload.active && (self->reload.slot == slot)) {
        if (waiter)
            sup_reply_json(waiter, 409,
                           json_pack("{s:b, s:s}", "ok", 0, "error",
                                     "that worker is being replaced by a reload"));
        return -1;
    }
    if (!slot->proc) {
        slot->state = SUP_REMOVED;
        slot->respawn_at = 0;
        if (waiter) sup_reply_json(waiter, 200, json_pack("{s:b}", "ok", 1));
        return 0;
    }
    if (slot->proc->stop_waiter) {
        if (waiter)
            sup_reply_json(waiter, 409,
                           json_pack("{s:b, s:s}", "ok", 0, "error", "already stopping"));
        return -1;
    }
    slot->proc->stop_waiter = waiter;
    sup_stop(self, slot->proc, "shutdown");
    return 0;
}
