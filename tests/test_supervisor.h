/*  Shared by the tests/test_supervisor_*.c tests: a worker program and a
    driver for `zcluster start`.

    The worker program is the test binary itself, run as `TEST worker
    [OPTIONS]`: each test's main() calls sup_worker_main() first. It reports
    what it was told through the environment in its status line, signals
    ready through the library, and misbehaves on demand (crash, never get
    ready, ignore SIGTERM), some of it switched by files so a test can
    change the behaviour of the *next* workers of a running master.

    The master is the real `zcluster start` in a child process; the tests
    watch it through its admin API (a small HTTP client below) and through
    the events it publishes in Redis.
*/
#ifndef TEST_SUPERVISOR_H_INCLUDED
#define TEST_SUPERVISOR_H_INCLUDED

#include "testkit.h"
#include "zc_supervisor.h"
#include "zcluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char s_self[4096];

static inline void sup_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

//  --------------------------------------------------------------------------
//  The worker program

static volatile sig_atomic_t s_worker_term;

static inline void s_worker_on_term(int sig)
{
    s_worker_term = 1;
}

static inline int s_file_exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

//  `TEST worker [--ready-delay MS] [--never-ready] [--crash-after MS CODE]
//  [--crash-file PATH] [--hang-file PATH] [--ignore-term] [--term-delay MS]
//  [--tag TEXT] [--node] [--cluster-*...]`
static inline int sup_worker_program(int argc, char **argv)
{
    int ready_delay = 0, never_ready = 0, crash_after = -1, crash_code = 1, ignore_term = 0;
    int term_delay = 0, node_mode = 0;
    const char *crash_file = NULL, *hang_file = NULL, *tag = "v1";
    char passed[1024] = "";
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ready-delay") && i + 1 < argc)
            ready_delay = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--never-ready"))
            never_ready = 1;
        else if (!strcmp(argv[i], "--crash-after") && i + 2 < argc) {
            crash_after = atoi(argv[++i]);
            crash_code = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--crash-file") && i + 1 < argc)
            crash_file = argv[++i];
        else if (!strcmp(argv[i], "--hang-file") && i + 1 < argc)
            hang_file = argv[++i];
        else if (!strcmp(argv[i], "--ignore-term"))
            ignore_term = 1;
        else if (!strcmp(argv[i], "--term-delay") && i + 1 < argc)
            term_delay = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tag") && i + 1 < argc)
            tag = argv[++i];
        else if (!strcmp(argv[i], "--node"))
            node_mode = 1;
        else if (!strncmp(argv[i], "--cluster-", 10)) {
            if (*passed) strncat(passed, ",", sizeof passed - strlen(passed) - 1);
            strncat(passed, argv[i], sizeof passed - strlen(passed) - 1);
        } else {
            fprintf(stderr, "test worker: unknown option %s\n", argv[i]);
            return 64;
        }
    }
    if (s_file_exists(crash_file)) return 3; //  a broken build: dies before it is ready
    int64_t start = zt_now_ms();
    zc_node_t *node = NULL;
    if (node_mode) {
        node = zc_node_new(NULL); //  takes ZC_NODE_ID
        if (!node || zc_node_start(node)) {
            zc_node_destroy(&node);
            return 5;
        }
    }
    //  After CZMQ is initialised: it installs SIGTERM/SIGINT handlers of its own.
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = ignore_term ? SIG_IGN : s_worker_on_term;
    sigaction(SIGTERM, &sa, NULL);
    cpu_set_t set;
    int cpu = -1;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) cpu = c;
    char status[2048];
    snprintf(status, sizeof status,
             "tag=%s id=%s idx=%s group=%s cluster=%s master=%s reason=%s restarts=%s cpu=%d "
             "redis=%s args=%s",
             tag, getenv("ZC_NODE_ID"), getenv("ZC_WORKER_INDEX"), getenv("ZC_WORKER_GROUP"),
             getenv("ZC_CLUSTER"), getenv("ZC_MASTER_PID"), getenv("ZC_START_REASON"),
             getenv("ZC_RESTARTS"), cpu, getenv("ZC_REDIS_URL"), *passed ? passed : "-");
    zc_supervisor_status(status);
    int hang = never_ready || s_file_exists(hang_file);
    int ready = 0;
    int64_t term_at = 0;
    while (1) {
        int64_t now = zt_now_ms();
        if (!ready && !hang && now - start >= ready_delay) {
            zc_supervisor_ready();
            ready = 1;
        }
        if (crash_after >= 0 && now - start >= crash_after) {
            zc_node_destroy(&node);
            return crash_code;
        }
        if (s_worker_term && !term_at) term_at = now;
        if (term_at && now - term_at >= term_delay) break;
        if (node)
            zc_node_recv(node, 10);
        else
            sup_sleep_ms(5);
    }
    zc_node_destroy(&node);
    return 0;
}

//  Call first in main(): runs the worker program when asked to.
static inline void sup_worker_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "worker") == 0) exit(sup_worker_program(argc, argv));
    ssize_t n = readlink("/proc/self/exe", s_self, sizeof s_self - 1);
    s_self[n > 0 ? n : 0] = 0;
    signal(SIGPIPE, SIG_IGN);
}

//  --------------------------------------------------------------------------
//  HTTP

//  One request to 127.0.0.1:port. Returns the HTTP status and the parsed
//  JSON body in *body (NULL if none), or -1 if nothing answered.
static inline int sup_http_raw(int port, const char *method, const char *target,
                               const char *headers, json_t **body)
{
    *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) {
        close(fd);
        return -1;
    }
    char request[8192];
    int len = snprintf(request, sizeof request,
                       "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%sContent-Length: 0\r\n\r\n", method,
                       target, headers ? headers : "");
    if (send(fd, request, (size_t)len, MSG_NOSIGNAL) != len) {
        close(fd);
        return -1;
    }
    static char reply[1 << 20];
    size_t used = 0;
    ssize_t n;
    while (used < sizeof reply - 1 && (n = recv(fd, reply + used, sizeof reply - 1 - used, 0)) > 0)
        used += (size_t)n;
    close(fd);
    reply[used] = 0;
    int status = -1;
    if (sscanf(reply, "HTTP/%*d.%*d %d", &status) != 1) return -1;
    char *sep = strstr(reply, "\r\n\r\n");
    if (sep) *body = json_loads(sep + 4, 0, NULL);
    return status;
}

//  --------------------------------------------------------------------------
//  A master under test

typedef struct {
    zt_proc_t *proc;
    char name[64];
    char dir[128];
    char key[64];
    int port;
    int pid;
    int status; //  exit status once waited for
} sup_t;

//  Starts `zcluster start --name NAME --runtime-dir DIR --key KEY OPTS...`,
//  then, if worker_args is not NULL, `-- TEST worker WORKER_ARGS...`.
//  Both lists are NULL-terminated. Waits for the master's first line.
static inline sup_t *sup_start(const char *name, const char *const *opts,
                               const char *const *worker_args)
{
    sup_t *self = (sup_t *)calloc(1, sizeof(sup_t));
    snprintf(self->name, sizeof self->name, "%s", name);
    snprintf(self->dir, sizeof self->dir, "/tmp/zc-test-sup-XXXXXX");
    if (!mkdtemp(self->dir)) {
        free(self);
        return NULL;
    }
    snprintf(self->key, sizeof self->key, "key-%s-%d", name, (int)getpid());
    const char *argv[128];
    int n = 0;
    const char *cli = getenv("ZC_CLI");
    argv[n++] = cli ? cli : "zcluster";
    argv[n++] = "start";
    argv[n++] = "--name";
    argv[n++] = self->name;
    argv[n++] = "--runtime-dir";
    argv[n++] = self->dir;
    argv[n++] = "--key";
    argv[n++] = self->key;
    for (int i = 0; opts && opts[i] && n < 100; i++)
        argv[n++] = opts[i];
    if (worker_args) {
        argv[n++] = "--";
        argv[n++] = s_self;
        argv[n++] = "worker";
        for (int i = 0; worker_args[i] && n < 126; i++)
            argv[n++] = worker_args[i];
    }
    argv[n] = NULL;
    self->proc = zt_proc_start((char *const *)argv, NULL);
    const char *line = self->proc ? zt_proc_expect(self->proc, "master ", 15000) : NULL;
    if (!line || sscanf(line, "master pid=%d port=%d", &self->pid, &self->port) != 2) {
        fprintf(stderr, "the master did not start\n");
        zt_proc_destroy(&self->proc);
        rmdir(self->dir);
        free(self);
        return NULL;
    }
    return self;
}

//  GET or POST with the master's key. Returns the status; *body as sup_http_raw.
static inline int sup_call(sup_t *self, const char *method, const char *target, json_t **body)
{
    char header[128];
    snprintf(header, sizeof header, "X-Zcluster-Key: %s\r\n", self->key);
    return sup_http_raw(self->port, method, target, header, body);
}

//  Returns GET /path's JSON (the caller decrefs it), or NULL.
static inline json_t *sup_get(sup_t *self, const char *target)
{
    json_t *body = NULL;
    if (sup_call(self, "GET", target, &body) != 200) {
        json_decref(body);
        return NULL;
    }
    return body;
}

static inline long long sup_jint(json_t *object, const char *key)
{
    return (long long)json_integer_value(json_object_get(object, key));
}

static inline const char *sup_jstr(json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    return value ? value : "";
}

//  Counts the workers in state "ready".
static inline int sup_ready_count(sup_t *self)
{
    json_t *reply = sup_get(self, "/workers");
    int ready = 0;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(reply, "workers"), i, w)
    {
        ready += strcmp(sup_jstr(w, "state"), "ready") == 0;
    }
    json_decref(reply);
    return ready;
}

//  Waits until exactly count workers exist and all are ready.
static inline int sup_wait_ready(sup_t *self, int count, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < deadline) {
        json_t *reply = sup_get(self, "/workers");
        json_t *workers = json_object_get(reply, "workers");
        int ready = 0;
        size_t i;
        json_t *w;
        json_array_foreach(workers, i, w)
        {
            ready += strcmp(sup_jstr(w, "state"), "ready") == 0;
        }
        int done = (int)json_array_size(workers) == count && ready == count;
        json_decref(reply);
        if (done) return 1;
        sup_sleep_ms(20);
    }
    return 0;
}

//  Returns a copy of worker id's entry (the caller decrefs it), or NULL.
static inline json_t *sup_worker(sup_t *self, const char *id)
{
    json_t *reply = sup_get(self, "/workers");
    json_t *found = NULL;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(reply, "workers"), i, w)
    {
        if (strcmp(sup_jstr(w, "id"), id) == 0) found = json_deep_copy(w);
    }
    json_decref(reply);
    return found;
}

//  Returns worker id's pid, or 0.
static inline int sup_pid(sup_t *self, const char *id)
{
    json_t *w = sup_worker(self, id);
    int pid = w ? (int)sup_jint(w, "pid") : 0;
    json_decref(w);
    return pid;
}

//  Returns the events after seq (the caller decrefs the array).
static inline json_t *sup_events(sup_t *self, long long since)
{
    char target[64];
    snprintf(target, sizeof target, "/events?since=%lld", since);
    json_t *reply = sup_get(self, target);
    json_t *events = json_incref(json_object_get(reply, "events"));
    json_decref(reply);
    return events ? events : json_array();
}

//  Waits for an event with these fields (NULL matches anything) after seq;
//  returns a copy (the caller decrefs it), or NULL after timeout_ms.
static inline json_t *sup_wait_event(sup_t *self, long long since, const char *event,
                                     const char *worker, const char *reason, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < deadline) {
        json_t *events = sup_events(self, since);
        json_t *found = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e)
        {
            if (!found && (!event || !strcmp(sup_jstr(e, "event"), event)) &&
                (!worker || !strcmp(sup_jstr(e, "worker"), worker)) &&
                (!reason || !strcmp(sup_jstr(e, "reason"), reason)))
                found = json_deep_copy(e);
        }
        json_decref(events);
        if (found) return found;
        sup_sleep_ms(20);
    }
    return NULL;
}

//  The sequence number of the newest event.
static inline long long sup_last_seq(sup_t *self)
{
    json_t *reply = sup_get(self, "/events?since=1000000000");
    long long last = reply ? sup_jint(reply, "last") : 0;
    json_decref(reply);
    return last;
}

//  Signals the master and waits for it to exit. Returns its exit code (or
//  128+signal), -1 on timeout.
static inline int sup_stop(sup_t *self, int sig, int timeout_ms)
{
    if (sig) zt_proc_signal(self->proc, sig);
    int status = zt_proc_wait(self->proc, timeout_ms);
    if (status == -1) return -1;
    self->status = status;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

//  Kills the master if needed, removes its runtime directory, frees it.
static inline void sup_destroy(sup_t **self_p)
{
    sup_t *self = *self_p;
    if (!self) return;
    if (zt_proc_wait(self->proc, 0) == -1) {
        zt_proc_signal(self->proc, SIGTERM);
        if (zt_proc_wait(self->proc, 20000) == -1) zt_proc_signal(self->proc, SIGKILL);
    }
    zt_proc_destroy(&self->proc);
    char path[256];
    const char *files[] = {"admin.json", "admin.key", "master.lock", "redis.sock", "crash", "hang"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", self->dir, files[i]);
        unlink(path);
    }
    rmdir(self->dir);
    free(self);
    *self_p = NULL;
}

//  Runs `zcluster ARGS...` to the end; returns its exit code and its whole
//  output in out (NUL-terminated, truncated to cap).
static inline int sup_cli(char *out, size_t cap, const char *arg, ...)
{
    const char *argv[64];
    int n = 0;
    const char *cli = getenv("ZC_CLI");
    argv[n++] = cli ? cli : "zcluster";
    va_list args;
    va_start(args, arg);
    for (const char *a = arg; a && n < 63; a = va_arg(args, const char *))
        argv[n++] = a;
    va_end(args);
    argv[n] = NULL;
    zt_proc_t *proc = zt_proc_start((char *const *)argv, NULL);
    size_t used = 0;
    out[0] = 0;
    const char *line;
    while (proc && (line = zt_proc_expect(proc, "", 60000)) != NULL) {
        int len = snprintf(out + used, cap - used, "%s\n", line);
        if (len > 0 && used + (size_t)len < cap) used += (size_t)len;
    }
    int status = proc ? zt_proc_wait(proc, 60000) : -1;
    zt_proc_destroy(&proc);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#endif
