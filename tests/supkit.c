/*  supkit — the supervisor tests' worker program and master driver. See
    supkit.h. */
#include "supkit.h"
#include "zc_redis.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

char zs_self[4096];

void zs_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

//  --------------------------------------------------------------------------
//  The worker program

typedef struct {
    int ready_delay, never_ready, crash_after, crash_code, ignore_term, term_delay, node_mode;
    const char *crash_file, *hang_file, *tag;
    char passed[1024]; //  the --cluster-* options, comma-separated
} s_worker_t;

static volatile sig_atomic_t s_worker_term;

static void s_worker_on_term(int sig)
{
    s_worker_term = 1;
}

static int s_file_exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

//  Parses the worker's options; returns 0, or -1 on an unknown one.
static int s_worker_options(s_worker_t *w, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--ready-delay") && i + 1 < argc)
            w->ready_delay = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--never-ready"))
            w->never_ready = 1;
        else if (!strcmp(argv[i], "--crash-after") && i + 2 < argc) {
            w->crash_after = atoi(argv[++i]);
            w->crash_code = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--crash-file") && i + 1 < argc)
            w->crash_file = argv[++i];
        else if (!strcmp(argv[i], "--hang-file") && i + 1 < argc)
            w->hang_file = argv[++i];
        else if (!strcmp(argv[i], "--ignore-term"))
            w->ignore_term = 1;
        else if (!strcmp(argv[i], "--term-delay") && i + 1 < argc)
            w->term_delay = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tag") && i + 1 < argc)
            w->tag = argv[++i];
        else if (!strcmp(argv[i], "--node"))
            w->node_mode = 1;
        else if (!strncmp(argv[i], "--cluster-", 10)) {
            if (*w->passed) strncat(w->passed, ",", sizeof w->passed - strlen(w->passed) - 1);
            strncat(w->passed, argv[i], sizeof w->passed - strlen(w->passed) - 1);
        } else {
            fprintf(stderr, "test worker: unknown option %s\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

//  Says what the worker was told, in its status line.
static void s_worker_status(s_worker_t *w)
{
    cpu_set_t set;
    int cpu = -1;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set)) cpu = c;
    char status[2048];
    snprintf(status, sizeof status,
             "tag=%s id=%s idx=%s group=%s cluster=%s master=%s reason=%s restarts=%s cpu=%d "
             "redis=%s args=%s",
             w->tag, getenv("ZC_NODE_ID"), getenv("ZC_WORKER_INDEX"), getenv("ZC_WORKER_GROUP"),
             getenv("ZC_CLUSTER"), getenv("ZC_MASTER_PID"), getenv("ZC_START_REASON"),
             getenv("ZC_RESTARTS"), cpu, getenv("ZC_REDIS_URL"), *w->passed ? w->passed : "-");
    zc_supervisor_status(status);
}

//  Runs until told to stop (or to crash); returns the exit code.
static int s_worker_loop(s_worker_t *w, zc_node_t *node)
{
    int64_t start = zt_now_ms(), term_at = 0;
    int hang = w->never_ready || s_file_exists(w->hang_file), ready = 0;
    const char *master = getenv("ZC_MASTER_PID");
    pid_t master_pid = master ? (pid_t)atoi(master) : 0;
    while (1) {
        int64_t now = zt_now_ms();
        if (!ready && !hang && now - start >= w->ready_delay) {
            zc_supervisor_ready();
            ready = 1;
        }
        if (w->crash_after >= 0 && now - start >= w->crash_after) return w->crash_code;
        if (s_worker_term && !term_at) term_at = now;
        if (term_at && now - term_at >= w->term_delay) return 0;
        //  A worker that ignores SIGTERM would outlive a master that was
        //  killed before it could SIGKILL it: it leaves once orphaned.
        if (w->ignore_term && master_pid > 0 && getppid() != master_pid) return 0;
        if (node)
            zc_node_recv(node, 10);
        else
            zs_sleep_ms(5);
    }
}

static int s_worker_program(int argc, char **argv)
{
    s_worker_t w = {.crash_after = -1, .crash_code = 1, .tag = "v1"};
    if (s_worker_options(&w, argc, argv)) return 64;
    if (s_file_exists(w.crash_file)) return 3; //  a broken build: dies before it is ready
    zc_node_t *node = NULL;
    if (w.node_mode) {
        node = zc_node_new(NULL); //  takes ZC_NODE_ID
        if (!node || zc_node_start(node)) {
            zc_node_destroy(&node);
            return 5;
        }
    }
    //  After CZMQ is initialised: it installs SIGTERM/SIGINT handlers of its own.
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = w.ignore_term ? SIG_IGN : s_worker_on_term;
    sigaction(SIGTERM, &sa, NULL);
    s_worker_status(&w);
    int code = s_worker_loop(&w, node);
    zc_node_destroy(&node);
    return code;
}

void zs_worker_main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "worker") == 0) exit(s_worker_program(argc, argv));
    ssize_t n = readlink("/proc/self/exe", zs_self, sizeof zs_self - 1);
    zs_self[n > 0 ? n : 0] = 0;
    signal(SIGPIPE, SIG_IGN);
}

//  --------------------------------------------------------------------------
//  HTTP

int zs_http(int port, const char *method, const char *target, const char *headers, json_t **body)
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

long long zs_int(json_t *object, const char *key)
{
    return (long long)json_integer_value(json_object_get(object, key));
}

const char *zs_str(json_t *object, const char *key)
{
    const char *value = json_string_value(json_object_get(object, key));
    return value ? value : "";
}

//  --------------------------------------------------------------------------
//  A master under test

zs_master_t *zs_start(const char *name, const char *const *opts, const char *const *worker_args)
{
    return zs_start_logged(name, opts, worker_args, NULL);
}

zs_master_t *zs_start_logged(const char *name, const char *const *opts,
                             const char *const *worker_args, const char *log_path)
{
    zs_master_t *self = (zs_master_t *)calloc(1, sizeof(zs_master_t));
    snprintf(self->name, sizeof self->name, "%s", name);
    snprintf(self->dir, sizeof self->dir, "/tmp/zc-test-sup-XXXXXX");
    if (!mkdtemp(self->dir)) {
        free(self);
        return NULL;
    }
    snprintf(self->key, sizeof self->key, "key-%s-%d", name, (int)getpid());
    //  Beside the runtime directory, not in it: the master removes its
    //  directory on exit, which the tests check.
    snprintf(self->key_file, sizeof self->key_file, "%s.key", self->dir);
    FILE *f = fopen(self->key_file, "w");
    if (f) {
        fchmod(fileno(f), 0600);
        fprintf(f, "%s\n", self->key);
        fclose(f);
    }
    const char *argv[132];
    int n = 0;
    const char *cli = getenv("ZC_CLI");
    char log_env[300];
    snprintf(log_env, sizeof log_env, "ZS_LOG=%s", log_path ? log_path : "");
    char *const env[] = {log_env, NULL};
    if (log_path) { //  a shell that redirects stderr and execs the master: no process between
        argv[n++] = "sh";
        argv[n++] = "-c";
        argv[n++] = "exec \"$0\" \"$@\" 2>>\"$ZS_LOG\"";
    }
    const char *fixed[] = {cli ? cli : "zcluster", "start",   "--name",     self->name,
                           "--runtime-dir",        self->dir, "--key-file", self->key_file};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = fixed[i];
    for (int i = 0; opts && opts[i] && n < 100; i++)
        argv[n++] = opts[i];
    if (worker_args) {
        argv[n++] = "--";
        argv[n++] = zs_self;
        argv[n++] = "worker";
        for (int i = 0; worker_args[i] && n < 126; i++)
            argv[n++] = worker_args[i];
    }
    argv[n] = NULL;
    self->proc = zt_proc_start((char *const *)argv, env);
    const char *line = self->proc ? zt_proc_expect(self->proc, "master ", 15000) : NULL;
    if (line) snprintf(self->first_line, sizeof self->first_line, "%s", line);
    if (!line || sscanf(line, "master pid=%d port=%d", &self->pid, &self->port) != 2) {
        fprintf(stderr, "the master did not start\n");
        zt_proc_destroy(&self->proc);
        rmdir(self->dir);
        unlink(self->key_file);
        free(self);
        return NULL;
    }
    return self;
}

int zs_call(zs_master_t *self, const char *method, const char *target, json_t **body)
{
    char header[128];
    snprintf(header, sizeof header, "X-Zcluster-Key: %s\r\n", self->key);
    return zs_http(self->port, method, target, header, body);
}

json_t *zs_get(zs_master_t *self, const char *target)
{
    json_t *body = NULL;
    if (zs_call(self, "GET", target, &body) != 200) {
        json_decref(body);
        return NULL;
    }
    return body;
}

int zs_pids(zs_master_t *self, int *pids, int max)
{
    json_t *reply = zs_get(self, "/workers");
    int n = 0;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(reply, "workers"), i, w)
    {
        if (n < max) pids[n++] = (int)zs_int(w, "pid");
    }
    json_decref(reply);
    return n;
}

//  Counts the workers in state "ready"; *all gets the number of workers.
static int s_ready(zs_master_t *self, int *all)
{
    json_t *reply = zs_get(self, "/workers");
    json_t *workers = json_object_get(reply, "workers");
    int ready = 0;
    size_t i;
    json_t *w;
    json_array_foreach(workers, i, w)
    {
        ready += strcmp(zs_str(w, "state"), "ready") == 0;
    }
    if (all) *all = (int)json_array_size(workers);
    json_decref(reply);
    return ready;
}

int zs_ready_count(zs_master_t *self)
{
    return s_ready(self, NULL);
}

int zs_wait_ready(zs_master_t *self, int count, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < deadline) {
        int all = 0;
        if (s_ready(self, &all) == count && all == count) return 1;
        zs_sleep_ms(20);
    }
    return 0;
}

json_t *zs_worker(zs_master_t *self, const char *id)
{
    json_t *reply = zs_get(self, "/workers");
    json_t *found = NULL;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(reply, "workers"), i, w)
    {
        if (strcmp(zs_str(w, "id"), id) == 0) found = json_deep_copy(w);
    }
    json_decref(reply);
    return found;
}

const char *zs_worker_id(zs_master_t *self, int index, char *id, size_t cap)
{
    json_t *reply = zs_get(self, "/workers");
    json_t *w = json_array_get(json_object_get(reply, "workers"), (size_t)index);
    snprintf(id, cap, "%s", zs_str(w, "id"));
    json_decref(reply);
    return id;
}

int zs_pid(zs_master_t *self, const char *id)
{
    json_t *w = zs_worker(self, id);
    int pid = w ? (int)zs_int(w, "pid") : 0;
    json_decref(w);
    return pid;
}

json_t *zs_events(zs_master_t *self, long long since)
{
    char target[64];
    snprintf(target, sizeof target, "/events?since=%lld", since);
    json_t *reply = zs_get(self, target);
    json_t *events = json_incref(json_object_get(reply, "events"));
    json_decref(reply);
    return events ? events : json_array();
}

json_t *zs_wait_event(zs_master_t *self, long long since, const char *event, const char *worker,
                      const char *reason, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (zt_now_ms() < deadline) {
        json_t *events = zs_events(self, since);
        json_t *found = NULL;
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e)
        {
            if (!found && (!event || !strcmp(zs_str(e, "event"), event)) &&
                (!worker || !strcmp(zs_str(e, "worker"), worker)) &&
                (!reason || !strcmp(zs_str(e, "reason"), reason)))
                found = json_deep_copy(e);
        }
        json_decref(events);
        if (found) return found;
        zs_sleep_ms(20);
    }
    return NULL;
}

long long zs_last_seq(zs_master_t *self)
{
    json_t *reply = zs_get(self, "/events?since=1000000000");
    long long last = reply ? zs_int(reply, "last") : 0;
    json_decref(reply);
    return last;
}

int zs_stop(zs_master_t *self, int sig, int timeout_ms)
{
    if (sig) zt_proc_signal(self->proc, sig);
    int status = zt_proc_wait(self->proc, timeout_ms);
    if (status == -1) return -1;
    self->status = status;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void zs_destroy(zs_master_t **self_p)
{
    zs_master_t *self = *self_p;
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
    unlink(self->key_file);
    free(self);
    *self_p = NULL;
}

//  Reads every line of proc's stdout into out; returns its exit code.
static int s_collect(zt_proc_t *proc, char *out, size_t cap)
{
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

int zs_shell(char *out, size_t cap, const char *command)
{
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    return s_collect(zt_proc_start(argv, NULL), out, cap);
}

char *zs_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t cap = 1 << 22, used = 0;
    char *text = (char *)calloc(1, cap + 1);
    if (f) {
        used = fread(text, 1, cap, f);
        fclose(f);
    }
    text[used] = 0;
    return text;
}

int zs_ps_clean(const char *secret)
{
    static char listing[1 << 18];
    if (zs_shell(listing, sizeof listing, "ps -eo args") != 0) return 0;
    if (!strstr(listing, secret)) return 1;
    fprintf(stderr, "  '%s' shows in ps:\n%s", secret, listing);
    return 0;
}

int zs_cli(char *out, size_t cap, const char *arg, ...)
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
    return s_collect(zt_proc_start((char *const *)argv, NULL), out, cap);
}

//  --------------------------------------------------------------------------
//  Processes and Redis

int zs_alive(int pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    const char *close_paren = strrchr(stat, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

int zs_wait_gone(const int *pids, int count, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (1) {
        int alive = 0;
        for (int i = 0; i < count; i++)
            alive += pids[i] > 0 && zs_alive(pids[i]);
        if (alive == 0 || zt_now_ms() >= deadline) return alive;
        zs_sleep_ms(10);
    }
}

redisReply *zs_redis(const char *url_text, const char *format, ...)
{
    zc_redis_url_t url;
    char err[256];
    if (zc_redis_url_parse(url_text, &url, err, sizeof err)) return NULL;
    zc_redis_t *redis = zc_redis_new(&url, 2000);
    redisContext *c = zc_redis_context(redis);
    redisReply *reply = NULL;
    if (c) {
        va_list args;
        va_start(args, format);
        reply = (redisReply *)redisvCommand(c, format, args);
        va_end(args);
    }
    zc_redis_destroy(&redis);
    return reply;
}

json_t *zs_redis_events(const char *url, const char *name)
{
    json_t *events = json_array();
    redisReply *reply = zs_redis(url, "LRANGE zc:{%s}:supervisor:events 0 -1", name);
    for (size_t i = reply ? reply->elements : 0; i > 0; i--) {
        json_t *e = json_loads(reply->element[i - 1]->str, 0, NULL);
        if (e) json_array_append_new(events, e);
    }
    if (reply) freeReplyObject(reply);
    return events;
}
