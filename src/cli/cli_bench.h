/*  zcluster bench — shared pieces of the benchmark scenarios (CLI only).

    A scenario runs its project path and its raw baseline the same way:
    worker processes are forked (before the parent touches ZeroMQ, so each
    starts clean), talk to the parent over pipes, and everything goes over
    tcp loopback. A message counts only when received.
*/
#ifndef ZC_CLI_BENCH_H_INCLUDED
#define ZC_CLI_BENCH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "zc_security.h"

#define BENCH_MAX_NODES 16
#define BENCH_HWM       100000

typedef struct {
    size_t size;
    long count;
    int nodes;
    int json;
    const char *redis_url; //  for scenarios that need Redis
    double rate;           //  --rate: messages or calls offered per second; 0: as fast as possible
    int summary;           //  no scenario named: one table at the end, notes on stderr
    int batch;             //  --batch: the sending mesh batches (docs/PROTOCOL.md 8.1)
} bench_options_t;

//  One measured path: a rate, and latency percentiles where they apply.
//  Initialise with BENCH_RESULT (name).
typedef struct {
    const char *name;
    double rate;                    //  per second, of delivered messages or completed calls
    long received;                  //  messages or calls that completed
    double p50_us, p99_us, p999_us; //  < 0 when not measured
    long sent;                      //  messages or calls offered; 0 when not counted
    double cpu_us, redis_cpu_us;    //  CPU per operation of this process and of redis-server;
                                    //  < 0 when not measured
} bench_result_t;

#define BENCH_RESULT(name)                                                                         \
    {                                                                                              \
        (name), 0, 0, -1, -1, -1, 0, -1, -1                                                        \
    }

//  The fraction of what was sent that was delivered, or -1 if not counted.
double bench_delivered(const bench_result_t *result);

//  Forked helper processes, each with a pipe each way.
typedef struct {
    int count;
    pid_t pid[BENCH_MAX_NODES];
    int to[BENCH_MAX_NODES];   //  parent writes
    int from[BENCH_MAX_NODES]; //  parent reads
} bench_children_t;

typedef int(bench_child_fn)(int index, const bench_options_t *opt, int in_fd, int out_fd,
                            void *arg);

//  Forks count children running fn. Returns 0 or -1.
int bench_spawn(bench_children_t *children, int count, bench_child_fn *fn,
                const bench_options_t *opt, void *arg);

//  Closes the pipes and reaps the children (SIGKILL first if kill_first).
//  Then shuts CZMQ down, so the next scenario forks from a clean parent.
void bench_reap(bench_children_t *children, int kill_first);

//  Reads one line (without the newline) within timeout_ms. Returns 0 or -1.
int bench_read_line(int fd, char *line, size_t cap, int timeout_ms);

//  Writes one formatted line. Returns 0 or -1.
int bench_write_line(int fd, const char *format, ...) __attribute__((format(printf, 2, 3)));

//  Reads a line from every child (e.g. "ready"). Returns 0 if all answered.
int bench_gather(bench_children_t *children, int timeout_ms);

//  Receives a scenario's next message within timeout_ms: returns its role
//  byte ('w' warm-up, 'b' measured, ...), or 0 if none came. *data gets the
//  payload (role byte first), or NULL where the scenario does not keep it.
typedef char(bench_next_fn)(void *arg, int timeout_ms, const char **data);

//  A receiving child's part: waits for a warm-up message (10 s at most),
//  says "ready", counts measured messages up to opt->count (until 1 s
//  passes without one) and reports "RECEIVED NANOSECONDS", first to last.
//  With --rate each payload carries its intended send time (bench_stamp)
//  and the line adds P50 P99 P99.9 of now - that time, in nanoseconds.
//  Returns 0, or 1 if no warm-up came.
int bench_count(const bench_options_t *opt, int out_fd, bench_next_fn *next, void *arg);

//  Sends one message (a warm-up, in bench_warm_up). Returns 0 or -1.
typedef int(bench_send_fn)(void *arg);

//  Sends warm-ups until every child said it is ready (10 s at most).
//  Returns 0, or -1 if some child did not, or send failed.
int bench_warm_up(bench_children_t *children, bench_send_fn *send, void *arg);

//  Reads every child's "RECEIVED NANOSECONDS [P50 P99 P99.9]" (bench_count):
//  the worst receiver's figures go into result, each on its own (fewest
//  received, lowest rate, highest percentiles); received -1 if none reported.
void bench_collect(bench_children_t *children, bench_result_t *result);

//  --rate: writes the intended send time (bench_now_ns) into payload bytes
//  1..8 (the payload has at least BENCH_STAMP_MIN bytes), and reads it back.
#define BENCH_STAMP_MIN 9
void bench_stamp(char *payload, int64_t intended);
int64_t bench_stamp_read(const char *payload);

//  --rate: the intended send time of message i, counted from start.
int64_t bench_intended(const bench_options_t *opt, int64_t start, long i);

//  --rate: waits until the time intended (ns), calling wait(arg, ms) for
//  the part of the wait that is longer than a couple of milliseconds and
//  wait(arg, 0) while spinning through the rest; wait may do useful work
//  (take replies) and returns early. A sender that is late does not wait.
typedef void(bench_wait_fn)(void *arg, int timeout_ms);
void bench_pace(int64_t intended, bench_wait_fn *wait, void *arg);

//  With the cluster's credentials on (--keys FILE or --curve: $ZC_KEYS set),
//  secures a raw baseline socket (libzmq handle) as the mesh secures its
//  own, before it binds (server) or connects (client), so that the ratio
//  compares like with like. Returns the configuration, which the caller
//  destroys after the socket; NULL when off (or on failure, said on stderr).
zc_security_t *bench_secure(void *socket, int server);

//  Nanoseconds on a monotonic clock.
int64_t bench_now_ns(void);

//  Fills p50/p99/p99.9 in microseconds from samples (ns), sorting them.
void bench_percentiles(int64_t *samples, long count, bench_result_t *result);

//  The scenarios. Each fills project and baseline; returns 0 or -1.
int bench_publish(const bench_options_t *opt, int group, bench_result_t *project,
                  bench_result_t *baseline);
//  results: one way (project, baseline), then round trip (project, baseline).
int bench_whisper(const bench_options_t *opt, bench_result_t results[4]);
//  rpc (all = 0) or rpc-all (all = 1); needs opt->redis_url.
int bench_rpc(const bench_options_t *opt, int all, bench_result_t *project,
              bench_result_t *baseline);

//  Prints one comparison (a pair of table rows, or one JSON object with
//  --json); latency: compare p50s rather than rates. Also records it for --plot.
void bench_report(const char *scenario, const bench_options_t *opt, const bench_result_t *project,
                  const bench_result_t *baseline, int latency);

//  The Redis scenarios (cli_bench_redis.c) report their own comparisons
//  with bench_report and cap their counts. Each returns 0 or -1.
//  redis-pubsub: Redis PUBLISH to K subscribers; baseline zcluster publish.
int bench_redis_pubsub(const bench_options_t *opt);
//  cache: zc_cache save/load, batches and single keys; baseline raw SET/GET.
int bench_cache(const bench_options_t *opt);
//  tasks: enqueue_many and worker processing; baseline raw LPUSH / RPOP drain.
int bench_tasks(const bench_options_t *opt);
//  tasks-default: the same with a worker at default settings but its
//  concurrency (8), timed from its first finished run.
int bench_tasks_default(const bench_options_t *opt);

//  --plot (cli_bench_plot.c). Begin checks for gnuplot and starts
//  recording every bench_report; end writes FILE.dat and FILE.gp next to
//  the png and draws it. Begin and end return 0 or -1.
int bench_plot_begin(const char *png);
void bench_plot_record(const char *measure, const bench_options_t *opt,
                       const bench_result_t *project, const bench_result_t *baseline);
int bench_plot_end(void);

#endif
