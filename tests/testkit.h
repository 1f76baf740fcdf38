/*  testkit — what every zcluster test uses: checks, child processes spoken
    to by lines, and a private redis-server.

    Checks count and never abort, so one run reports every failure; a test's
    main ends with `return zt_done();`, which prints "N passed, N failed"
    and returns the exit code.
*/
#ifndef ZC_TESTKIT_H_INCLUDED
#define ZC_TESTKIT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

//  Records one check; prints the failing expression and location.
#define ZT_CHECK(cond) zt_check((cond) != 0, #cond, __FILE__, __LINE__)
//  Checks two integers are equal and prints both when not.
#define ZT_EQ(a, b) zt_check_eq((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)

int zt_check(int ok, const char *expr, const char *file, int line);
int zt_check_eq(long long a, long long b, const char *ea, const char *eb, const char *file,
                int line);

//  Prints a section title.
void zt_section(const char *name);

//  Prints "N passed, N failed" and returns 0 if nothing failed, else 1.
int zt_done(void);

//  Milliseconds on a monotonic clock.
int64_t zt_now_ms(void);

//  A child process with its stdin and stdout on pipes (stderr is inherited).
typedef struct _zt_proc_t zt_proc_t;

//  Every child the kit starts dies with the test (SIGKILL on the test's end,
//  crash or kill included, through PR_SET_PDEATHSIG); zt_fork is fork with
//  the same guarantee, for tests that fork themselves.
pid_t zt_fork(void);

//  Starts argv[0] (looked up in PATH) with extra environment entries
//  ("NAME=value", NULL-terminated, may be NULL). Returns NULL on failure.
zt_proc_t *zt_proc_start(char *const argv[], char *const env[]);

//  Starts `zcluster` (the binary named by $ZC_CLI) with these arguments,
//  NULL-terminated.
zt_proc_t *zt_cli_start(const char *arg, ...);

//  Writes one line (a newline is added) to the child's stdin. Returns 0 or -1.
int zt_proc_send(zt_proc_t *self, const char *format, ...) __attribute__((format(printf, 2, 3)));

//  Waits up to timeout_ms for a line of output starting with prefix, reading
//  past other lines. Returns the whole line (valid until the next call), or
//  NULL on timeout or end of output.
const char *zt_proc_expect(zt_proc_t *self, const char *prefix, int timeout_ms);

//  Reads and discards the child's output for ms milliseconds.
void zt_proc_drain(zt_proc_t *self, int ms);

//  Sends a command and waits for its one-line answer ("ok CMD" or "error
//  CMD..."). Returns 0 if the answer was ok.
int zt_proc_command(zt_proc_t *self, const char *format, ...) __attribute__((format(printf, 2, 3)));

//  Returns the child's pid.
pid_t zt_proc_pid(zt_proc_t *self);

//  Sends a signal to the child.
void zt_proc_signal(zt_proc_t *self, int sig);

//  Waits up to timeout_ms for the child to exit; returns its exit status
//  as from waitpid, or -1 on timeout.
int zt_proc_wait(zt_proc_t *self, int timeout_ms);

//  Kills the child if it still runs, reaps it, frees everything; idempotent.
void zt_proc_destroy(zt_proc_t **self_p);

//  Parses "key=value" out of a line of space-separated pairs; -1 if absent.
long long zt_field(const char *line, const char *key);

//  The script calls (EVAL and EVALSHA) counted in the text of Redis's
//  `INFO commandstats`: a test that a bulk operation is cut into slices
//  counts them before and after.
long long zt_info_script_calls(const char *info);

//  A private redis-server on a unix socket in a temporary directory.
typedef struct _zt_redis_t zt_redis_t;

//  Starts redis-server (from PATH) and waits until it answers. NULL on failure.
zt_redis_t *zt_redis_start(void);

//  Returns its URL, "unix:///tmp/.../redis.sock".
const char *zt_redis_url(zt_redis_t *self);

//  Returns the socket path.
const char *zt_redis_socket(zt_redis_t *self);

//  Stops the server (SIGKILL if stop_hard, else SIGTERM) and waits for it.
//  The directory is kept, so zt_redis_restart can bring it back.
void zt_redis_stop(zt_redis_t *self, int stop_hard);

//  Starts the server again on the same socket. Returns 0 or -1.
int zt_redis_restart(zt_redis_t *self);

//  Stops the server, removes its directory, frees it; idempotent.
void zt_redis_destroy(zt_redis_t **self_p);

#endif
