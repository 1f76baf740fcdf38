/*  zc_spawn — start a child process the way the supervisor wants it
    (internal to libzcluster).

    The child gets its own process group (a terminal's Ctrl-C reaches the
    master only), a signal when the master dies (PR_SET_PDEATHSIG), default
    signal handling, no inherited descriptors but stdin, stdout, stderr and
    an optional pipe at fd 3, and optionally one CPU. A failed exec is
    reported to the caller with its errno instead of looking like a crash.

    The death signal is sent when the *thread* that forked exits, not only
    when the process does: call zc_spawn from a thread that outlives the
    child (the supervisor forks only from the thread in zc_supervisor_run,
    which stops every child before it returns).
*/
#ifndef ZC_SPAWN_H_INCLUDED
#define ZC_SPAWN_H_INCLUDED

#include <sys/types.h>

typedef struct {
    char *const *argv; //  argv[0] is looked up in PATH
    char *const *envp; //  the whole environment
    int fd3;           //  descriptor to hand over as fd 3, or -1
    int cpu;           //  CPU to pin the child to, or -1
    int quiet;         //  1: stdout to /dev/null
    int death_signal;  //  sent to the child when the master dies (0: none)
} zc_spawn_t;

//  Starts the child. Returns its pid, or -1 with errno set: from fork, or
//  from exec in the child (ENOENT, EACCES...), in which case the child has
//  already been reaped.
pid_t zc_spawn(const zc_spawn_t *spawn);

#endif
