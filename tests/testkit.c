/*  testkit — checks, line-driven child processes and a private redis-server. */
#include "testkit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int s_passed, s_failed;

int zt_check(int ok, const char *expr, const char *file, int line)
{
    if (ok)
        s_passed++;
    else {
        s_failed++;
        fprintf(stderr, "FAIL %s:%d: %s\n", file, line, expr);
    }
    return ok;
}

int zt_check_eq(long long a, long long b, const char *ea, const char *eb, const char *file,
                int line)
{
    if (a == b) return zt_check(1, ea, file, line);
    fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", file, line, ea, eb, a, b);
    s_failed++;
    return 0;
}

void zt_section(const char *name)
{
    fprintf(stderr, "-- %s\n", name);
}

int zt_done(void)
{
    printf("%d passed, %d failed\n", s_passed, s_failed);
    return s_failed ? 1 : 0;
}

int64_t zt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  --------------------------------------------------------------------------
//  Child processes

struct _zt_proc_t {
    pid_t pid;
    int in_fd;  //  writes to the child's stdin
    int out_fd; //  reads the child's stdout
    int exited;
    int status;
    char buf[65536];
    size_t used;
    char line[65536];
};

//  In a child just forked: dies with its parent. PR_SET_PDEATHSIG fires when
//  the *thread* that forked exits, not the process; the tests fork from their
//  main thread, whose end is the process's end. A parent that died before
//  prctl is caught by getppid().
static void s_die_with_parent(pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
}

pid_t zt_fork(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) s_die_with_parent(parent);
    return pid;
}

//  Makes fd the child's target descriptor, open across exec.
static void s_place(int fd, int target)
{
    if (fd == target)
        fcntl(fd, F_SETFD, 0);
    else
        dup2(fd, target);
}

//  Starts argv[0] from PATH with stdin on in_fd (-1: ours) and stdout on
//  out_fd (-1: ours), stdout and stderr on /dev/null if quiet. Only
//  async-signal-safe calls between fork and exec: the test may have threads.
//  An exec failure comes back as an errno over a close-on-exec pipe.
static pid_t s_spawn(char *const argv[], char *const envp[], int in_fd, int out_fd, int quiet)
{
    int report[2];
    if (pipe2(report, O_CLOEXEC)) return -1;
    int null = quiet ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
    pid_t pid = zt_fork();
    if (pid == 0) {
        if (in_fd >= 0) s_place(in_fd, 0);
        if (out_fd >= 0) s_place(out_fd, 1);
        if (null >= 0) s_place(null, 1), s_place(null, 2);
        execvpe(argv[0], argv, envp);
        int err = errno;
        ssize_t ignored = write(report[1], &err, sizeof err);
        (void)ignored;
        _exit(127);
    }
    if (null >= 0) close(null);
    close(report[1]);
    int err = pid < 0 ? errno : 0;
    ssize_t n = 0;
    while (pid > 0 && (n = read(report[0], &err, sizeof err)) < 0 && errno == EINTR)
        ;
    if (n == (ssize_t)sizeof err) waitpid(pid, NULL, 0);
    close(report[0]);
    if (err) {
        fprintf(stderr, "cannot start %s: %s\n", argv[0], strerror(err));
        return -1;
    }
    return pid;
}

zt_proc_t *zt_proc_start(char *const argv[], char *const env[])
{
    signal(SIGPIPE, SIG_IGN); //  a child that died must fail a write, not kill the test
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC)) return NULL;
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]);
        close(in[1]);
        return NULL;
    }
    //  Environment: ours plus the extras (extras win by coming first).
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env])
        n_env++;
    while (env && env[n_extra])
        n_extra++;
    char **envp = (char **)calloc(n_env + n_extra + 1, sizeof(char *));
    for (size_t i = 0; i < n_extra; i++)
        envp[i] = env[i];
    for (size_t i = 0; i < n_env; i++)
        envp[n_extra + i] = environ[i];
    pid_t pid = s_spawn(argv, envp, in[0], out[1], 0);
    free(envp);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return NULL;
    }
    zt_proc_t *self = (zt_proc_t *)calloc(1, sizeof(zt_proc_t));
    self->pid = pid;
    self->in_fd = in[1];
    self->out_fd = out[0];
    return self;
}

zt_proc_t *zt_cli_start(const char *arg, ...)
{
    const char *cli = getenv("ZC_CLI");
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)(cli ? cli : "zcluster");
    va_list args;
    va_start(args, arg);
    for (const char *a = arg; a && argc < 63; a = va_arg(args, const char *))
        argv[argc++] = (char *)a;
    va_end(args);
    argv[argc] = NULL;
    return zt_proc_start(argv, NULL);
}

int zt_proc_send(zt_proc_t *self, const char *format, ...)
{
    char line[8192];
    va_list args;
    va_start(args, format);
    int len = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    if (len < 0 || len >= (int)sizeof line - 1) return -1;
    line[len++] = '\n';
    for (int done = 0; done < len;) {
        ssize_t n = write(self->in_fd, line + done, (size_t)(len - done));
        if (n <= 0) return -1;
        done += (int)n;
    }
    return 0;
}

//  Takes one complete line out of the buffer, if there is one.
static const char *s_take_line(zt_proc_t *self)
{
    char *eol = (char *)memchr(self->buf, '\n', self->used);
    if (!eol) return NULL;
    size_t len = (size_t)(eol - self->buf);
    memcpy(self->line, self->buf, len);
    self->line[len] = 0;
    self->used -= len + 1;
    memmove(self->buf, eol + 1, self->used);
    return self->line;
}

const char *zt_proc_expect(zt_proc_t *self, const char *prefix, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (1) {
        const char *line;
        while ((line = s_take_line(self)) != NULL)
            if (strncmp(line, prefix, strlen(prefix)) == 0) return line;
        int64_t left = deadline - zt_now_ms();
        if (left <= 0) return NULL;
        struct pollfd pfd = {self->out_fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0) continue;
        if (self->used == sizeof self->buf)
            self->used = 0; //  an absurd line: drop it rather than stall
        ssize_t n = read(self->out_fd, self->buf + self->used, sizeof self->buf - self->used);
        if (n <= 0) return NULL;
        self->used += (size_t)n;
    }
}

void zt_proc_drain(zt_proc_t *self, int ms)
{
    zt_proc_expect(self, "\001", ms); //  no line starts with \001
}

int zt_proc_command(zt_proc_t *self, const char *format, ...)
{
    char line[8192];
    va_list args;
    va_start(args, format);
    vsnprintf(line, sizeof line, format, args);
    va_end(args);
    if (zt_proc_send(self, "%s", line)) return -1;
    char command[64];
    snprintf(command, sizeof command, "%.*s", (int)strcspn(line, " "), line);
    char ok[80], error[80];
    snprintf(ok, sizeof ok, "ok %s", command);
    snprintf(error, sizeof error, "error %s", command);
    //  Lines that are not the answer (messages printed meanwhile) are kept
    //  for later zt_proc_expect calls.
    char *kept = NULL;
    size_t kept_len = 0;
    int rc = -2;
    int64_t deadline = zt_now_ms() + 10000;
    while (rc == -2 && zt_now_ms() < deadline) {
        const char *reply = zt_proc_expect(self, "", (int)(deadline - zt_now_ms()));
        if (!reply) break;
        if (strncmp(reply, ok, strlen(ok)) == 0)
            rc = 0;
        else if (strncmp(reply, error, strlen(error)) == 0) {
            fprintf(stderr, "  command '%s' answered: %s\n", line, reply);
            rc = -1;
        } else {
            size_t len = strlen(reply);
            kept = (char *)realloc(kept, kept_len + len + 1);
            memcpy(kept + kept_len, reply, len);
            kept[kept_len + len] = '\n';
            kept_len += len + 1;
        }
    }
    if (rc == -2) fprintf(stderr, "  command '%s' got no answer\n", line);
    if (kept_len) {
        if (kept_len + self->used <= sizeof self->buf) {
            memmove(self->buf + kept_len, self->buf, self->used);
            memcpy(self->buf, kept, kept_len);
            self->used += kept_len;
        }
        free(kept);
    }
    return rc == 0 ? 0 : -1;
}

pid_t zt_proc_pid(zt_proc_t *self)
{
    return self->pid;
}

void zt_proc_signal(zt_proc_t *self, int sig)
{
    if (!self->exited) kill(self->pid, sig);
}

int zt_proc_wait(zt_proc_t *self, int timeout_ms)
{
    int64_t deadline = zt_now_ms() + timeout_ms;
    while (!self->exited) {
        pid_t rc = waitpid(self->pid, &self->status, WNOHANG);
        if (rc == self->pid) {
            self->exited = 1;
            break;
        }
        if (rc < 0 || zt_now_ms() >= deadline) return -1;
        usleep(5000);
    }
    return self->status;
}

void zt_proc_destroy(zt_proc_t **self_p)
{
    zt_proc_t *self = *self_p;
    if (!self) return;
    close(self->in_fd); //  a console exits on end of input
    if (zt_proc_wait(self, 2000) == -1) {
        zt_proc_signal(self, SIGKILL);
        zt_proc_wait(self, 5000);
    }
    close(self->out_fd);
    free(self);
    *self_p = NULL;
}

long long zt_field(const char *line, const char *key)
{
    size_t len = strlen(key);
    for (const char *p = line; p && *p; p = strchr(p, ' ')) {
        while (*p == ' ')
            p++;
        if (strncmp(p, key, len) == 0 && p[len] == '=') return atoll(p + len + 1);
    }
    return -1;
}

long long zt_info_script_calls(const char *info)
{
    long long total = 0, calls;
    for (const char *line = info; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (sscanf(line, "cmdstat_evalsha:calls=%lld", &calls) == 1 ||
            sscanf(line, "cmdstat_eval:calls=%lld", &calls) == 1)
            total += calls;
    return total;
}

//  --------------------------------------------------------------------------
//  A private redis-server

struct _zt_redis_t {
    char dir[64];
    char socket[128];
    char url[160];
    pid_t pid;
};

//  Sends PING on the socket; returns 1 if the server answered PONG.
static int s_redis_ping(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) return 0;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int ok = 0;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && write(fd, "PING\r\n", 6) == 6) {
        char reply[16] = {0};
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 1000) == 1 && read(fd, reply, sizeof reply - 1) > 0)
            ok = strncmp(reply, "+PONG", 5) == 0;
    }
    close(fd);
    return ok;
}

static int s_redis_spawn(zt_redis_t *self)
{
    char *argv[] = {"redis-server", "--port",           "0",       "--unixsocket",
                    self->socket,   "--unixsocketperm", "700",     "--dir",
                    self->dir,      "--save",           "",        "--appendonly",
                    "no",           "--loglevel",       "warning", NULL};
    //  Not the test's stdout/stderr: a server left behind by a crashed test
    //  must not hold ctest's pipe open.
    self->pid = s_spawn(argv, environ, -1, -1, 1);
    if (self->pid < 0) {
        self->pid = 0;
        return -1;
    }
    for (int i = 0; i < 500; i++) {
        if (s_redis_ping(self->socket)) return 0;
        usleep(10000);
    }
    fprintf(stderr, "redis-server did not answer on %s\n", self->socket);
    return -1;
}

zt_redis_t *zt_redis_start(void)
{
    zt_redis_t *self = (zt_redis_t *)calloc(1, sizeof(zt_redis_t));
    snprintf(self->dir, sizeof self->dir, "/tmp/zc-test-redis-XXXXXX");
    if (!mkdtemp(self->dir)) {
        free(self);
        return NULL;
    }
    snprintf(self->socket, sizeof self->socket, "%s/redis.sock", self->dir);
    snprintf(self->url, sizeof self->url, "unix://%s", self->socket);
    if (s_redis_spawn(self)) {
        zt_redis_destroy(&self);
        return NULL;
    }
    return self;
}

const char *zt_redis_url(zt_redis_t *self)
{
    return self->url;
}

const char *zt_redis_socket(zt_redis_t *self)
{
    return self->socket;
}

void zt_redis_stop(zt_redis_t *self, int stop_hard)
{
    if (self->pid > 0) {
        kill(self->pid, stop_hard ? SIGKILL : SIGTERM);
        waitpid(self->pid, NULL, 0);
        self->pid = 0;
    }
}

int zt_redis_restart(zt_redis_t *self)
{
    zt_redis_stop(self, 0);
    return s_redis_spawn(self);
}

void zt_redis_destroy(zt_redis_t **self_p)
{
    zt_redis_t *self = *self_p;
    if (!self) return;
    zt_redis_stop(self, 1);
    char path[256];
    snprintf(path, sizeof path, "%s/redis.sock", self->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/dump.rdb", self->dir);
    unlink(path);
    rmdir(self->dir);
    free(self);
    *self_p = NULL;
}
