/*  zc_supervisor_admin — the commands of the master's admin API.

    One command per path: GET|POST /workers, /health, /help, /events, and
    POST /restart/all|ID, /shutdown/all|ID, /upgrade, /exit, /NAME for the
    application's own commands (arguments as further path segments).
    Commands that change something must be POSTs, so a browser prefetch or
    a stray GET cannot restart a cluster.

    Commands that take time (restart, upgrade, shutdown) answer when they
    are over, with the outcome: the CLI prints it and exits accordingly.
    `?wait=0` answers at once with 202 instead. Every response is a JSON
    object with "ok"; failures also carry "error".

    Also here: opening the API with the master's settings (address, port,
    key, HTTPS certificate and key read from their files).
*/
#include "zc_supervisor_internal.h"
#include "zc_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *name, *usage, *help;
    int post; //  1: only POST
} s_builtin_t;

static const s_builtin_t s_builtins[] = {
    {"workers", "workers", "every worker: id, group, pid, state, restarts, uptime, status", 0},
    {"health", "health", "the cluster's health: ok, starting, degraded or stopping", 0},
    {"help", "help", "this list, with the application's commands", 0},
    {"events", "events[?since=SEQ]", "recent worker and master events after SEQ", 0},
    {"restart", "restart/all | restart/ID",
     "rolling reload of every worker, or one: each replacement must be ready before its "
     "predecessor is stopped; aborted (old worker kept) if it fails",
     1},
    {"shutdown", "shutdown/all | shutdown/ID",
     "stop every worker and the master (SIGTERM, then SIGKILL after the stop timeout), or stop "
     "one worker for good",
     1},
    {"upgrade", "upgrade?arg=PROGRAM&arg=ARG...[&group=GROUP]",
     "rolling replacement of a group's workers by a new program, gated like restart", 1},
    {"exit", "exit", "kill every worker at once and exit", 1},
    {"queue", "queue/jobs|failed|stats/QUEUE, queue/delayed[/QUEUE], queue/working, queue/job/ID",
     "look into the task queue (?offset=N&count=N); POST queue/remove/QUEUE/ID deletes a job", 0},
    {"cache", "cache/locks[?pattern=GLOB]", "cache locks with owner and time left", 0},
    {"metrics", "metrics",
     "Prometheus text: every worker's counters (label worker) and their sums, queue depths", 0},
};

//  Reads a PEM file of at most 1 MB into a new string (the caller frees
//  it); a private key (secret 1) only from a file that group and others
//  cannot read. Returns NULL after a failure naming the file, never its
//  content.
static char *s_read_pem(zc_supervisor_t *self, const char *what, const char *path, int secret)
{
    FILE *f = fopen(path, "r");
    struct stat st;
    if (f && secret && fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        fclose(f);
        sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                 "admin API: the HTTPS %s %s is readable by group or others (chmod 600 it)", what,
                 path);
        return NULL;
    }
    char *text = (char *)calloc(1, 1 << 20);
    size_t n = f ? fread(text, 1, (1 << 20) - 1, f) : 0;
    int too_big = f && n == (1 << 20) - 1;
    if (f) fclose(f);
    if (f && n > 0 && !too_big) return text;
    explicit_bzero(text, 1 << 20);
    free(text);
    sup_fail(self, ZC_LOG_ERROR, ZC_ERR_IO, "admin API: cannot read the HTTPS %s from %s%s", what,
             path, too_big ? " (over 1 MB)" : "");
    return NULL;
}

int sup_admin_open(zc_supervisor_t *self)
{
    zc_admin_config_t config = {*self->admin_address ? self->admin_address : NULL,
                                self->admin_port,
                                self->key,
                                NULL,
                                NULL,
                                self->admin_plaintext};
    if (!!self->admin_cert_file != !!self->admin_key_file)
        return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_INVALID,
                        "admin API: HTTPS needs both a certificate and its private key");
    char *cert =
        self->admin_cert_file ? s_read_pem(self, "certificate", self->admin_cert_file, 0) : NULL;
    char *key = cert ? s_read_pem(self, "private key", self->admin_key_file, 1) : NULL;
    if (self->admin_cert_file && (!cert || !key)) {
        free(cert);
        return -1;
    }
    config.tls_cert = cert;
    config.tls_key = key;
    char err[512];
    self->admin = zc_admin_new(&config, sup_admin_handle, self, err, sizeof err);
    free(cert);
    if (key) explicit_bzero(key, strlen(key));
    free(key);
    if (!self->admin) return sup_fail(self, ZC_LOG_ERROR, ZC_ERR_SYSTEM, "admin API: %s", err);
    return sup_admin_info_write(self);
}

void sup_reply_json(zc_admin_request_t *request, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (text)
        zc_admin_reply(request, status, text);
    else //  body is NULL: json_pack refused a string that is not UTF-8
        zc_admin_reply(request, 500, "{\"ok\":false,\"error\":\"the answer is not valid UTF-8\"}");
    free(text);
    json_decref(body);
}

//  A JSON string of text. An application's message, or an id from Redis,
//  may hold bytes that are not UTF-8 as JSON requires: then its bytes beyond
//  ASCII are shown as '?'.
json_t *sup_json_string(const char *text)
{
    json_t *string = json_string(text);
    if (string) return string;
    char *copy = strdup(text);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    string = json_string(copy);
    free(copy);
    return string;
}

void sup_reply_error(zc_admin_request_t *request, int status, const char *error)
{
    sup_reply_json(request, status,
                   json_pack("{s:b, s:o}", "ok", 0, "error", sup_json_string(error)));
}

//  --------------------------------------------------------------------------
//  Reads

static char *s_program(char **argv)
{
    size_t len = 1;
    for (int i = 0; argv && argv[i]; i++)
        len += strlen(argv[i]) + 1;
    char *text = (char *)calloc(1, len);
    for (int i = 0; argv && argv[i]; i++) {
        if (i) strcat(text, " ");
        strcat(text, argv[i]);
    }
    return text;
}

static json_t *s_proc_json(zc_supervisor_t *self, sup_proc_t *proc)
{
    int64_t now = zclock_mono();
    const char *role = proc->replacement          ? "replacement"
                       : proc->slot->proc == proc ? "worker"
                                                  : "retired";
    char *program = s_program(proc->argv);
    json_t *worker = json_pack(
        "{s:s, s:s, s:i, s:i, s:s, s:s, s:i, s:I, s:I, s:s, s:s, s:s}", "id", proc->id, "group",
        proc->slot->group->name, "number", proc->number, "pid", (int)proc->pid, "state",
        sup_state_name(proc->state), "role", role, "restarts", proc->slot->restarts, "uptime_ms",
        (json_int_t)(now - proc->started), "started", (json_int_t)proc->started_wall,
        "start_reason", proc->start_reason, "status", proc->status, "program", program);
    free(program);
    json_object_set_new(worker, "ready_ms",
                        proc->ready_at ? json_integer(proc->ready_at - proc->started)
                                       : json_null());
    json_object_set_new(worker, "cpu", proc->cpu >= 0 ? json_integer(proc->cpu) : json_null());
    return worker;
}

static json_t *s_slot_json(zc_supervisor_t *self, sup_slot_t *slot)
{
    char id[SUP_ID_MAX];
    zc_supervisor_worker_id(id, sizeof id, self->name, slot->number);
    json_t *worker =
        json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:i, s:I}", "id", id, "group", slot->group->name,
                  "number", slot->number, "pid", 0, "state", sup_state_name(slot->state), "role",
                  "worker", "restarts", slot->restarts, "uptime_ms", (json_int_t)0);
    if (slot->state == SUP_BACKOFF && slot->respawn_at)
        json_object_set_new(
            worker, "respawn_in_ms",
            json_integer(slot->respawn_at > zclock_mono() ? slot->respawn_at - zclock_mono() : 0));
    return worker;
}

static int s_by_number(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t nx = json_integer_value(json_object_get(x, "number"));
    json_int_t ny = json_integer_value(json_object_get(y, "number"));
    return nx < ny ? -1 : nx > ny;
}

json_t *sup_workers_json(zc_supervisor_t *self)
{
    json_t *items[SUP_MAX_WORKERS * 4];
    size_t n = 0;
    for (sup_proc_t *proc = self->procs; proc && n < SUP_MAX_WORKERS * 2; proc = proc->next)
        items[n++] = s_proc_json(self, proc);
    for (int g = 0; g < self->group_count; g++)
        for (int s = 0; s < self->groups[g]->slot_count && n < SUP_MAX_WORKERS * 4; s++) {
            sup_slot_t *slot = self->groups[g]->slots[s];
            if (!slot->proc && slot->state != SUP_REMOVED && slot->number > 0)
                items[n++] = s_slot_json(self, slot);
        }
    qsort(items, n, sizeof items[0], s_by_number);
    json_t *array = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(array, items[i]);
    return array;
}

static json_t *s_health_json(zc_supervisor_t *self)
{
    int ready = 0, starting = 0, stopping = 0, backoff = 0, failed_groups = 0;
    for (sup_proc_t *proc = self->procs; proc; proc = proc->next) {
        ready += proc->state == SUP_READY;
        starting += proc->state == SUP_STARTING;
        stopping += proc->state == SUP_STOPPING;
    }
    int expected = sup_expected_count(self);
    json_t *groups = json_array();
    int64_t now = zclock_mono();
    for (int g = 0; g < self->group_count; g++) {
        sup_group_t *group = self->groups[g];
        int g_ready = 0, g_workers = 0, in_window = 0;
        for (int s = 0; s < group->slot_count; s++) {
            sup_slot_t *slot = group->slots[s];
            backoff += slot->state == SUP_BACKOFF && !slot->proc;
            g_workers += slot->state != SUP_REMOVED && slot->state != SUP_DONE;
            g_ready += slot->proc && slot->proc->state == SUP_READY;
        }
        for (int i = 0; i < group->restart_count; i++)
            in_window += now - group->restart_times[i] < self->window_ms;
        failed_groups += group->failed;
        char *program = s_program(group->argv);
        json_array_append_new(groups, json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:s}", "name",
                                                group->name, "state",
                                                group->failed ? "failed" : "running", "workers",
                                                g_workers, "ready", g_ready, "restarts_in_window",
                                                in_window, "max_restarts", self->max_restarts,
                                                "window_ms", self->window_ms, "program", program));
        free(program);
    }
    const char *status = self->stopping             ? "stopping"
                         : failed_groups || backoff ? "degraded"
                         : ready < expected         ? "starting"
                                                    : "ok";
    char shown[1100]; //  the URL without its password
    json_t *health = json_pack(
        "{s:b, s:s, s:s, s:i, s:I, s:{s:i, s:i, s:i, s:i, s:i}, s:o, s:{s:s, s:b, s:i, s:I}}", "ok",
        strcmp(status, "ok") == 0, "status", status, "cluster", self->name, "master_pid",
        (int)getpid(), "uptime_ms", (json_int_t)(now - self->started), "workers", "expected",
        expected, "ready", ready, "starting", starting, "stopping", stopping, "backoff", backoff,
        "groups", groups, "redis", "url", zc_redis_url_redact(self->redis_url, shown, sizeof shown),
        "embedded", self->redis_proc_count > 0, "pid",
        self->redis_proc_count ? (int)zc_embedded_redis_pid(self->redis_procs[0].server) : 0,
        "events_unpublished", (json_int_t)self->events_unpublished);
    if (self->ha)
        json_object_set_new(json_object_get(health, "redis"), "processes",
                            sup_redis_processes_json(self));
    if (self->reload.active)
        json_object_set_new(health, "reload",
                            json_pack("{s:s, s:i, s:i}", "kind", self->reload.kind, "replaced",
                                      self->reload.replaced, "of", self->reload.queue_len));
    else
        json_object_set_new(health, "reload", json_null());
    json_t *last = *self->last_reload ? json_loads(self->last_reload, 0, NULL) : NULL;
    json_object_set_new(health, "last_reload", last ? last : json_null());
    return health;
}

static json_t *s_help_json(zc_supervisor_t *self)
{
    json_t *commands = json_array();
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins[0]; i++)
        json_array_append_new(commands,
                              json_pack("{s:s, s:s, s:s, s:s}", "name", s_builtins[i].name, "usage",
                                        s_builtins[i].usage, "help", s_builtins[i].help, "method",
                                        s_builtins[i].post ? "POST" : "GET"));
    for (int i = 0; i < self->command_count; i++)
        json_array_append_new(commands,
                              json_pack("{s:s, s:s, s:s, s:s}", "name", self->commands[i].name,
                                        "usage", self->commands[i].name, "help",
                                        self->commands[i].help, "method", "POST"));
    return json_pack("{s:b, s:o, s:s}", "ok", 1, "commands", commands, "key",
                     "X-Zcluster-Key header, Authorization: Bearer, or ?key=");
}

static json_t *s_events_json(zc_supervisor_t *self, const char *since_text)
{
    long long since = since_text ? strtoll(since_text, NULL, 10) : 0;
    //  No event is after the last one; the cap also keeps since + 1 in range.
    if (since > self->event_seq) since = self->event_seq;
    int64_t first = self->event_seq - SUP_EVENT_RING + 1;
    if (first < since + 1) first = since + 1;
    if (first < 1) first = 1;
    json_t *events = json_array();
    for (int64_t seq = first; seq <= self->event_seq; seq++) {
        int at = (int)(seq % SUP_EVENT_RING);
        if (self->ring_seq[at] != seq || !self->ring[at]) continue;
        json_t *event = json_loads(self->ring[at], 0, NULL);
        if (event) json_array_append_new(events, event);
    }
    return json_pack("{s:b, s:I, s:o}", "ok", 1, "last", (json_int_t)self->event_seq, "events",
                     events);
}

//  --------------------------------------------------------------------------
//  Changes

//  Starts a reload/restart/upgrade, answering now or when it is over.
static void s_reload(zc_supervisor_t *self, zc_admin_request_t *request, const char *kind,
                     sup_group_t *group, sup_slot_t *only, char *const argv[])
{
    const char *wait = zc_admin_request_param(request, "wait");
    int waiting = !wait || strcmp(wait, "0") != 0;
    if (sup_reload_begin(self, kind, group, only, argv, waiting ? request : NULL)) {
        sup_reply_error(request, 409, self->failure.text);
        return;
    }
    if (!waiting)
        sup_reply_json(request, 202, json_pack("{s:b, s:s}", "ok", 1, "result", "started"));
}

static void s_restart(zc_supervisor_t *self, zc_admin_request_t *request)
{
    const char *target = zc_admin_request_arg(request, 1);
    if (!target || zc_admin_request_argc(request) != 2) {
        sup_reply_error(request, 400, "usage: POST /restart/all or /restart/ID");
        return;
    }
    if (strcmp(target, "all") == 0) {
        s_reload(self, request, "reload", NULL, NULL, NULL);
        return;
    }
    sup_slot_t *slot = sup_find_slot(self, target);
    if (!slot) {
        sup_reply_error(request, 404, "no such worker");
        return;
    }
    s_reload(self, request, "restart", NULL, slot, NULL);
}

static void s_shutdown(zc_supervisor_t *self, zc_admin_request_t *request)
{
    const char *target = zc_admin_request_arg(request, 1);
    if (!target || zc_admin_request_argc(request) != 2) {
        sup_reply_error(request, 400, "usage: POST /shutdown/all or /shutdown/ID");
        return;
    }
    if (strcmp(target, "all") == 0) {
        const char *wait = zc_admin_request_param(request, "wait");
        if ((wait && strcmp(wait, "0") == 0) || self->shutdown_waiter_count == SUP_MAX_WAITERS)
            sup_reply_json(request, 202, json_pack("{s:b, s:s}", "ok", 1, "result", "stopping"));
        else
            self->shutdown_waiters[self->shutdown_waiter_count++] = request;
        sup_begin_shutdown(self);
        return;
    }
    if (self->stopping) {
        sup_reply_error(request, 409, "the master is shutting down");
        return;
    }
    sup_slot_t *slot = sup_find_slot(self, target);
    if (!slot) {
        sup_reply_error(request, 404, "no such worker");
        return;
    }
    sup_stop_slot(self, slot, request);
}

static void s_upgrade(zc_supervisor_t *self, zc_admin_request_t *request)
{
    const char *args[256];
    int argc = zc_admin_request_params(request, "arg", args, 255);
    if (argc < 1 || argc > 255 || !*args[0]) {
        sup_reply_error(request, 400, "usage: POST /upgrade?arg=PROGRAM&arg=ARG...[&group=GROUP]");
        return;
    }
    args[argc] = NULL;
    const char *name = zc_admin_request_param(request, "group");
    sup_group_t *group = name                     ? sup_find_group(self, name)
                         : self->group_count == 1 ? self->groups[0]
                                                  : NULL;
    if (!group) {
        sup_reply_error(request, name ? 404 : 400,
                        name ? "no such group" : "several groups: say which with group=NAME");
        return;
    }
    s_reload(self, request, "upgrade", group, NULL, (char *const *)args);
}

static void s_custom(zc_supervisor_t *self, zc_admin_request_t *request, sup_command_t *command)
{
    const char *argv[ZC_ADMIN_MAX_ARGS + 1];
    int argc = zc_admin_request_argc(request);
    for (int i = 0; i < argc; i++)
        argv[i] = zc_admin_request_arg(request, i);
    argv[argc] = NULL;
    char err[512] = "the command failed";
    char *result = command->fn(self, argc, argv, err, sizeof err, command->arg);
    if (!result) {
        sup_reply_error(request, 500, err);
        return;
    }
    json_t *value = json_loads(result, JSON_DECODE_ANY, NULL);
    free(result);
    if (!value) {
        sup_reply_error(request, 500, "the command returned invalid JSON");
        return;
    }
    sup_reply_json(request, 200, json_pack("{s:b, s:o}", "ok", 1, "result", value));
}

void sup_admin_handle(zc_admin_request_t *request, void *arg)
{
    zc_supervisor_t *self = (zc_supervisor_t *)arg;
    const char *cmd = zc_admin_request_argc(request) ? zc_admin_request_arg(request, 0) : "help";
    int post = strcmp(zc_admin_request_method(request), "POST") == 0;
    for (size_t i = 0; i < sizeof s_builtins / sizeof s_builtins[0]; i++)
        if (strcmp(cmd, s_builtins[i].name) == 0 && s_builtins[i].post && !post) {
            sup_reply_error(request, 405, "this command changes things: use POST");
            return;
        }
    if (strcmp(cmd, "workers") == 0)
        sup_reply_json(request, 200,
                       json_pack("{s:b, s:s, s:o}", "ok", 1, "cluster", self->name, "workers",
                                 sup_workers_json(self)));
    else if (strcmp(cmd, "health") == 0)
        sup_reply_json(request, 200, s_health_json(self));
    else if (strcmp(cmd, "help") == 0)
        sup_reply_json(request, 200, s_help_json(self));
    else if (strcmp(cmd, "events") == 0)
        sup_reply_json(request, 200, s_events_json(self, zc_admin_request_param(request, "since")));
    else if (strcmp(cmd, "restart") == 0)
        s_restart(self, request);
    else if (strcmp(cmd, "shutdown") == 0)
        s_shutdown(self, request);
    else if (strcmp(cmd, "upgrade") == 0)
        s_upgrade(self, request);
    else if (strcmp(cmd, "queue") == 0)
        sup_admin_queue(self, request);
    else if (strcmp(cmd, "cache") == 0)
        sup_admin_cache(self, request);
    else if (strcmp(cmd, "metrics") == 0)
        sup_admin_metrics(self, request);
    else if (strcmp(cmd, "exit") == 0) {
        sup_reply_json(request, 200, json_pack("{s:b, s:s}", "ok", 1, "result", "exiting"));
        sup_begin_shutdown(self);
        sup_kill_all(self);
    } else {
        for (int i = 0; i < self->command_count; i++)
            if (strcmp(cmd, self->commands[i].name) == 0) {
                if (!post)
                    sup_reply_error(request, 405, "application commands take POST");
                else
                    s_custom(self, request, &self->commands[i]);
                return;
            }
        sup_reply_error(request, 404, "unknown command (see /help)");
    }
}
