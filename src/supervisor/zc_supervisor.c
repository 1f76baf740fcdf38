/*  zc_supervisor — the master: worker table, crashes, reloads, shutdown.

    One thread, one poll loop. Signals arrive through a self-pipe (the
    handler writes the signal number; the loop does the work), each worker's
    ready socket and the admin daemon's epoll fd are in the same poll set,
    and every timer (ready timeouts, SIGKILL after the stop timeout, backoff
    respawns, Redis restarts) is a deadline in the table that bounds the
    poll timeout. Nothing else touches the table, so it needs no lock and
    the admin API reads a consistent picture.

    Why slots: a worker is a position to keep filled ("web #2"), and its
    processes come and go (crash, respawn, reload). The slot carries what
    outlives a process: the id number it keeps during a backoff, the crash
    count behind the backoff, the program it runs after an upgrade.

    Why the restart limit is a sliding window and not a count since start:
    a worker that crashes once a day must not be given up on after ten days,
    and a crash loop must be stopped within seconds whatever happened
    before. A group keeps the times of its restarts within the last window;
    the crash that would make more than max_restarts stops the group.

    Why reloads wait for the old worker's exit before the next step: the
    process count never exceeds workers + 1, and each step starts from a
    settled table. The old worker is stopped only after its replacement said
    it is ready, so the number of ready workers never drops during a reload
    unless something crashes meanwhile.
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"
#include "zc_node.h"
#include "zc_spawn.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define LOG_SOURCE "supervisor"

static int s_signal_pipe[2] = {-1, -1};

//  --------------------------------------------------------------------------
//  Small helpers

int64_t sup_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sup_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *sup_state_name(sup_state_t state)
{
    static const char *names[] = {"starting", "ready",  "stopping", "backoff",
                                  "done",     "failed", "stopped",  "removed"};
    return state <= SUP_REMOVED ? names[state] : "?";
}

static int s_valid_name(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > SUP_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("_.-", name[i])) return 0;
    return 1;
}

static char **s_argv_copy(char *const argv[])
{
    int n = 0;
    while (argv && argv[n])
        n++;
    char **copy = (char **)calloc((size_t)n + 1, sizeof(char *));
    assert(copy);
    for (int i = 0; i < n; i++)
        copy[i] = strdup(argv[i]);
    return copy;
}

static void s_argv_free(char ***argv_p)
{
    char **argv = *argv_p;
    if (!argv) return;
    for (int i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
    *argv_p = NULL;
}

//  The CPUs this process may run on, into cpus; returns the count.
static int s_allowed_cpus(int *cpus, int max)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
            if (CPU_ISSET(cpu, &set)) cpus[n++] = cpu;
    }
    if (n == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        for (int cpu = 0; cpu < (online > 0 ? online : 1) && n < max; cpu++)
            cpus[n++] = cpu;
    }
    return n;
}

//  Signals a worker's process group (its children too), or the process alone.
static void s_kill(pid_t pid, int sig)
{
    if (pid > 0 && kill(-pid, sig) < 0) kill(pid, sig);
}

//  --------------------------------------------------------------------------
//  Construction and settings

zc_supervisor_t *zc_supervisor_new(const char *name)
{
    if (!name) {
        name = getenv("ZC_CLUSTER");
        if (!name || !*name) name = "zcluster";
    }
    if (!s_valid_name(name)) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "invalid cluster name '%s' (1..%d of A-Za-z0-9_.-)", name,
               SUP_NAME_MAX);
        return NULL;
    }
    zc_supervisor_t *self = (zc_supervisor_t *)calloc(1, sizeof(zc_supervisor_t));
    assert(self);
    snprintf(self->name, sizeof self->name, "%s", name);
    self->max_restarts = 10;
    self->window_ms = 60000;
    self->backoff_ms = 100;
    self->backoff_max_ms = 10000;
    self->ready_timeout_ms = 30000;
    self->ready_after_ms = -1;
    self->stop_timeout_ms = 10000;
    self->lock_fd = -1;
    const char *url = getenv("ZC_REDIS_URL");
    if (url) snprintf(self->redis_url, sizeof self->redis_url, "%s", url);
    const char *key = getenv("ZC_ADMIN_KEY");
    if (key && *key) self->key = strdup(key);
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg && strlen(xdg) + strlen(name) + 10 < sizeof self->runtime_dir)
        snprintf(self->runtime_dir, sizeof self->runtime_dir, "%s/zcluster-%s", xdg, name);
    else
        snprintf(self->runtime_dir, sizeof self->runtime_dir, "/tmp/zcluster-%u-%s",
                 (unsigned)getuid(), name);
    return self;
}

static void s_proc_free(sup_proc_t *proc)
{
    if (proc->ready_fd >= 0) close(proc->ready_fd);
    s_argv_free(&proc->argv);
    free(proc);
}

void zc_supervisor_destroy(zc_supervisor_t **self_p)
{
    assert(self_p);
    zc_supervisor_t *self = *self_p;
    if (!self) return;
    while (self->procs) {
        sup_proc_t *next = self->procs->next;
        s_proc_free(self->procs);
        self->procs = next;
    }
    for (int g = 0; g < self->group_count; g++) {
        sup_group_t *group = self->groups[g];
        for (int s = 0; s < group->slot_count; s++) {
            s_argv_free(&group->slots[s]->argv);
            free(group->slots[s]);
        }
        free(group->slots);
        free(group->restart_times);
        s_argv_free(&group->argv);
        free(group);
    }
    free(self->groups);
    s_argv_free(&self->reload.argv);
    free(self->reload.queue);
    for (int i = 0; i < self->extra_count; i++)
        free(self->extra_args[i]);
    free(self->extra_args);
    for (int i = 0; i < self->command_count; i++)
        free(self->commands[i].help);
    free(self->commands);
    sup_events_close(self);
    zc_embedded_redis_destroy(&self->embedded);
    free(self->key);
    free(self);
    *self_p = NULL;
}

int zc_supervisor_add_group(zc_supervisor_t *self, const char *group, int count, char *const argv[])
{
    assert(self);
    if (!s_valid_name(group) || sup_find_group(self, group)) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "invalid or repeated group name '%s'", group ? group : "");
        return -1;
    }
    if (count < 0 || count > SUP_MAX_WORKERS || !argv || !argv[0] || !*argv[0]) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "group %s: needs a program and 0..%d workers", group,
               SUP_MAX_WORKERS);
        return -1;
    }
    sup_group_t *g = (sup_group_t *)calloc(1, sizeof(sup_group_t));
    assert(g);
    snprintf(g->name, sizeof g->name, "%s", group);
    g->argv = s_argv_copy(argv);
    g->count = count;
    self->groups = (sup_group_t **)realloc(self->groups,
                                           sizeof(sup_group_t *) * (size_t)(self->group_count + 1));
    assert(self->groups);
    self->groups[self->group_count++] = g;
    return 0;
}

int zc_supervisor_add_arg(zc_supervisor_t *self, const char *arg)
{
    assert(self && arg);
    self->extra_args =
        (char **)realloc(self->extra_args, sizeof(char *) * (size_t)(self->extra_count + 1));
    assert(self->extra_args);
    self->extra_args[self->extra_count++] = strdup(arg);
    return 0;
}

void zc_supervisor_set_redis(zc_supervisor_t *self, const char *url)
{
    assert(self);
    snprintf(self->redis_url, sizeof self->redis_url, "%s", url ? url : "");
}

void zc_supervisor_set_runtime_dir(zc_supervisor_t *self, const char *dir)
{
    assert(self && dir);
    snprintf(self->runtime_dir, sizeof self->runtime_dir, "%s", dir);
}

void zc_supervisor_set_key(zc_supervisor_t *self, const char *key)
{
    assert(self);
    free(self->key);
    self->key = key && *key ? strdup(key) : NULL;
}

void zc_supervisor_set_admin_port(zc_supervisor_t *self, int port)
{
    assert(self);
    self->admin_port = port;
}

int zc_supervisor_set_cpus(zc_supervisor_t *self, const char *list)
{
    assert(self && list);
    if (strcmp(list, "auto") == 0) {
        self->cpu_count = s_allowed_cpus(self->cpus, SUP_MAX_CPUS);
        return 0;
    }
    int n = 0;
    const char *p = list;
    while (*p) {
        char *end;
        long first = strtol(p, &end, 10), last = first;
        if (end == p || first < 0 || first >= CPU_SETSIZE) return -1;
        p = end;
        if (*p == '-') {
            last = strtol(p + 1, &end, 10);
            if (end == p + 1 || last < first || last >= CPU_SETSIZE) return -1;
            p = end;
        }
        for (long cpu = first; cpu <= last; cpu++) {
            if (n == SUP_MAX_CPUS) return -1;
            self->cpus[n++] = (int)cpu;
        }
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    if (n == 0) return -1;
    self->cpu_count = n;
    return 0;
}

void zc_supervisor_set_restart_policy(zc_supervisor_t *self, zc_restart_policy_t policy)
{
    assert(self);
    self->policy = policy;
}

void zc_supervisor_set_restart_limit(zc_supervisor_t *self, int max_restarts, int window_ms)
{
    assert(self);
    self->max_restarts = max_restarts < 0 ? 0 : max_restarts;
    self->window_ms = window_ms < 1 ? 1 : window_ms;
}

void zc_supervisor_set_backoff(zc_supervisor_t *self, int initial_ms, int max_ms)
{
    assert(self);
    self->backoff_ms = initial_ms < 0 ? 0 : initial_ms;
    self->backoff_max_ms = max_ms < self->backoff_ms ? self->backoff_ms : max_ms;
}

void zc_supervisor_set_ready_timeout(zc_supervisor_t *self, int ms)
{
    assert(self);
    self->ready_timeout_ms = ms < 1 ? 1 : ms;
}

void zc_supervisor_set_ready_after(zc_supervisor_t *self, int ms)
{
    assert(self);
    self->ready_after_ms = ms;
}

void zc_supervisor_set_stop_timeout(zc_supervisor_t *self, int ms)
{
    assert(self);
    self->stop_timeout_ms = ms < 0 ? 0 : ms;
}

void zc_supervisor_on_event(zc_supervisor_t *self, zc_supervisor_event_fn *fn, void *arg)
{
    assert(self);
    self->event_fn = fn;
    self->event_arg = arg;
}

int zc_supervisor_command(zc_supervisor_t *self, const char *name, const char *help,
                          zc_supervisor_command_fn *fn, void *arg)
{
    assert(self && fn);
    static const char *builtin[] = {"workers", "health",   "help",    "events",
                                    "restart", "shutdown", "upgrade", "exit"};
    if (!s_valid_name(name)) return -1;
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(name, builtin[i]) == 0) return -1;
    for (int i = 0; i < self->command_count; i++)
        if (strcmp(self->commands[i].name, name) == 0) return -1;
    self->commands = (sup_command_t *)realloc(
        self->commands, sizeof(sup_command_t) * (size_t)(self->command_count + 1));
    assert(self->commands);
    sup_command_t *command = &self->commands[self->command_count++];
    snprintf(command->name, sizeof command->name, "%s", name);
    command->help = strdup(help ? help : "");
    command->fn = fn;
    command->arg = arg;
    return 0;
}

const char *zc_supervisor_redis_url(zc_supervisor_t *self)
{
    assert(self);
    return self->running ? self->redis_url : "";
}

const char *zc_supervisor_runtime_dir(zc_supervisor_t *self)
{
    assert(self);
    return self->runtime_dir;
}

int zc_supervisor_admin_port(zc_supervisor_t *self)
{
    assert(self);
    return self->admin ? zc_admin_port(self->admin) : 0;
}

//  --------------------------------------------------------------------------
//  Looking things up

sup_group_t *sup_find_group(zc_supervisor_t *self, const char *name)
{
    for (int g = 0; g < self->group_count; g++)
        if (strcmp(self->groups[g]->name, name) == 0) return self->groups[g];
    return NULL;
}

sup_proc_t *sup_find_proc(zc_supervisor_t *self, const char *id)
{
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
        if (strcmp(proc->id, id) == 0) return proc;
    return NULL;
}

//  The slot whose current process has this id, or that keeps it in backoff.
sup_slot_t *sup_find_slot(zc_supervisor_t *self, const char *id)
{
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++) {
            sup_slot_t *slot = self->groups[g]->slots[s];
            char slot_id[SUP_ID_MAX];
            if (slot->proc && strcmp(slot->proc->id, id) == 0) return slot;
            zc_node_worker_id(slot_id, sizeof slot_id, self->name, slot->number);
            if (!slot->proc && slot->state == SUP_BACKOFF && strcmp(slot_id, id) == 0) return slot;
        }
    return NULL;
}

int sup_ready_count(zc_supervisor_t *self)
{
    int n = 0;
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
        n += proc->state == SUP_READY;
    return n;
}

//  The slots that should have a worker now.
int sup_expected_count(zc_supervisor_t *self)
{
    int n = 0;
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++) {
            sup_state_t state = self->groups[g]->slots[s]->state;
            n += state != SUP_DONE && state != SUP_FAILED && state != SUP_REMOVED &&
                 state != SUP_STOPPED;
        }
    return n;
}

//  Lowest number held neither by a live process nor by a slot in backoff.
static int s_free_number(zc_supervisor_t *self)
{
    for (int n = 1;; n++) {
        int taken = 0;
        for (sup_proc_t *proc = self->procs; proc && !taken; proc = proc->next)
            taken = proc->number == n;
        for (int g = 0; g < self->group_count && !taken; g++)
            for (int s = 0; s < self->groups[g]->slot_count && !taken; s++) {
                sup_slot_t *slot = self->groups[g]->slots[s];
                taken = !slot->proc && slot->state == SUP_BACKOFF && slot->number == n;
            }
        if (!taken) return n;
    }
}

static void s_track_min_ready(zc_supervisor_t *self)
{
    if (self->reload.active) {
        int ready = sup_ready_count(self);
        if (ready < self->reload.min_ready) self->reload.min_ready = ready;
    }
}

//  --------------------------------------------------------------------------
//  Spawning

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
    char line[1024];
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

//  Starts a process for slot running argv (plus the extra arguments).
//  Returns it, or NULL with a reason in err.
static sup_proc_t *s_spawn(zc_supervisor_t *self, sup_slot_t *slot, char *const argv[],
                           const char *reason, int replacement, char *err, size_t errlen)
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
                       : s_free_number(self);
    zc_node_worker_id(proc->id, sizeof proc->id, self->name, proc->number);
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

    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair)) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        s_proc_free(proc);
        return NULL;
    }
    fcntl(pair[0], F_SETFL, O_NONBLOCK);
    char **env = s_worker_env(self, proc, slot);
    zc_spawn_t spawn = {proc->argv, env, pair[1], proc->cpu, 0};
    proc->pid = zc_spawn(&spawn);
    int spawn_errno = errno;
    for (int i = 0; env[i]; i++)
        free(env[i]);
    free(env);
    close(pair[1]);
    if (proc->pid < 0) {
        snprintf(err, errlen, "cannot execute %s: %s", proc->argv[0], strerror(spawn_errno));
        close(pair[0]);
        s_proc_free(proc);
        return NULL;
    }
    proc->ready_fd = pair[0];
    proc->state = SUP_STARTING;
    proc->started = sup_now();
    proc->started_wall = sup_wall();
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
static void s_group_fail(zc_supervisor_t *self, sup_group_t *group, const char *why);

static int s_spawn_slot(zc_supervisor_t *self, sup_slot_t *slot, const char *reason)
{
    char err[512];
    sup_proc_t *proc = s_spawn(self, slot, slot->argv, reason, 0, err, sizeof err);
    if (!proc) {
        //  Retrying cannot make a missing program appear: give up on the group.
        s_group_fail(self, slot->group, err);
        return -1;
    }
    slot->proc = proc;
    slot->number = proc->number;
    slot->state = SUP_STARTING;
    slot->respawn_at = 0;
    return 0;
}

//  Sends SIGTERM; SIGKILL follows after the stop timeout.
static void s_stop(zc_supervisor_t *self, sup_proc_t *proc, const char *reason)
{
    if (proc->state == SUP_STOPPING) return;
    proc->stop_reason = reason;
    proc->state = SUP_STOPPING;
    proc->deadline = sup_now() + self->stop_timeout_ms;
    s_kill(proc->pid, SIGTERM);
    s_track_min_ready(self);
}

//  --------------------------------------------------------------------------
//  Readiness and status lines from workers

static void s_reload_takeover(zc_supervisor_t *self, sup_proc_t *fresh);

static void s_on_ready(zc_supervisor_t *self, sup_proc_t *proc)
{
    if (proc->state != SUP_STARTING) return;
    proc->state = SUP_READY;
    proc->ready_at = sup_now();
    if (!proc->replacement && proc->slot->proc == proc) proc->slot->state = SUP_READY;
    json_t *event = sup_event_new(self, "ready");
    sup_event_worker(event, proc);
    json_object_set_new(event, "after_ms", json_integer(proc->ready_at - proc->started));
    sup_emit(self, event);
    if (proc->replacement) s_reload_takeover(self, proc);
}

static void s_on_line(zc_supervisor_t *self, sup_proc_t *proc, char *line)
{
    if (strcmp(line, "ready") == 0)
        s_on_ready(self, proc);
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
static void s_read_ready(zc_supervisor_t *self, sup_proc_t *proc)
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
//  Crashes, the restart window, group failure

static void s_reload_abort(zc_supervisor_t *self, const char *why);

static void s_group_fail(zc_supervisor_t *self, sup_group_t *group, const char *why)
{
    if (group->failed) return;
    group->failed = 1;
    if (self->reload.active && (!self->reload.group || self->reload.group == group ||
                                (self->reload.slot && self->reload.slot->group == group)))
        s_reload_abort(self, "a group was stopped by its restart limit");
    for (int s = 0; s < group->slot_count; s++) {
        sup_slot_t *slot = group->slots[s];
        if (slot->state == SUP_REMOVED || slot->state == SUP_DONE) continue;
        slot->state = SUP_FAILED;
        slot->respawn_at = 0;
        if (slot->proc) s_stop(self, slot->proc, "shutdown");
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

//  A slot's process exited unexpectedly: respawn it after a backoff, or
//  stop the group if that would exceed its restart limit.
static void s_on_crash(zc_supervisor_t *self, sup_slot_t *slot, int64_t uptime)
{
    sup_group_t *group = slot->group;
    int64_t now = sup_now();
    int kept = 0;
    for (int i = 0; i < group->restart_count; i++)
        if (now - group->restart_times[i] < self->window_ms)
            group->restart_times[kept++] = group->restart_times[i];
    group->restart_count = kept;
    if (group->restart_count >= self->max_restarts) {
        char why[256];
        snprintf(why, sizeof why,
                 "restart limit reached: crashed again after %d restart(s) in the last %d ms "
                 "(at most %d allowed)",
                 group->restart_count, self->window_ms, self->max_restarts);
        slot->state = SUP_FAILED;
        s_group_fail(self, group, why);
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

//  --------------------------------------------------------------------------
//  Rolling reload, upgrade and single restart

static void s_reload_reply(zc_supervisor_t *self, int status, json_t *body)
{
    for (int i = 0; i < self->reload.waiter_count; i++)
        sup_reply_json(self->reload.waiters[i], status, json_incref(body));
    self->reload.waiter_count = 0;
    json_decref(body);
}

static void s_reload_end(zc_supervisor_t *self, const char *result, const char *why)
{
    sup_reload_t *r = &self->reload;
    json_t *event = sup_event_new(self, "reload");
    json_object_set_new(event, "reason", json_string(result));
    json_object_set_new(event, "kind", json_string(r->kind));
    if (r->group) json_object_set_new(event, "group", json_string(r->group->name));
    json_object_set_new(event, "replaced", json_integer(r->replaced));
    json_object_set_new(event, "of", json_integer(r->queue_len));
    json_object_set_new(event, "ms", json_integer(sup_now() - r->started));
    json_object_set_new(event, "min_ready", json_integer(r->min_ready));
    json_object_set_new(event, "expected", json_integer(r->expected));
    if (why) json_object_set_new(event, "text", json_string(why));
    char *text = json_dumps(event, JSON_COMPACT);
    snprintf(self->last_reload, sizeof self->last_reload, "%s", text ? text : "null");
    free(text);
    json_t *body = json_pack(
        "{s:b, s:s, s:s, s:i, s:i, s:I, s:i, s:i}", "ok", strcmp(result, "done") == 0, "result",
        result, "kind", r->kind, "replaced", r->replaced, "of", r->queue_len, "ms",
        (json_int_t)(sup_now() - r->started), "min_ready", r->min_ready, "expected", r->expected);
    if (why) json_object_set_new(body, "error", json_string(why));
    sup_emit(self, event);
    s_reload_reply(self, strcmp(result, "done") == 0 ? 200 : 409, body);
    r->active = 0;
    r->fresh = r->old = NULL;
    r->slot = NULL;
    s_argv_free(&r->argv);
    free(r->queue);
    r->queue = NULL;
}

static void s_reload_abort(zc_supervisor_t *self, const char *why)
{
    sup_reload_t *r = &self->reload;
    if (!r->active) return;
    if (r->fresh) {
        //  The replacement is dropped: it never served.
        if (r->fresh->state != SUP_STOPPING) s_stop(self, r->fresh, "aborted");
        r->fresh = NULL;
    }
    s_reload_end(self, "aborted", why);
}

static void s_reload_next(zc_supervisor_t *self)
{
    sup_reload_t *r = &self->reload;
    while (r->active && !r->fresh && !r->old) {
        if (r->next == r->queue_len) {
            if (!strcmp(r->kind, "upgrade")) {
                s_argv_free(&r->group->argv);
                r->group->argv = r->argv;
                r->argv = NULL;
            }
            s_reload_end(self, "done", NULL);
            return;
        }
        sup_slot_t *slot = r->queue[r->next++];
        if (slot->state == SUP_FAILED || slot->state == SUP_REMOVED || slot->state == SUP_DONE ||
            slot->group->failed)
            continue;
        if (slot->proc && slot->proc->stop_reason && !strcmp(slot->proc->stop_reason, "shutdown"))
            continue; //  being stopped for good (`shutdown ID`): nothing to replace
        char *const *argv = r->argv ? r->argv : slot->group->argv;
        if (!strcmp(r->kind, "restart")) argv = slot->argv;
        char err[512];
        r->slot = slot;
        r->fresh = s_spawn(self, slot, argv, r->kind, 1, err, sizeof err);
        if (!r->fresh) s_reload_abort(self, err);
    }
}

//  The replacement is ready: it takes the slot, the old process is stopped.
static void s_reload_takeover(zc_supervisor_t *self, sup_proc_t *fresh)
{
    sup_reload_t *r = &self->reload;
    assert(r->active && r->fresh == fresh);
    sup_slot_t *slot = fresh->slot;
    sup_proc_t *old = slot->proc;
    fresh->replacement = 0;
    slot->proc = fresh;
    slot->number = fresh->number;
    slot->state = SUP_READY;
    slot->respawn_at = 0;
    if (strcmp(r->kind, "restart") != 0) {
        s_argv_free(&slot->argv);
        slot->argv = s_argv_copy(r->argv ? r->argv : slot->group->argv);
    }
    r->fresh = NULL;
    r->replaced++;
    if (old) {
        r->old = old;
        s_stop(self, old, r->kind);
    } else
        s_reload_next(self);
}

int sup_reload_begin(zc_supervisor_t *self, const char *kind, sup_group_t *group, sup_slot_t *only,
                     char *const argv[], zc_admin_request_t *waiter, char *err, size_t errlen)
{
    sup_reload_t *r = &self->reload;
    if (self->stopping) {
        snprintf(err, errlen, "the master is shutting down");
        return -1;
    }
    if (r->active) {
        snprintf(err, errlen, "a %s is already running", r->kind);
        return -1;
    }
    r->queue_len = r->next = r->replaced = 0;
    r->waiter_count = 0;
    free(r->queue);
    int slots = 0;
    for (int g = 0; g < self->group_count; g++)
        slots += self->groups[g]->slot_count;
    r->queue = (sup_slot_t **)calloc((size_t)slots + 1, sizeof(sup_slot_t *));
    assert(r->queue);
    for (int g = 0; g < self->group_count; g++) {
        sup_group_t *gr = self->groups[g];
        if ((group && gr != group) || gr->failed) continue;
        for (int s = 0; s < gr->slot_count; s++) {
            sup_slot_t *slot = gr->slots[s];
            if ((!only || slot == only) && slot->state != SUP_DONE && slot->state != SUP_FAILED &&
                slot->state != SUP_REMOVED && slot->state != SUP_STOPPED)
                r->queue[r->queue_len++] = slot;
        }
    }
    if (r->queue_len == 0) {
        snprintf(err, errlen, "no worker to %s", kind);
        return -1;
    }
    r->active = 1;
    r->kind = kind;
    r->group = group;
    r->argv = argv ? s_argv_copy(argv) : NULL;
    r->started = sup_now();
    r->expected = sup_expected_count(self);
    r->min_ready = sup_ready_count(self);
    r->slot = NULL;
    r->fresh = r->old = NULL;
    if (waiter) r->waiters[r->waiter_count++] = waiter;
    json_t *event = sup_event_new(self, "reload");
    json_object_set_new(event, "reason", json_string("started"));
    json_object_set_new(event, "kind", json_string(kind));
    if (group) json_object_set_new(event, "group", json_string(group->name));
    if (only && only->proc) json_object_set_new(event, "worker", json_string(only->proc->id));
    json_object_set_new(event, "of", json_integer(r->queue_len));
    sup_emit(self, event);
    s_reload_next(self);
    return 0;
}

int zc_supervisor_reload(zc_supervisor_t *self)
{
    assert(self);
    char err[256];
    if (sup_reload_begin(self, "reload", NULL, NULL, NULL, NULL, err, sizeof err)) {
        zc_log(ZC_LOG_WARNING, LOG_SOURCE, "reload refused: %s", err);
        return -1;
    }
    return 0;
}

int zc_supervisor_upgrade(zc_supervisor_t *self, const char *group, char *const argv[])
{
    assert(self);
    sup_group_t *g = group                    ? sup_find_group(self, group)
                     : self->group_count == 1 ? self->groups[0]
                                              : NULL;
    char err[256];
    if (!g || !argv || !argv[0]) {
        zc_log(ZC_LOG_WARNING, LOG_SOURCE, "upgrade refused: no such group or no program");
        return -1;
    }
    if (sup_reload_begin(self, "upgrade", g, NULL, argv, NULL, err, sizeof err)) {
        zc_log(ZC_LOG_WARNING, LOG_SOURCE, "upgrade refused: %s", err);
        return -1;
    }
    return 0;
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

static void s_on_exit(zc_supervisor_t *self, sup_proc_t *proc, int status)
{
    s_read_ready(self, proc); //  a ready line written just before exiting counts
    int64_t now = sup_now();
    const char *reason = s_exit_reason(self, proc, status);
    json_t *event = sup_event_new(self, "exit");
    sup_event_worker(event, proc);
    json_object_set_new(event, "reason", json_string(reason));
    json_object_set_new(event, "code", json_integer(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    json_object_set_new(event, "signal", json_integer(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    json_object_set_new(event, "uptime_ms", json_integer(now - proc->started));
    if (proc->state == SUP_STARTING && !proc->stop_reason)
        json_object_set_new(event, "text", json_string("exited before it was ready"));
    s_unlink_proc(self, proc);
    proc->pid = 0;
    sup_emit(self, event);

    sup_slot_t *slot = proc->slot;
    sup_reload_t *r = &self->reload;
    if (proc->stop_waiter) {
        sup_reply_json(proc->stop_waiter, 200,
                       json_pack("{s:b, s:s, s:i, s:i}", "ok", 1, "worker", proc->id, "code",
                                 WIFEXITED(status) ? WEXITSTATUS(status) : -1, "killed",
                                 proc->killed));
        proc->stop_waiter = NULL;
    }
    if (proc->replacement) {
        if (r->active && r->fresh == proc) {
            char why[1024];
            if (WIFEXITED(status))
                snprintf(why, sizeof why, "%s exited with code %d before it was ready; kept %s",
                         proc->id, WEXITSTATUS(status), slot->proc ? slot->proc->id : "nothing");
            else
                snprintf(why, sizeof why, "%s was killed by signal %d before it was ready; kept %s",
                         proc->id, WTERMSIG(status), slot->proc ? slot->proc->id : "nothing");
            r->fresh = NULL;
            s_reload_abort(self, why);
        }
    } else if (slot->proc == proc) {
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
            s_on_crash(self, slot, now - proc->started);
    }
    if (r->active && r->old == proc) {
        r->old = NULL;
        s_reload_next(self);
    }
    s_track_min_ready(self);
    s_proc_free(proc);
}

static void s_on_redis_exit(zc_supervisor_t *self, int status);

static void s_reap(zc_supervisor_t *self)
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
    int status = 0;
    if (self->embedded && zc_embedded_redis_reap(self->embedded, &status))
        s_on_redis_exit(self, status);
}

//  --------------------------------------------------------------------------
//  The embedded Redis

static void s_on_redis_exit(zc_supervisor_t *self, int status)
{
    json_t *event = sup_event_new(self, "redis");
    json_object_set_new(event, "reason", json_string("exited"));
    json_object_set_new(event, "code", json_integer(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    json_object_set_new(event, "signal", json_integer(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    sup_emit(self, event);
    if (self->stopping) return;
    int64_t now = sup_now();
    int kept = 0;
    for (int i = 0; i < self->redis_restart_count; i++)
        if (now - self->redis_restarts[i] < 60000)
            self->redis_restarts[kept++] = self->redis_restarts[i];
    self->redis_restart_count = kept;
    if (kept >= 5) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE,
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

static void s_redis_restart(zc_supervisor_t *self)
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
        self->redis_restart_at = sup_now() + 1000;
    }
    sup_emit(self, event);
}

//  --------------------------------------------------------------------------
//  Shutdown

void sup_kill_all(zc_supervisor_t *self)
{
    self->forced = 1;
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next) {
        if (proc->state != SUP_STOPPING) s_stop(self, proc, "shutdown");
        if (!proc->killed) {
            proc->killed = 1;
            s_kill(proc->pid, SIGKILL);
        }
    }
}

void sup_begin_shutdown(zc_supervisor_t *self)
{
    if (self->stopping) return;
    self->stopping = 1;
    json_t *event = sup_event_new(self, "master");
    json_object_set_new(event, "reason", json_string("stopping"));
    json_object_set_new(event, "workers", json_integer(sup_ready_count(self)));
    sup_emit(self, event);
    s_reload_abort(self, "the master is shutting down");
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++) {
            sup_slot_t *slot = self->groups[g]->slots[s];
            if (slot->state == SUP_BACKOFF || (!slot->proc && slot->state <= SUP_STOPPING)) {
                slot->state = SUP_STOPPED;
                slot->respawn_at = 0;
            }
        }
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
        s_stop(self, proc, "shutdown");
}

void zc_supervisor_shutdown(zc_supervisor_t *self)
{
    assert(self);
    sup_begin_shutdown(self);
}

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
    s_stop(self, slot->proc, "shutdown");
    return 0;
}

int zc_supervisor_signal(zc_supervisor_t *self, const char *id, int sig)
{
    assert(self && id);
    sup_proc_t *proc = sup_find_proc(self, id);
    if (!proc || proc->pid <= 0) return -1;
    return kill(proc->pid, sig);
}

char *zc_supervisor_workers(zc_supervisor_t *self)
{
    assert(self);
    json_t *workers = sup_workers_json(self);
    char *text = json_dumps(workers, JSON_COMPACT);
    json_decref(workers);
    return text;
}

//  --------------------------------------------------------------------------
//  Timers

static void s_tick(zc_supervisor_t *self)
{
    int64_t now = sup_now();
    for (sup_proc_t *proc = self->procs, *next; proc; proc = next) {
        next = proc->next;
        if (proc->state == SUP_STARTING && self->ready_after_ms >= 0 &&
            now - proc->started >= self->ready_after_ms)
            s_on_ready(self, proc);
        if (proc->state == SUP_STARTING && now >= proc->deadline) {
            zc_log(ZC_LOG_WARNING, LOG_SOURCE, "%s (pid %d) not ready within %d ms: stopping it",
                   proc->id, (int)proc->pid, self->ready_timeout_ms);
            if (proc->replacement && self->reload.fresh == proc) {
                char why[1024];
                snprintf(why, sizeof why, "%s was not ready within %d ms; kept %s", proc->id,
                         self->ready_timeout_ms,
                         proc->slot->proc ? proc->slot->proc->id : "nothing");
                s_stop(self, proc, "timeout");
                self->reload.fresh = NULL;
                s_reload_abort(self, why);
            } else
                s_stop(self, proc, "timeout");
        }
        if (proc->state == SUP_STOPPING && !proc->killed && now >= proc->deadline) {
            zc_log(ZC_LOG_WARNING, LOG_SOURCE,
                   "%s (pid %d) still running %d ms after SIGTERM: SIGKILL", proc->id,
                   (int)proc->pid, self->stop_timeout_ms);
            proc->killed = 1;
            if (self->stopping) self->forced = 1;
            s_kill(proc->pid, SIGKILL);
        }
    }
    for (int g = 0; g < self->group_count && !self->stopping; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++) {
            sup_slot_t *slot = self->groups[g]->slots[s];
            if (slot->state == SUP_BACKOFF && !slot->proc && slot->respawn_at &&
                now >= slot->respawn_at && !self->groups[g]->failed)
                s_spawn_slot(self, slot, "crash");
        }
    if (self->embedded && self->redis_restart_at && now >= self->redis_restart_at &&
        !self->stopping)
        s_redis_restart(self);
}

//  ms until the next timer, or -1.
static int s_next_timeout(zc_supervisor_t *self)
{
    int64_t now = sup_now(), next = -1;
#define CONSIDER(t)                                                                                \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (next < 0 || t_ < next) next = t_;                                                      \
    } while (0)
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next) {
        if (proc->state == SUP_STARTING) {
            CONSIDER(proc->deadline);
            if (self->ready_after_ms >= 0) CONSIDER(proc->started + self->ready_after_ms);
        }
        if (proc->state == SUP_STOPPING && !proc->killed) CONSIDER(proc->deadline);
    }
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++)
            if (self->groups[g]->slots[s]->respawn_at)
                CONSIDER(self->groups[g]->slots[s]->respawn_at);
    if (self->redis_restart_at) CONSIDER(self->redis_restart_at);
#undef CONSIDER
    if (next < 0) return -1;
    return next <= now ? 0 : (int)(next - now);
}

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

//  --------------------------------------------------------------------------
//  Runtime directory, key, signals

static int s_write_file(const char *dir, const char *name, const char *text)
{
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void s_unlink_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

//  Creates the runtime directory (0700, ours) and takes its lock.
static int s_runtime_prepare(zc_supervisor_t *self)
{
    const char *dir = self->runtime_dir;
    if (mkdir(dir, 0700) && errno != EEXIST) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "cannot create runtime dir %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) || !S_ISDIR(st.st_mode) || st.st_uid != getuid()) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "runtime dir %s is not a directory of ours", dir);
        return -1;
    }
    if ((st.st_mode & 077) && chmod(dir, 0700)) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "cannot make %s private: %s", dir, strerror(errno));
        return -1;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/master.lock", dir);
    self->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0 || flock(self->lock_fd, LOCK_EX | LOCK_NB)) {
        char pid[32] = "?";
        if (self->lock_fd >= 0) {
            ssize_t n = pread(self->lock_fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = 0;
            pid[strcspn(pid, "\n")] = 0;
            close(self->lock_fd);
        }
        self->lock_fd = -1;
        zc_log(ZC_LOG_ERROR, LOG_SOURCE,
               "another master (pid %s) runs with runtime dir %s; give another --runtime-dir "
               "or --name",
               pid, dir);
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(self->lock_fd, 0) == 0 && pwrite(self->lock_fd, pid, (size_t)len, 0) < 0)
        zc_log(ZC_LOG_WARNING, LOG_SOURCE, "cannot write %s", path);
    s_unlink_file(dir, "admin.json");
    return 0;
}

static void s_runtime_cleanup(zc_supervisor_t *self)
{
    if (self->lock_fd < 0) return; //  the directory is another master's, or was never ours
    s_unlink_file(self->runtime_dir, "admin.json");
    if (self->key_generated) s_unlink_file(self->runtime_dir, "admin.key");
    if (self->lock_fd >= 0) {
        s_unlink_file(self->runtime_dir, "master.lock");
        close(self->lock_fd);
        self->lock_fd = -1;
    }
    rmdir(self->runtime_dir); //  only if empty
}

static int s_key_prepare(zc_supervisor_t *self)
{
    if (self->key) {
        s_unlink_file(self->runtime_dir, "admin.key"); //  a stale generated key would mislead
        return 0;
    }
    unsigned char bytes[24];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "getrandom: %s", strerror(errno));
        return -1;
    }
    char hex[sizeof bytes * 2 + 2];
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf(hex + 2 * i, 3, "%02x", bytes[i]);
    self->key = strdup(hex);
    self->key_generated = 1;
    strcat(hex, "\n");
    if (s_write_file(self->runtime_dir, "admin.key", hex)) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "cannot write %s/admin.key", self->runtime_dir);
        return -1;
    }
    return 0;
}

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

//  --------------------------------------------------------------------------
//  Start and the loop

static int s_start(zc_supervisor_t *self)
{
    if (self->group_count == 0) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "no worker group to run");
        return -1;
    }
    int cpus[SUP_MAX_CPUS], total = 0;
    int cores = s_allowed_cpus(cpus, SUP_MAX_CPUS);
    for (int g = 0; g < self->group_count; g++)
        total += self->groups[g]->count ? self->groups[g]->count : cores;
    if (total > SUP_MAX_WORKERS) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "%d workers in all: at most %d", total, SUP_MAX_WORKERS);
        return -1;
    }
    if (s_runtime_prepare(self) || s_key_prepare(self)) return -1;
    char err[256];
    if (!*self->redis_url) {
        self->embedded = zc_embedded_redis_new(self->runtime_dir);
        if (!self->embedded || zc_embedded_redis_start(self->embedded, 5000, err, sizeof err)) {
            zc_log(ZC_LOG_ERROR, LOG_SOURCE, "embedded Redis: %s",
                   self->embedded ? err : "runtime dir path too long for a unix socket");
            return -1;
        }
        snprintf(self->redis_url, sizeof self->redis_url, "%s",
                 zc_embedded_redis_url(self->embedded));
    }
    if (self->admin_port >= 0) {
        self->admin =
            zc_admin_new(self->admin_port, self->key, sup_admin_handle, self, err, sizeof err);
        if (!self->admin) {
            zc_log(ZC_LOG_ERROR, LOG_SOURCE, "admin API: %s", err);
            return -1;
        }
        json_t *info = json_pack("{s:i, s:i, s:s, s:s, s:I}", "pid", (int)getpid(), "port",
                                 zc_admin_port(self->admin), "cluster", self->name, "redis",
                                 self->redis_url, "started", (json_int_t)sup_wall());
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", zc_admin_port(self->admin));
        json_object_set_new(info, "url", json_string(url));
        char *text = json_dumps(info, JSON_INDENT(2));
        json_decref(info);
        int rc = s_write_file(self->runtime_dir, "admin.json", text);
        free(text);
        if (rc) {
            zc_log(ZC_LOG_ERROR, LOG_SOURCE, "cannot write %s/admin.json", self->runtime_dir);
            return -1;
        }
    }
    self->running = 1;
    self->started = sup_now();
    json_t *event = sup_event_new(self, "master");
    json_object_set_new(event, "reason", json_string("started"));
    json_object_set_new(event, "pid", json_integer(getpid()));
    json_object_set_new(event, "redis", json_string(self->redis_url));
    json_object_set_new(event, "embedded_redis", json_boolean(self->embedded != NULL));
    json_object_set_new(event, "runtime_dir", json_string(self->runtime_dir));
    json_object_set_new(event, "admin_port",
                        json_integer(self->admin ? zc_admin_port(self->admin) : 0));
    sup_emit(self, event);

    for (int g = 0; g < self->group_count; g++) {
        sup_group_t *group = self->groups[g];
        int count = group->count ? group->count : cores;
        group->slots = (sup_slot_t **)calloc((size_t)count + 1, sizeof(sup_slot_t *));
        assert(group->slots);
        for (int i = 0; i < count; i++) {
            sup_slot_t *slot = (sup_slot_t *)calloc(1, sizeof(sup_slot_t));
            assert(slot);
            slot->group = group;
            slot->argv = s_argv_copy(group->argv);
            slot->state = SUP_STARTING;
            group->slots[group->slot_count++] = slot;
        }
    }
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count && !self->groups[g]->failed; s++)
            s_spawn_slot(self, self->groups[g]->slots[s], "start");
    return 0;
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
    if (chld) s_reap(self);
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

static void s_loop(zc_supervisor_t *self)
{
    sup_proc_t *polled[SUP_MAX_WORKERS * 2 + 2];
    struct pollfd fds[SUP_MAX_WORKERS * 2 + 4];
    while (1) {
        sup_events_dispatch(self); //  may change the table: before deciding anything
        if (s_all_finished(self)) break;
        int n = 0;
        fds[n++] = (struct pollfd){s_signal_pipe[0], POLLIN, 0};
        if (self->admin) fds[n++] = (struct pollfd){zc_admin_fd(self->admin), POLLIN, 0};
        int first_proc = n;
        for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
            if (proc->ready_fd >= 0 && n - first_proc < SUP_MAX_WORKERS * 2) {
                polled[n - first_proc] = proc;
                fds[n++] = (struct pollfd){proc->ready_fd, POLLIN, 0};
            }
        int timeout = s_next_timeout(self);
        if (self->admin) {
            int admin_timeout = zc_admin_timeout(self->admin);
            if (admin_timeout >= 0 && (timeout < 0 || admin_timeout < timeout))
                timeout = admin_timeout;
        }
        if (timeout < 0 || timeout > 1000)
            timeout = 1000; //  a safety net: also bounds any missed wakeup
        int rc = poll(fds, (nfds_t)n, timeout);
        if (rc < 0 && errno != EINTR) {
            zc_log(ZC_LOG_ERROR, LOG_SOURCE, "poll: %s", strerror(errno));
            break;
        }
        //  Ready lines first, so a line written just before a crash is seen
        //  before the exit.
        for (int i = first_proc; i < n && rc > 0; i++)
            if (fds[i].revents) {
                //  The process may have been freed by an earlier iteration's exit.
                for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
                    if (proc == polled[i - first_proc] && proc->ready_fd == fds[i].fd) {
                        s_read_ready(self, proc);
                        break;
                    }
            }
        if (rc > 0 && (fds[0].revents & POLLIN))
            s_on_signals(self);
        else
            s_reap(self); //  cheap, and robust to a lost wakeup
        if (self->admin) zc_admin_run(self->admin);
        s_tick(self);
    }
}

int zc_supervisor_run(zc_supervisor_t *self)
{
    assert(self);
    assert(!self->running && !self->finished);
    struct sigaction saved[SIGNAL_COUNT];
    if (s_signals_install(saved)) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE, "cannot create the signal pipe: %s", strerror(errno));
        return 1;
    }
    int code = 1;
    if (s_start(self) == 0) {
        s_loop(self);
        if (!self->stopping) {
            //  Every worker finished or failed; nothing was asked to stop.
            json_t *event = sup_event_new(self, "master");
            json_object_set_new(event, "reason", json_string("stopping"));
            sup_emit(self, event);
            self->stopping = 1;
        }
        code = self->exit_code ? self->exit_code : self->forced ? 2 : 0;
    }
    if (self->embedded && zc_embedded_redis_pid(self->embedded) > 0) {
        zc_embedded_redis_stop(self->embedded, 2000); //  after the last worker
        json_t *event = sup_event_new(self, "redis");
        json_object_set_new(event, "reason", json_string("stopped"));
        sup_emit(self, event);
    }
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
    s_runtime_cleanup(self);
    s_signals_restore(saved);
    self->running = 0;
    return code;
}
