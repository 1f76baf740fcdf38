/*  zc_spawn — fork and exec for the supervisor's children.

    fork (not posix_spawn) because the child must do things posix_spawn
    cannot: ask for a signal when its parent dies (prctl PR_SET_PDEATHSIG),
    pin itself to a CPU, and close every descriptor the master holds (Redis
    connections and HTTP sockets are not all close-on-exec). Between fork
    and exec the child calls nothing that takes a lock (no malloc, no
    stdio), so a master with other threads is safe too.

    Why a death signal: a master that is SIGKILLed (or crashes) cannot stop
    its children, and orphans would keep serving, holding ports, or keep a
    private redis-server running for nobody. The kernel sends the signal
    when the parent goes; the getppid() check after prctl covers a master
    that died between fork and prctl (the child is then already orphaned
    and would never get the signal).

    An exec failure is sent back as an errno over a close-on-exec pipe: the
    parent reads either 0 bytes (exec succeeded and closed the pipe) or the
    errno, so a missing program is an error at spawn time rather than a
    mysterious exit code 127.
*/
#include "zc_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

//  Closes every descriptor from first up.
static void s_close_from(int first)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned int)first, ~0U, 0) == 0) return;
#endif
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (int fd = first; fd < max; fd++)
        close(fd);
}

static void s_child(const zc_spawn_t *spawn, int report_fd, pid_t parent)
{
    setpgid(0, 0);
    if (spawn->death_signal > 0) {
        prctl(PR_SET_PDEATHSIG, spawn->death_signal);
        if (getppid() != parent) //  the master died before prctl
            _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); //  SIG_IGN would survive exec
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        if (spawn->quiet) dup2(null, STDOUT_FILENO);
        if (null > STDERR_FILENO && null != spawn->fd3 && null != report_fd) close(null);
    }
    //  Move the report pipe out of the way of fd 3, then place fd3.
    if (report_fd <= 3) {
        int moved = fcntl(report_fd, F_DUPFD_CLOEXEC, 4);
        report_fd = moved >= 0 ? moved : report_fd;
    }
    if (spawn->fd3 >= 0) {
        if (spawn->fd3 != 3) dup2(spawn->fd3, 3);
        fcntl(3, F_SETFD, 0); //  inherited across exec
    } else
        close(3);
    if (report_fd > 4) dup2(report_fd, 4), report_fd = 4;
    fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    s_close_from(report_fd + 1);
    if (spawn->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(spawn->cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    execvpe(spawn->argv[0], spawn->argv, spawn->envp);
    int err = errno;
    ssize_t ignored = write(report_fd, &err, sizeof err);
    (void)ignored;
    _exit(127);
}

pid_t zc_spawn(const zc_spawn_t *spawn)
{
    int report[2];
    if (pipe2(report, O_CLOEXEC)) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(report[0]);
        close(report[1]);
        errno = err;
        return -1;
    }
    if (pid == 0) {
        close(report[0]);
        s_child(spawn, report[1], parent);
    }
    close(report[1]);
    //  Also set it here, so the child is in its group before we signal it.
    setpgid(pid, pid);
    int err = 0;
    ssize_t n;
    do
        n = read(report[0], &err, sizeof err);
    while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof err) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        errno = err;
        return -1;
    }
    return pid;
}
