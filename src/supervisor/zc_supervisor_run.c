/*  zc_supervisor_run — the master's run: start, the loop, timers, shutdown.

    One thread, one poll loop. Signals arrive through a self-pipe (the
    handler writes the signal number; the loop does the work), each worker's
    ready socket and the admin daemon's epoll fd are in the same poll set,
    and every timer (ready timeouts, SIGKILL after the stop timeout, backoff
    respawns, Redis restarts) is a deadline in the table that bounds the
    poll timeout. Nothing else touches the table, so it needs no lock and
    the admin API reads a consistent picture.

    Every child (worker or embedded redis-server) is forked from this
    thread, and none outlives zc_supervisor_run: that is what makes the
    children's PR_SET_PDEATHSIG hold, since Linux sends it when the thread
    that forked exits, not only when the process does (zc_spawn.h).
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_SOURCE "supervisor"

static int s_signal_pipe[2] = {-1, -1};

//  --------------------------------------------------------------------------
//  Signals

static void s_on_signal(int sig)
{
    int saved = errno;
    unsigned char byte = (unsigned char)sig;
    ssize_t ignored = write(s_signal_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved;
}

static const int s_signals[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGPIPE};
#define SIGNAL_COUNT ((int)(sizeof s_signals / sizeof s_signals[0]))

static int s_signals_install(struct sigaction *saved)
{
    if (pipe2(s_signal_pipe, O_CLOEXEC | O_NONBLOCK)) return -1;
    for (int i = 0; i < SIGNAL_COUNT; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = s_signals[i] == SIGPIPE ? SIG_IGN : s_on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART | (s_signals[i] == SIGCHLD ? SA_NOCLDSTOP : 0);
        sigaction(s_signals[i], &sa, &saved[i]);
    }
    return 0;
}

static void s_signals_restore(struct sigaction *saved)
{
    for (int i = 0; i < SIGNAL_COUNT; i++)
        sigaction(s_signals[i], &saved[i], NULL);
    close(s_signal_pipe[0]);
    close(s_signal_pipe[1]);
    s_signal_pipe[0] = s_signal_pipe[1] = -1;
}

static void s_on_signals(zc_supervisor_t *self)
{
    unsigned char sigs[64];
    ssize_t n;
    int chld = 0, hup = 0, term = 0;
    while ((n = read(s_signal_pipe[0], sigs, sizeof sigs)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            chld |= sigs[i] == SIGCHLD;
            hup |= sigs[i] == SIGHUP;
            term += sigs[i] == SIGTERM || sigs[i] == SIGINT;
        }
    if (chld) sup_reap(self);
    if (hup && zc_supervisor_reload(self))
        zc_log(ZC_LOG_WARNING, LOG_SOURCE, "SIGHUP: no reload started");
    if (term) {
        if (self->stopping) {
            zc_log(ZC_LOG_WARNING, LOG_SOURCE, "second stop signal: killing every worker now");
            sup_kill_all(self);
        } else
            sup_begin_shutdown(self);
    }
}

//  --------------------------------------------------------------------------
//  Start

//  Checks there is something to run, and not too much. Returns the number
//  of CPUs a group of "one per CPU" gets, or -1.
static int s_check_groups(zc_supervisor_t *self)
{
    if (self->group_count == 0)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID, "no worker group to run");
    int cpus[SUP_MAX_CPUS], total = 0;
    int cores = sup_allowed_cpus(cpus, SUP_MAX_CPUS);
    for (int g = 0; g < self->group_count; g++)
        total += self->groups[g]->count ? self->groups[g]->count : cores;
    if (total > SUP_MAX_WORKERS)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID, "%d workers in all: at most %d", total,
                        SUP_MAX_WORKERS);
    return cores;
}

static void s_started_event(zc_supervisor_t *self)
{
    json_t *event = sup_event_new(self, "master");
    json_object_set_new(event, "reason", json_string("started"));
    json_object_set_new(event, "pid", json_integer(getpid()));
    char shown[1100];
    json_object_set_new(event, "redis",
                        json_string(zc_redis_url_redact(self->redis_url, shown, sizeof shown)));
    json_object_set_new(event, "embedded_redis", json_boolean(self->redis_proc_count > 0));
    json_object_set_new(event, "redis_replicas", json_integer(self->ha ? self->redis_replicas : 0));
    json_object_set_new(event, "runtime_dir", json_string(self->runtime_dir));
    json_object_set_new(event, "admin_port",
                        json_integer(self->admin ? zc_admin_port(self->admin) : 0));
    sup_emit(self, event);
}

//  Creates each group's slots (count, or one per CPU).
static void s_slots_create(zc_supervisor_t *self, int cores)
{
    for (int g = 0; g < self->group_count; g++) {
        sup_group_t *group = self->groups[g];
        int count = group->count ? group->count : cores;
        group->slots = (sup_slot_t **)calloc((size_t)count + 1, sizeof(sup_slot_t *));
        assert(group->slots);
        for (int i = 0; i < count; i++) {
            sup_slot_t *slot = (sup_slot_t *)calloc(1, sizeof(sup_slot_t));
            assert(slot);
            slot->group = group;
            slot->argv = sup_argv_copy(group->argv);
            slot->state = SUP_STARTING;
            group->slots[group->slot_count++] = slot;
        }
    }
}

static int s_start(zc_supervisor_t *self)
{
    int cores = s_check_groups(self);
    if (cores < 0 || sup_runtime_prepare(self) || sup_key_prepare(self)) return -1;
    if (sup_keys_prepare(self)) return -1;
    if (*self->redis_url && self->redis_replicas)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                        "redis replicas are for the private Redis: not with a Redis URL");
    if (!*self->redis_url && sup_redis_start(self)) return -1;
    if (sup_events_open(self)) return -1;
    if (self->admin_port >= 0 && sup_admin_open(self)) return -1;
    self->running = 1;
    self->started = zclock_mono();
    sup_ok(self);
    s_started_event(self);
    s_slots_create(self, cores);
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count && !self->groups[g]->failed; s++)
            sup_spawn_slot(self, self->groups[g]->slots[s], "start");
    return 0;
}

//  --------------------------------------------------------------------------
//  Timers

//  A worker still starting at its deadline is stopped; a reload waiting for
//  it is aborted.
static void s_ready_timeout(zc_supervisor_t *self, sup_proc_t *proc)
{
    zc_log(ZC_LOG_WARNING, LOG_SOURCE, "%s (pid %d) not ready within %d ms: stopping it", proc->id,
           (int)proc->pid, self->ready_timeout_ms);
    sup_stop(self, proc, "timeout");
    if (proc->replacement && self->reload.fresh == proc) {
        char why[1024];
        snprintf(why, sizeof why, "%s was not ready within %d ms; kept %s", proc->id,
                 self->ready_timeout_ms, proc->slot->proc ? proc->slot->proc->id : "nothing");
        self->reload.fresh = NULL;
        sup_reload_abort(self, why);
    }
}

static void s_tick(zc_supervisor_t *self)
{
    int64_t now = zclock_mono();
    for (sup_proc_t *proc = self->procs, *next; proc; proc = next) {
        next = proc->next;
        if (proc->state == SUP_STARTING && self->ready_after_ms >= 0 &&
            now - proc->started >= self->ready_after_ms)
            sup_on_ready(self, proc);
        if (proc->state == SUP_STARTING && now >= proc->deadline) s_ready_timeout(self, proc);
        if (proc->state == SUP_STOPPING && !proc->killed && now >= proc->deadline) {
            zc_log(ZC_LOG_WARNING, LOG_SOURCE,
                   "%s (pid %d) still running %d ms after SIGTERM: SIGKILL", proc->id,
                   (int)proc->pid, self->stop_timeout_ms);
            proc->killed = 1;
            if (self->stopping) self->forced = 1;
            sup_kill(proc->pid, SIGKILL);
        }
    }
    sup_respawn_due(self, now);
    sup_redis_due(self, now);
}

static void s_earliest(int64_t *next, int64_t t)
{
    if (*next < 0 || t < *next) *next = t;
}

//  ms until the next timer, or -1.
static int s_next_timeout(zc_supervisor_t *self)
{
    int64_t now = zclock_mono(), next = -1;
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next) {
        if (proc->state == SUP_STARTING) {
            s_earliest(&next, proc->deadline);
            if (self->ready_after_ms >= 0) s_earliest(&next, proc->started + self->ready_after_ms);
        }
        if (proc->state == SUP_STOPPING && !proc->killed) s_earliest(&next, proc->deadline);
    }
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++)
            if (self->groups[g]->slots[s]->respawn_at)
                s_earliest(&next, self->groups[g]->slots[s]->respawn_at);
    int64_t redis_restart = sup_redis_next_restart(self);
    if (redis_restart) s_earliest(&next, redis_restart);
    if (self->admin) {
        int admin = zc_admin_timeout(self->admin);
        if (admin >= 0) s_earliest(&next, now + admin);
    }
    if (next < 0 || next - now > 1000) return 1000; //  a safety net: bounds any missed wakeup
    return next <= now ? 0 : (int)(next - now);
}

//  --------------------------------------------------------------------------
//  The loop

//  The master is done when no process is left and nothing will respawn.
static int s_all_finished(zc_supervisor_t *self)
{
    if (self->procs || self->reload.active) return 0;
    if (self->stopping) return 1;
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++)
            if (self->groups[g]->slots[s]->state == SUP_BACKOFF) return 0;
    return 1;
}

typedef struct {
    struct pollfd fds[SUP_MAX_WORKERS * 2 + 4];
    sup_proc_t *procs[SUP_MAX_WORKERS * 2 + 2]; //  whose ready socket fds[first + i] is
    int count, first;
} s_poll_set_t;

static void s_poll_set(zc_supervisor_t *self, s_poll_set_t *set)
{
    int n = 0;
    set->fds[n++] = (struct pollfd){s_signal_pipe[0], POLLIN, 0};
    if (self->admin) set->fds[n++] = (struct pollfd){zc_admin_fd(self->admin), POLLIN, 0};
    set->first = n;
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
        if (proc->ready_fd >= 0 && n - set->first < SUP_MAX_WORKERS * 2) {
            set->procs[n - set->first] = proc;
            set->fds[n++] = (struct pollfd){proc->ready_fd, POLLIN, 0};
        }
    set->count = n;
}

//  Reads the ready sockets that have input.
static void s_ready_input(zc_supervisor_t *self, s_poll_set_t *set)
{
    for (int i = set->first; i < set->count; i++) {
        if (!set->fds[i].revents) continue;
        //  The process may have been freed by an earlier iteration's exit.
        for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
            if (proc == set->procs[i - set->first] && proc->ready_fd == set->fds[i].fd) {
                sup_read_ready(self, proc);
                break;
            }
    }
}

static void s_loop(zc_supervisor_t *self)
{
    s_poll_set_t set;
    while (1) {
        sup_events_dispatch(self); //  may change the table: before deciding anything
        if (s_all_finished(self)) break;
        s_poll_set(self, &set);
        int rc = poll(set.fds, (nfds_t)set.count, s_next_timeout(self));
        if (rc < 0 && errno != EINTR) {
            zc_log(ZC_LOG_ERROR, LOG_SOURCE, "poll: %s", strerror(errno));
            break;
        }
        //  Ready lines first, so a line written just before a crash is seen
        //  before the exit.
        if (rc > 0) s_ready_input(self, &set);
        if (rc > 0 && (set.fds[0].revents & POLLIN))
            s_on_signals(self);
        else
            sup_reap(self); //  cheap, and robust to a lost wakeup
        if (self->admin) zc_admin_run(self->admin);
        s_tick(self);
    }
}

//  --------------------------------------------------------------------------
//  Shutdown

void sup_begin_shutdown(zc_supervisor_t *self)
{
    if (self->stopping) return;
    self->stopping = 1;
    json_t *event = sup_event_new(self, "master");
    json_object_set_new(event, "reason", json_string("stopping"));
    json_object_set_new(event, "workers", json_integer(sup_ready_count(self)));
    sup_emit(self, event);
    sup_reload_abort(self, "the master is shutting down");
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++) {
            sup_slot_t *slot = self->groups[g]->slots[s];
            if (slot->state == SUP_BACKOFF || (!slot->proc && slot->state <= SUP_STOPPING)) {
                slot->state = SUP_STOPPED;
                slot->respawn_at = 0;
            }
        }
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
        sup_stop(self, proc, "shutdown");
}

void zc_supervisor_shutdown(zc_supervisor_t *self)
{
    assert(self);
    sup_begin_shutdown(self);
}

//  After the loop: the embedded Redis last, the final event, the answers to
//  `shutdown all`, then the admin API, Redis and the runtime directory.
static void s_finish(zc_supervisor_t *self, int code)
{
    sup_redis_stop(self);
    self->finished = 1;
    if (self->running) {
        json_t *event = sup_event_new(self, "master");
        json_object_set_new(event, "reason", json_string("stopped"));
        json_object_set_new(event, "code", json_integer(code));
        sup_emit(self, event);
    }
    sup_events_dispatch(self);
    json_t *body = json_pack("{s:b, s:i}", "ok", code == 0, "code", code);
    for (int i = 0; i < self->shutdown_waiter_count; i++)
        sup_reply_json(self->shutdown_waiters[i], 200, json_incref(body));
    json_decref(body);
    self->shutdown_waiter_count = 0;
    zc_admin_destroy(&self->admin); //  flushes the replies just given
    sup_events_close(self);
    sup_keys_cleanup(self);
    sup_runtime_cleanup(self);
}

int zc_supervisor_run(zc_supervisor_t *self)
{
    assert(self);
    assert(!self->running && !self->finished);
    struct sigaction saved[SIGNAL_COUNT];
    if (s_signals_install(saved)) {
        sup_fail(self, ZC_LOG_ERROR, ZC_ERR_SYSTEM, "cannot create the signal pipe: %s",
                 strerror(errno));
        return 1;
    }
    int code = 1;
    if (s_start(self) == 0) {
        s_loop(self);
        if (!self->stopping) {
            //  Every worker finished or failed; nothing was asked to stop.
            sup_event_reason(self, "master", "stopping");
            self->stopping = 1;
        }
        code = self->exit_code ? self->exit_code : self->forced ? 2 : 0;
    }
    s_finish(self, code);
    s_signals_restore(saved);
    self->running = 0;
    return code;
}
