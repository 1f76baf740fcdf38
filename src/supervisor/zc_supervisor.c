/*  zc_supervisor — the master's class: its settings, its errors, and the
    lookups every other part of the master does in the worker table.

    The table itself (groups, slots, processes) is described in
    zc_supervisor_internal.h; what happens to it lives in the files named
    after each concept: spawn, respawn, reload, run.

    Why slots: a worker is a position to keep filled ("web #2"), and its
    processes come and go (crash, respawn, reload). The slot carries what
    outlives a process: the id number it keeps during a backoff, the crash
    count behind the backoff, the program it runs after an upgrade.

    Names: the supervisor's name is the cluster's name (zc_identity's rule,
    since its workers join that cluster). Group and command names appear in
    paths and command lines, so they keep a narrower rule: 1..100 of
    [A-Za-z0-9_.-].
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_SOURCE "supervisor"

//  --------------------------------------------------------------------------
//  Errors

int sup_fail(zc_supervisor_t *self, int log_level, zc_error_t kind, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    zc_failure_setv(&self->failure, kind, format, args);
    va_end(args);
    if (log_level >= 0) zc_log((zc_log_level_t)log_level, LOG_SOURCE, "%s", self->failure.text);
    return -1;
}

void sup_ok(zc_supervisor_t *self)
{
    zc_failure_clear(&self->failure);
}

zc_error_t zc_supervisor_error(zc_supervisor_t *self)
{
    assert(self);
    return self->failure.kind;
}

const char *zc_supervisor_errstr(zc_supervisor_t *self)
{
    assert(self);
    return self->failure.text;
}

//  --------------------------------------------------------------------------
//  Small helpers

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

char **sup_argv_copy(char *const argv[])
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

void sup_argv_free(char ***argv_p)
{
    char **argv = *argv_p;
    if (!argv) return;
    for (int i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
    *argv_p = NULL;
}

int sup_allowed_cpus(int *cpus, int max)
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

const char *zc_supervisor_worker_id(char *buf, size_t cap, const char *name, int n)
{
    assert(buf && name);
    snprintf(buf, cap, "%s-worker-%d", name, n);
    return buf;
}

//  --------------------------------------------------------------------------
//  Construction

//  The default runtime directory, if the name can be part of a path.
static void s_default_runtime_dir(zc_supervisor_t *self)
{
    const char *name = self->name, *xdg = getenv("XDG_RUNTIME_DIR");
    self->runtime_dir[0] = 0;
    if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) return;
    int n;
    if (xdg && *xdg)
        n = snprintf(self->runtime_dir, sizeof self->runtime_dir, "%s/zcluster-%s", xdg, name);
    else
        n = snprintf(self->runtime_dir, sizeof self->runtime_dir, "/tmp/zcluster-%u-%s",
                     (unsigned)getuid(), name);
    if (n < 0 || (size_t)n >= sizeof self->runtime_dir) self->runtime_dir[0] = 0;
}

zc_supervisor_t *zc_supervisor_new(const char *name)
{
    if (!name) {
        name = getenv("ZC_CLUSTER");
        if (!name || !*name) name = ZC_CLUSTER_DEFAULT;
    }
    if (!zc_identity_cluster_valid(name)) {
        zc_log(ZC_LOG_ERROR, LOG_SOURCE,
               "invalid cluster name '%.100s' (1-255 bytes, no spaces, control characters, "
               "'{' or '}')",
               name);
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
    self->all_ready_reason = "start";
    self->lock_fd = -1;
    const char *url = getenv("ZC_REDIS_URL");
    if (url) snprintf(self->redis_url, sizeof self->redis_url, "%s", url);
    const char *key = getenv("ZC_ADMIN_KEY");
    if (key && *key) self->key = strdup(key);
    s_default_runtime_dir(self);
    return self;
}

static void s_group_free(sup_group_t *group)
{
    for (int s = 0; s < group->slot_count; s++) {
        sup_argv_free(&group->slots[s]->argv);
        free(group->slots[s]);
    }
    free(group->slots);
    free(group->restart_times);
    sup_argv_free(&group->argv);
    free(group);
}

void zc_supervisor_destroy(zc_supervisor_t **self_p)
{
    assert(self_p);
    zc_supervisor_t *self = *self_p;
    if (!self) return;
    while (self->procs) {
        sup_proc_t *next = self->procs->next;
        sup_proc_free(self->procs);
        self->procs = next;
    }
    for (int g = 0; g < self->group_count; g++)
        s_group_free(self->groups[g]);
    free(self->groups);
    sup_argv_free(&self->reload.argv);
    free(self->reload.queue);
    for (int i = 0; i < self->extra_count; i++)
        free(self->extra_args[i]);
    free(self->extra_args);
    for (int i = 0; i < self->command_count; i++)
        free(self->commands[i].help);
    free(self->commands);
    sup_events_close(self);
    zc_embedded_redis_destroy(&self->embedded);
    zc_local_ha_destroy(&self->ha);
    free(self->admin_cert_file);
    free(self->admin_key_file);
    if (self->key) explicit_bzero(self->key, strlen(self->key));
    free(self->key);
    free(self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Settings

int zc_supervisor_add_group(zc_supervisor_t *self, const char *group, int count, char *const argv[])
{
    assert(self);
    if (!s_valid_name(group))
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                        "invalid group name '%.100s' (1..%d of A-Za-z0-9_.-)", group ? group : "",
                        SUP_NAME_MAX);
    if (sup_find_group(self, group))
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_DUPLICATE, "repeated group name '%s'", group);
    if (count < 0 || count > SUP_MAX_WORKERS || !argv || !argv[0] || !*argv[0])
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                        "group %s: needs a program and 0..%d workers", group, SUP_MAX_WORKERS);
    sup_group_t *g = (sup_group_t *)calloc(1, sizeof(sup_group_t));
    assert(g);
    snprintf(g->name, sizeof g->name, "%s", group);
    g->argv = sup_argv_copy(argv);
    g->count = count;
    self->groups = (sup_group_t **)realloc(self->groups,
                                           sizeof(sup_group_t *) * (size_t)(self->group_count + 1));
    assert(self->groups);
    self->groups[self->group_count++] = g;
    sup_ok(self);
    return 0;
}

int zc_supervisor_add_arg(zc_supervisor_t *self, const char *arg)
{
    assert(self && arg);
    self->extra_args =
        (char **)realloc(self->extra_args, sizeof(char *) * (size_t)(self->extra_count + 1));
    assert(self->extra_args);
    self->extra_args[self->extra_count++] = strdup(arg);
    sup_ok(self);
    return 0;
}

void zc_supervisor_set_redis(zc_supervisor_t *self, const char *url)
{
    assert(self);
    snprintf(self->redis_url, sizeof self->redis_url, "%s", url ? url : "");
}

int zc_supervisor_set_redis_replicas(zc_supervisor_t *self, int replicas)
{
    assert(self);
    if (replicas < 0 || replicas > ZC_LOCAL_HA_REPLICAS_MAX)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID, "redis replicas: 0..%d, not %d",
                        ZC_LOCAL_HA_REPLICAS_MAX, replicas);
    self->redis_replicas = replicas;
    sup_ok(self);
    return 0;
}

void zc_supervisor_set_runtime_dir(zc_supervisor_t *self, const char *dir)
{
    assert(self && dir);
    snprintf(self->runtime_dir, sizeof self->runtime_dir, "%s", dir);
}

void zc_supervisor_set_key(zc_supervisor_t *self, const char *key)
{
    assert(self);
    if (self->key) explicit_bzero(self->key, strlen(self->key));
    free(self->key);
    self->key = key && *key ? strdup(key) : NULL;
}

void zc_supervisor_set_admin_port(zc_supervisor_t *self, int port)
{
    assert(self);
    self->admin_port = port;
}

void zc_supervisor_set_admin_address(zc_supervisor_t *self, const char *address,
                                     int allow_plaintext)
{
    assert(self);
    snprintf(self->admin_address, sizeof self->admin_address, "%s", address ? address : "");
    self->admin_plaintext = allow_plaintext;
}

void zc_supervisor_set_admin_tls(zc_supervisor_t *self, const char *cert_file, const char *key_file)
{
    assert(self);
    free(self->admin_cert_file);
    free(self->admin_key_file);
    self->admin_cert_file = cert_file ? strdup(cert_file) : NULL;
    self->admin_key_file = key_file ? strdup(key_file) : NULL;
}

//  Parses a CPU list ("0-3,6") into cpus; returns the count, or -1.
static int s_parse_cpus(const char *list, int *cpus)
{
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
            cpus[n++] = (int)cpu;
        }
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return n > 0 ? n : -1;
}

int zc_supervisor_set_cpus(zc_supervisor_t *self, const char *list)
{
    assert(self && list);
    if (strcmp(list, "auto") == 0) {
        self->cpu_count = sup_allowed_cpus(self->cpus, SUP_MAX_CPUS);
        sup_ok(self);
        return 0;
    }
    int cpus[SUP_MAX_CPUS];
    int n = s_parse_cpus(list, cpus);
    if (n < 0)
        return sup_fail(self, -1, ZC_ERR_INVALID, "bad CPU list '%.100s' (e.g. 0-3,6 or auto)",
                        list);
    memcpy(self->cpus, cpus, sizeof(int) * (size_t)n);
    self->cpu_count = n;
    sup_ok(self);
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

void zc_supervisor_on_all_ready(zc_supervisor_t *self, zc_supervisor_all_ready_fn *fn, void *arg)
{
    assert(self);
    self->all_ready_fn = fn;
    self->all_ready_arg = arg;
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
    if (!s_valid_name(name))
        return sup_fail(self, -1, ZC_ERR_INVALID, "invalid command name '%.100s'",
                        name ? name : "");
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcmp(name, builtin[i]) == 0)
            return sup_fail(self, -1, ZC_ERR_DUPLICATE, "'%s' is a built-in command", name);
    for (int i = 0; i < self->command_count; i++)
        if (strcmp(self->commands[i].name, name) == 0)
            return sup_fail(self, -1, ZC_ERR_DUPLICATE, "command '%s' is already registered", name);
    self->commands = (sup_command_t *)realloc(
        self->commands, sizeof(sup_command_t) * (size_t)(self->command_count + 1));
    assert(self->commands);
    sup_command_t *command = &self->commands[self->command_count++];
    snprintf(command->name, sizeof command->name, "%s", name);
    command->help = strdup(help ? help : "");
    command->fn = fn;
    command->arg = arg;
    sup_ok(self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Reading the master

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

char *zc_supervisor_workers(zc_supervisor_t *self)
{
    assert(self);
    json_t *workers = sup_workers_json(self);
    char *text = json_dumps(workers, JSON_COMPACT);
    json_decref(workers);
    return text;
}

int zc_supervisor_signal(zc_supervisor_t *self, const char *id, int sig)
{
    assert(self && id);
    sup_proc_t *proc = sup_find_proc(self, id);
    if (!proc || proc->pid <= 0)
        return sup_fail(self, -1, ZC_ERR_MISSING, "no live worker %.100s", id);
    if (kill(proc->pid, sig))
        return sup_fail(self, -1, ZC_ERR_SYSTEM, "cannot signal %s: %s", id, strerror(errno));
    sup_ok(self);
    return 0;
}

//  --------------------------------------------------------------------------
//  Looking things up in the table

sup_group_t *sup_find_group(zc_supervisor_t *self, const char *name)
{
    for (int g = 0; g < self->group_count; g++)
        if (strcmp(self->groups[g]->name, name) == 0) return self->groups[g];
    return NULL;
}

//  Returns 1 if id names proc: its worker id, or its pid in decimal.
static int s_names(const sup_proc_t *proc, const char *id)
{
    char *end = NULL;
    long pid = strtol(id, &end, 10);
    return strcmp(proc->id, id) == 0 || (*id && !*end && proc->pid > 0 && pid == proc->pid);
}

sup_proc_t *sup_find_proc(zc_supervisor_t *self, const char *id)
{
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next)
        if (s_names(proc, id)) return proc;
    return NULL;
}

//  The slot whose current process has this id, or that keeps it in backoff.
sup_slot_t *sup_find_slot(zc_supervisor_t *self, const char *id)
{
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count; s++) {
            sup_slot_t *slot = self->groups[g]->slots[s];
            char slot_id[SUP_ID_MAX];
            if (slot->proc && s_names(slot->proc, id)) return slot;
            zc_supervisor_worker_id(slot_id, sizeof slot_id, self->name, slot->number);
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
int sup_free_number(zc_supervisor_t *self)
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
