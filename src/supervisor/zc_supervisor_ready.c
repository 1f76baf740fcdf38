/*  zc_supervisor_ready — the worker's side of the master's contract.

    The master hands each worker one end of a unix SOCK_SEQPACKET socket
    pair as fd ZC_READY_FD and reads lines from it: "ready", and "status
    TEXT". A packet socket rather than a pipe for three reasons: each write
    arrives whole (threads cannot interleave lines), send() with
    MSG_NOSIGNAL cannot kill a worker with SIGPIPE when the master is gone,
    and MSG_DONTWAIT means a worker never blocks on a master that stopped
    reading. Programs in any language can take part: write "ready\n" to
    that fd.

    The descriptor is checked to be a socket before use (a process that is
    not a worker, or one whose fd was reused, writes nothing) and made
    close-on-exec, so programs the worker runs do not inherit it.
*/
#include "zc_supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_fd = -1;

static void s_find_fd(void)
{
    const char *text = getenv("ZC_READY_FD");
    if (!text || !*text || !getenv("ZC_MASTER_PID")) return;
    char *end;
    long fd = strtol(text, &end, 10);
    struct stat st;
    if (*end || fd < 0 || fd > 65535 || fstat((int)fd, &st) || !S_ISSOCK(st.st_mode)) return;
    fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    s_fd = (int)fd;
}

static int s_send(const char *line, size_t len)
{
    pthread_once(&s_once, s_find_fd);
    if (s_fd < 0) return 0;
    ssize_t n;
    do
        n = send(s_fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len ? 0 : -1;
}

int zc_supervisor_ready(void)
{
    return s_send("ready\n", 6);
}

int zc_supervisor_status(const char *text)
{
    char line[8 + 256 + 2];
    int len = snprintf(line, sizeof line, "status %.256s", text ? text : "");
    for (int i = 7; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    line[len++] = '\n';
    return s_send(line, (size_t)len);
}

int zc_supervisor_managed(void)
{
    pthread_once(&s_once, s_find_fd);
    return s_fd >= 0;
}
