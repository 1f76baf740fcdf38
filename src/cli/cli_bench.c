/*  zcluster bench — throughput and latency of zcluster next to raw libzmq,
    measured in the same run, so the ratio means something on any machine.

    Scenarios (cli_bench_*.c):
      publish  public messages, 1 sender to K receivers; baseline raw PUB/SUB
      shout    group messages to a group of K; baseline raw PUB/SUB with a topic
      whisper  private messages one way (msgs/s) and round trip (p50/p99);
               baseline raw DEALER/ROUTER
      rpc      calls to one node: p50/p99 and calls/s; baseline raw DEALER/ROUTER echo
      rpc-all  calls to all K nodes, gathering: p50/p99; baseline K raw echoes
      redis-pubsub, cache, tasks, tasks-default: the paths through Redis
               (cli_bench_redis.c)

    Publish and shout drop at the high-water mark, zcluster and raw alike:
    every rate counts delivered messages only, and the fraction delivered
    is printed and in --json ("sent", "delivered").

    --rate N offers N messages or calls per second (publish, shout, whisper,
    rpc) and measures latency from each one's intended send time, so a
    backlog shows as latency rather than being hidden by a sender that
    waits (cli_bench_rate.c): p50/p99/p99.9 and the fraction delivered.

    --plot FILE.png runs one scenario at sizes 16..16384 bytes and draws
    project and baseline rates against size with gnuplot; with --rate N, at
    offered loads from N/32 to N, and draws latency against load
    (cli_bench_plot.c).

    Without a scenario: every scenario at a shorter --count (200000), a
    progress line on stderr, and one table at the end.

    --keys FILE (or $ZC_KEYS) runs every mesh and node with the cluster's
    credentials, CURVE authenticated by the ZAP handler, and --curve does so
    with a pair made for the run; the raw baselines then use CURVE too
    (bench_secure), so the ratio still compares like with like. Run once
    with and once without to see what security costs.

    Scenarios that need Redis (the registry) start a private redis-server
    on a unix socket unless --redis is given.
*/
#include "cli.h"
#include "cli_args.h"
#include "cli_bench.h"
#include "zc_embedded_redis.h"
#include "zcluster.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

zc_security_t *bench_secure(void *socket, int server)
{
    const char *keys = getenv("ZC_KEYS");
    if (!keys || !*keys) return NULL;
    zc_security_t *security = zc_security_new();
    int rc = zc_security_load(security, keys);
    if (rc == 0)
        rc = server ? zc_security_apply_server(security, socket)
                    : zc_security_apply_client(security, socket, NULL);
    if (rc) {
        fprintf(stderr, "zcluster bench: cannot secure a raw socket: %s\n",
                *zc_security_errstr(security) ? zc_security_errstr(security) : "CURVE failed");
        zc_security_destroy(&security);
    }
    return security;
}

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int bench_read_line(int fd, char *line, size_t cap, int timeout_ms)
{
    size_t used = 0;
    int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    while (used + 1 < cap) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int left = (int)((deadline - bench_now_ns()) / 1000000);
        if (left <= 0 || poll(&pfd, 1, left) <= 0 || read(fd, line + used, 1) != 1) return -1;
        if (line[used] == '\n') break;
        used++;
    }
    line[used] = 0;
    return 0;
}

int bench_write_line(int fd, const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start(args, format);
    int len = vsnprintf(line, sizeof line - 1, format, args);
    va_end(args);
    if (len < 0 || len >= (int)sizeof line - 1) return -1;
    line[len++] = '\n';
    return write(fd, line, (size_t)len) == len ? 0 : -1;
}

int bench_spawn(bench_children_t *children, int count, bench_child_fn *fn,
                const bench_options_t *opt, void *arg)
{
    memset(children, 0, sizeof *children);
    for (int i = 0; i < count; i++) {
        int to[2], from[2];
        if (pipe(to) || pipe(from)) return -1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) {
            close(to[1]);
            close(from[0]);
            //  Earlier children's pipes too: holding them open would hide
            //  the parent's close (end of file) from those children.
            for (int j = 0; j < i; j++) {
                close(children->to[j]);
                close(children->from[j]);
            }
            _exit(fn(i, opt, to[0], from[1], arg));
        }
        close(to[0]);
        close(from[1]);
        children->pid[i] = pid;
        children->to[i] = to[1];
        children->from[i] = from[0];
        children->count++;
    }
    return 0;
}

void bench_reap(bench_children_t *children, int kill_first)
{
    for (int i = 0; i < children->count; i++) {
        if (kill_first) kill(children->pid[i], SIGKILL);
        close(children->to[i]);
        close(children->from[i]);
        waitpid(children->pid[i], NULL, 0);
    }
    children->count = 0;
    zsys_shutdown(); //  the next scenario forks: children must not inherit a context
}

int bench_gather(bench_children_t *children, int timeout_ms)
{
    char line[256];
    for (int i = 0; i < children->count; i++)
        if (bench_read_line(children->from[i], line, sizeof line, timeout_ms)) return -1;
    return 0;
}

//  With --rate, the latency of every measured message (ns); the rest of
//  bench_count's line is written here.
static void s_count_latency(int out_fd, long received, int64_t span, int64_t *samples)
{
    bench_result_t figures = BENCH_RESULT("");
    bench_percentiles(samples, received, &figures);
    bench_write_line(out_fd, "%ld %lld %.0f %.0f %.0f", received, (long long)span,
                     figures.p50_us * 1000, figures.p99_us * 1000, figures.p999_us * 1000);
}

int bench_count(const bench_options_t *opt, int out_fd, bench_next_fn *next, void *arg)
{
    char role;
    const char *data;
    while ((role = next(arg, 10000, &data)) != 'w')
        if (!role) return 1;
    bench_write_line(out_fd, "ready");
    long received = 0;
    int64_t first = 0, last = 0;
    int64_t *samples =
        opt->rate > 0 ? (int64_t *)calloc((size_t)opt->count, sizeof(int64_t)) : NULL;
    //  The rest counts as lost after 1 s without a message (3 intervals at a low --rate).
    int gap_ms = opt->rate > 0 && 3000 / opt->rate > 1000 ? (int)(3000 / opt->rate) : 1000;
    while (received < opt->count) {
        role = next(arg, received ? gap_ms : 10000, &data);
        if (!role) break; //  the rest was lost
        if (role != 'b') continue;
        last = bench_now_ns();
        if (samples && data) samples[received] = last - bench_stamp_read(data);
        if (!received++) first = last;
    }
    if (samples)
        s_count_latency(out_fd, received, last - first, samples);
    else
        bench_write_line(out_fd, "%ld %lld", received, (long long)(last - first));
    free(samples);
    return 0;
}

int bench_warm_up(bench_children_t *children, bench_send_fn *send, void *arg)
{
    int ready = 0;
    int64_t give_up = bench_now_ns() + 10 * 1000000000LL;
    while (ready < children->count && bench_now_ns() < give_up) {
        if (send(arg)) return -1;
        struct pollfd pfd[BENCH_MAX_NODES];
        for (int i = 0; i < children->count; i++)
            pfd[i] = (struct pollfd){children->from[i], POLLIN, 0};
        if (poll(pfd, (nfds_t)children->count, 10) > 0)
            for (int i = 0; i < children->count; i++)
                if (pfd[i].revents & POLLIN) {
                    char line[64];
                    if (bench_read_line(children->from[i], line, sizeof line, 1000) == 0) ready++;
                }
    }
    return ready == children->count ? 0 : -1;
}

void bench_collect(bench_children_t *children, bench_result_t *result)
{
    result->rate = 0;
    result->received = -1;
    for (int i = 0; i < children->count; i++) {
        char line[128];
        long received = 0;
        long long ns = 0;
        double p50 = -1, p99 = -1, p999 = -1;
        if (bench_read_line(children->from[i], line, sizeof line, 60000) ||
            sscanf(line, "%ld %lld %lf %lf %lf", &received, &ns, &p50, &p99, &p999) < 2)
            continue;
        double rate = ns > 0 ? received / (ns / 1e9) : 0;
        int first = result->received < 0;
        if (first || rate < result->rate) result->rate = rate;
        if (first || received < result->received) result->received = received;
        //  ns -> us; the worst receiver's percentiles, each on its own
        if (p50 >= 0 && p50 / 1000 > result->p50_us) result->p50_us = p50 / 1000;
        if (p99 >= 0 && p99 / 1000 > result->p99_us) result->p99_us = p99 / 1000;
        if (p999 >= 0 && p999 / 1000 > result->p999_us) result->p999_us = p999 / 1000;
    }
}

double bench_delivered(const bench_result_t *result)
{
    return result->sent > 0 && result->received >= 0 ? (double)result->received / result->sent : -1;
}

static int s_compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_percentiles(int64_t *samples, long count, bench_result_t *result)
{
    if (count <= 0) {
        result->p50_us = result->p99_us = result->p999_us = -1;
        return;
    }
    qsort(samples, (size_t)count, sizeof(int64_t), s_compare);
    result->p50_us = samples[count / 2] / 1000.0;
    result->p99_us = samples[(count * 99) / 100] / 1000.0;
    result->p999_us = samples[(count * 999) / 1000] / 1000.0;
}

//  --------------------------------------------------------------------------
//  Reporting

static void s_json_result(const bench_result_t *r, const bench_options_t *opt)
{
    printf("\"name\":\"%s\",\"size\":%zu,\"count\":%ld,\"nodes\":%d,\"rate\":%.0f,\"received\":%ld",
           r->name, opt->size, opt->count, opt->nodes, r->rate, r->received);
    if (r->sent > 0) printf(",\"sent\":%ld,\"delivered\":%.4f", r->sent, bench_delivered(r));
    if (opt->rate > 0) printf(",\"offered_rate\":%.0f", opt->rate);
    if (r->p50_us >= 0)
        printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f", r->p50_us, r->p99_us,
               r->p999_us);
    if (r->cpu_us >= 0) printf(",\"cpu_us\":%.2f", r->cpu_us);
    if (r->redis_cpu_us >= 0) printf(",\"redis_cpu_us\":%.2f", r->redis_cpu_us);
}

//  One result as a table row of bench_report.
static void s_text_result(const bench_result_t *r, const bench_options_t *opt)
{
    printf("%-19s %7zu B %3d node(s)", r->name, opt->size, opt->nodes);
    if (r->rate > 0)
        printf(" %11.0f /s", r->rate);
    else
        printf(" %14s", "");
    if (r->p50_us >= 0)
        printf("  p50 %8.1f us  p99 %8.1f us  p99.9 %8.1f us", r->p50_us, r->p99_us, r->p999_us);
    if (r->cpu_us >= 0 && r->redis_cpu_us >= 0)
        printf("  CPU %.1f + redis %.1f us/op", r->cpu_us, r->redis_cpu_us);
    if (r->sent > 0)
        printf("  (%ld of %ld delivered, %.1f %%)\n", r->received, r->sent,
               100 * bench_delivered(r));
    else
        printf("  (%ld received)\n", r->received);
}

//  --------------------------------------------------------------------------
//  The summary table (no scenario named): one row per comparison

#define SUMMARY_ROWS_MAX 32

typedef struct {
    char measure[24];
    double rate[2], p50[2], p99[2], delivered[2]; //  project, baseline
    double ratio;
    int latency;
} s_summary_row_t;

static struct {
    int rows;
    s_summary_row_t row[SUMMARY_ROWS_MAX];
} s_summary;

static void s_summary_record(const char *measure, const bench_result_t *project,
                             const bench_result_t *baseline, double ratio, int latency)
{
    if (s_summary.rows >= SUMMARY_ROWS_MAX) return;
    s_summary_row_t *row = &s_summary.row[s_summary.rows++];
    snprintf(row->measure, sizeof row->measure, "%s", measure);
    const bench_result_t *side[2] = {project, baseline};
    for (int i = 0; i < 2; i++) {
        row->rate[i] = side[i]->rate;
        row->p50[i] = side[i]->p50_us;
        row->p99[i] = side[i]->p99_us;
        row->delivered[i] = bench_delivered(side[i]);
    }
    row->ratio = ratio;
    row->latency = latency;
}

//  A figure with decimals in a column of width, or "-" when not measured.
static void s_summary_cell(double value, int width, int decimals)
{
    char cell[32] = "-";
    if (value >= 0) snprintf(cell, sizeof cell, "%.*f", decimals, value);
    printf(" %*s", width, cell);
}

//  Prints the table of every comparison recorded.
static void s_summary_print(const bench_options_t *opt)
{
    printf("zcluster bench: %zu B messages, %d node(s); each figure zcluster | raw, same run\n\n",
           opt->size, opt->nodes);
    static const int widths[4] = {10, 9, 9, 8}; //  rate, p50, p99, delivered
    printf("%-16s %21s %19s %19s %17s %7s\n", "", "rate /s", "p50 us", "p99 us", "delivered %", "");
    printf("%-16s", "measure");
    for (int i = 0; i < 4; i++)
        printf(" %*s %*s", widths[i], "zcluster", widths[i], "raw");
    printf(" %7s\n", "ratio");
    for (int r = 0; r < s_summary.rows; r++) {
        const s_summary_row_t *row = &s_summary.row[r];
        printf("%-16s", row->measure);
        for (int i = 0; i < 2; i++)
            s_summary_cell(row->rate[i] > 0 ? row->rate[i] : -1, 10, 0);
        for (int i = 0; i < 2; i++)
            s_summary_cell(row->p50[i], 9, 1);
        for (int i = 0; i < 2; i++)
            s_summary_cell(row->p99[i], 9, 1);
        for (int i = 0; i < 2; i++)
            s_summary_cell(row->delivered[i] >= 0 ? 100 * row->delivered[i] : -1, 8, 1);
        printf(" %7.2f%s\n", row->ratio, row->latency ? " p50" : "");
    }
    printf("\nratio: zcluster rate / raw rate, or zcluster p50 / raw p50 (marked p50); "
           "rates count delivered messages only\n");
    fflush(stdout);
}

//  Latency scenarios compare p50s; the others compare rates (of delivered
//  messages). With --rate the load is fixed: every scenario compares p50s.
void bench_report(const char *scenario, const bench_options_t *opt, const bench_result_t *project,
                  const bench_result_t *baseline, int latency)
{
    latency = latency || (opt->rate > 0 && project->p50_us >= 0);
    bench_plot_record(scenario, opt, project, baseline);
    double ratio = latency ? (baseline->p50_us > 0 ? project->p50_us / baseline->p50_us : 0)
                           : (baseline->rate > 0 ? project->rate / baseline->rate : 0);
    if (opt->summary)
        s_summary_record(scenario, project, baseline, ratio, latency);
    else if (opt->json) {
        printf("{\"scenario\":\"%s\",", scenario);
        s_json_result(project, opt);
        printf(",\"baseline\":{");
        s_json_result(baseline, opt);
        printf("},\"ratio\":%.3f}\n", ratio);
    } else {
        if (opt->rate > 0) printf("%s at %.0f offered per second\n", scenario, opt->rate);
        s_text_result(project, opt);
        s_text_result(baseline, opt);
        printf("%-19s %.2f (%s)\n\n", "ratio", ratio,
               latency ? "project p50 / baseline p50" : "project rate / baseline rate");
    }
    fflush(stdout);
}

typedef struct {
    const char *name;
    const char *summary;
} s_scenario_t;

static const s_scenario_t s_scenarios[] = {
    {"publish", "public messages, 1 sender to K receivers (baseline raw PUB/SUB)"},
    {"shout", "group messages to a group of K (baseline raw PUB/SUB with a topic)"},
    {"whisper", "private messages one way, and round trip (baseline raw DEALER/ROUTER)"},
    {"rpc", "calls to one node: p50/p99 and calls/s (baseline raw DEALER/ROUTER echo)"},
    {"rpc-all", "calls to all K nodes, gathering every reply (baseline K raw echoes)"},
    {"redis-pubsub", "Redis PUBLISH to K subscribers (baseline: zcluster publish, same run)"},
    {"cache", "zc_cache save/load, batches of 100 and single (baseline raw SET/GET)"},
    {"tasks", "enqueue_many and worker processing (baseline raw LPUSH / RPOP drain)"},
    {"tasks-default", "the same, the worker at default settings, concurrency 8 (as vs BullMQ)"},
};

static void s_usage(FILE *out)
{
    fprintf(out, "usage: zcluster bench [SCENARIO|all] [--size BYTES] [--count N] [--nodes K] "
                 "[--rate N] [--batch] [--json] [--redis URL] [--plot FILE.png] "
                 "[--curve | --keys FILE]\n\n"
                 "Without a scenario: every scenario, then one table.\n"
                 "--rate N: N messages or calls per second offered (publish, shout, whisper, "
                 "rpc);\n  latency from each one's intended send time, and the fraction "
                 "delivered.\n"
                 "--batch: publish, shout and whisper with batching on in the sending node "
                 "(the\n  raw baselines still send each message as a frame).\n"
                 "--plot FILE.png: rate against size; with --rate N, latency against offered "
                 "load\n  up to N.\n"
                 "--curve or --keys FILE (or $ZC_KEYS): meshes, nodes and raw baselines use "
                 "CURVE.\n\nscenarios:\n");
    for (size_t i = 0; i < sizeof s_scenarios / sizeof s_scenarios[0]; i++)
        fprintf(out, "  %-13s %s\n", s_scenarios[i].name, s_scenarios[i].summary);
}

static int s_run(const char *scenario, const bench_options_t *opt)
{
    bench_result_t project = BENCH_RESULT("zcluster"), baseline = BENCH_RESULT("raw");
    if (opt->batch) project.name = "zcluster-batch";
    int rc = -1;
    if (strcmp(scenario, "publish") == 0 || strcmp(scenario, "shout") == 0) {
        int group = strcmp(scenario, "shout") == 0;
        baseline.name = group ? "zmq-pubsub-topic" : "zmq-pubsub";
        rc = bench_publish(opt, group, &project, &baseline);
        if (rc == 0) bench_report(scenario, opt, &project, &baseline, 0);
    } else if (strcmp(scenario, "whisper") == 0) {
        //  With --rate, one way only: its latency is the figure
        bench_result_t rtt = BENCH_RESULT("zcluster-rtt"), raw_rtt = BENCH_RESULT("zmq-dealer-rtt");
        baseline.name = "zmq-dealer-router";
        bench_result_t results[4] = {project, baseline, rtt, raw_rtt};
        rc = bench_whisper(opt, results);
        if (rc == 0) {
            bench_report("whisper", opt, &results[0], &results[1], 0);
            if (opt->rate <= 0) bench_report("whisper-rtt", opt, &results[2], &results[3], 1);
        }
    } else if (strcmp(scenario, "rpc") == 0 || strcmp(scenario, "rpc-all") == 0) {
        int all = strcmp(scenario, "rpc-all") == 0;
        baseline.name = all ? "zmq-dealer-echo-all" : "zmq-dealer-echo";
        rc = bench_rpc(opt, all, &project, &baseline);
        if (rc == 0) bench_report(scenario, opt, &project, &baseline, 1);
    } else if (strcmp(scenario, "redis-pubsub") == 0)
        rc = bench_redis_pubsub(opt);
    else if (strcmp(scenario, "cache") == 0)
        rc = bench_cache(opt);
    else if (strcmp(scenario, "tasks") == 0)
        rc = bench_tasks(opt);
    else if (strcmp(scenario, "tasks-default") == 0)
        rc = bench_tasks_default(opt);
    else {
        fprintf(stderr, "zcluster bench: unknown scenario '%s'\n", scenario);
        return CLI_USAGE;
    }
    if (rc) {
        fprintf(stderr,
                "zcluster bench: %s failed (a process did not get ready, or Redis failed)\n",
                scenario);
        return 1;
    }
    return 0;
}

//  The value of --size (size) or --count / --nodes: 0, out of every range,
//  if it is not a size or a number.
static int64_t s_value(const char *text, int size)
{
    int64_t value = 0;
    if (size ? cli_args_size(text, 0, INT64_MAX, &value)
             : cli_args_number(text, INT64_MIN, INT64_MAX, &value))
        return 0;
    return value;
}

//  --count or --rate not on the command line (0 is what a bad value reads as).
#define S_NOT_GIVEN INT64_MIN

//  The command line as read so far.
typedef struct {
    bench_options_t *opt;
    int64_t size, count, nodes, rate; //  checked once all are read
    const char *plot;
    int curve; //  --curve: a key pair made for the run
} s_parsed_t;

//  Takes one option (cli_option_fn over an s_parsed_t).
static int s_option(void *self, int option, const char *value)
{
    s_parsed_t *parsed = (s_parsed_t *)self;
    if (option == 's')
        parsed->size = s_value(value, 1);
    else if (option == 'c')
        parsed->count = s_value(value, 0);
    else if (option == 'n')
        parsed->nodes = s_value(value, 0);
    else if (option == 'r')
        parsed->rate = s_value(value, 0);
    else if (option == 'j')
        parsed->opt->json = 1;
    else if (option == 'p')
        parsed->plot = value;
    else if (option == 'C')
        parsed->curve = 1;
    else if (option == 'B')
        parsed->opt->batch = 1;
    return -1;
}

//  Whether scenario runs at a fixed offered rate with --rate.
static int s_paced(const char *scenario)
{
    return strcmp(scenario, "publish") == 0 || strcmp(scenario, "shout") == 0 ||
           strcmp(scenario, "whisper") == 0 || strcmp(scenario, "rpc") == 0;
}

//  Reads the command line into *opt, *scenario (NULL: none named), *plot
//  and *curve. Returns -1 to go on, or the exit code.
static int s_parse(int argc, char **argv, bench_options_t *opt, const char **scenario,
                   const char **plot, int *curve)
{
    static struct option options[] = {{"size", required_argument, 0, 's'},
                                      {"count", required_argument, 0, 'c'},
                                      {"nodes", required_argument, 0, 'n'},
                                      {"json", no_argument, 0, 'j'},
                                      CLI_OPTION_REDIS,
                                      CLI_OPTION_KEYS,
                                      {"curve", no_argument, 0, 'C'},
                                      {"plot", required_argument, 0, 'p'},
                                      {"rate", required_argument, 0, 'r'},
                                      {"batch", no_argument, 0, 'B'},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    s_parsed_t parsed = {opt, 64, S_NOT_GIVEN, 1, S_NOT_GIVEN, NULL, 0};
    cli_cluster_t where = {0};
    cli_args_t args = {"s:c:n:jh", options, s_usage, &where, NULL, s_option, &parsed};
    int rc = cli_args_parse(&args, argc, argv);
    if (rc >= 0) return rc;
    int64_t size = parsed.size, count = parsed.count, nodes = parsed.nodes;
    *plot = parsed.plot;
    *curve = parsed.curve;
    if (optind < argc - 1) {
        s_usage(stderr);
        return CLI_USAGE;
    }
    *scenario = optind < argc ? argv[optind] : NULL;
    //  --rate: 3 s of the offered load unless --count says otherwise; the
    //  table of every scenario: a shorter run than one scenario's
    int paced = parsed.rate != S_NOT_GIVEN;
    if (!paced) parsed.rate = 0;
    if (count == S_NOT_GIVEN)
        count = parsed.rate > 0 ? (parsed.rate * 3 > 100 ? parsed.rate * 3 : 100)
                : *scenario     ? 1000000
                                : 200000;
    if (size < 1 || size > 1024 * 1024 || count < 1 || count > LONG_MAX || nodes < 1 ||
        nodes > BENCH_MAX_NODES || (paced && (parsed.rate < 1 || parsed.rate > 100000000))) {
        fprintf(stderr,
                "zcluster bench: --size 1..1048576, --count >= 1, --nodes 1..%d, "
                "--rate 1..100000000\n",
                BENCH_MAX_NODES);
        return CLI_USAGE;
    }
    if (*plot && (!*scenario || strcmp(*scenario, "all") == 0)) {
        fprintf(stderr, "zcluster bench: --plot takes one scenario, not all\n");
        return CLI_USAGE;
    }
    if (paced && (!*scenario || !s_paced(*scenario) || size < BENCH_STAMP_MIN)) {
        fprintf(stderr,
                "zcluster bench: --rate takes one of publish, shout, whisper, rpc, and --size "
                "of at least %d (the payload carries its send time)\n",
                BENCH_STAMP_MIN);
        return CLI_USAGE;
    }
    opt->rate = (double)parsed.rate;
    opt->size = (size_t)size;
    opt->count = (long)count;
    opt->nodes = (int)nodes;
    opt->redis_url = where.redis;
    return -1;
}

//  A private redis-server, as a master would start, in a new directory
//  dir (cap bytes) under /tmp. Returns it, or NULL after saying why (and
//  removing dir).
static zc_embedded_redis_t *s_private_redis(char *dir, size_t cap)
{
    char err[256] = "cannot create a directory in /tmp";
    snprintf(dir, cap, "/tmp/zc-bench-XXXXXX");
    int made = mkdtemp(dir) != NULL;
    zc_embedded_redis_t *redis = made ? zc_embedded_redis_new(dir) : NULL;
    if (!redis || zc_embedded_redis_start(redis, 5000, err, sizeof err)) {
        fprintf(stderr, "zcluster bench: private redis-server: %s\n", err);
        zc_embedded_redis_destroy(&redis);
        if (made) rmdir(dir);
        *dir = 0;
    }
    return redis;
}

//  --plot: the scenario at each size, with at most 64 MB of payload per
//  run; with --rate N, at loads up to N, each for as long as N's run. Then
//  the plot. Returns the exit code.
static int s_run_plot(const char *scenario, const bench_options_t *opt)
{
    static const size_t plot_sizes[] = {16, 64, 256, 1024, 4096, 16384};
    static const double plot_loads[] = {1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0 / 2, 3.0 / 4, 1};
    size_t points = opt->rate > 0 ? sizeof plot_loads / sizeof plot_loads[0]
                                  : sizeof plot_sizes / sizeof plot_sizes[0];
    int rc = 0;
    for (size_t i = 0; i < points && rc == 0; i++) {
        bench_options_t at = *opt;
        if (opt->rate > 0) {
            at.rate = opt->rate * plot_loads[i];
            at.count = (long)(opt->count * plot_loads[i]);
            at.count = at.count < 100 ? 100 : at.count;
        } else {
            at.size = plot_sizes[i];
            long most = (64L << 20) / (long)at.size;
            at.count = at.count > most ? most : at.count;
        }
        rc = s_run(scenario, &at);
    }
    return rc == 0 && bench_plot_end() ? 1 : rc;
}

//  Every scenario in turn, until one fails; without a scenario named, a
//  progress line on stderr and the table at the end. Returns the exit code.
static int s_run_all(const bench_options_t *opt)
{
    int rc = 0;
    int total = (int)(sizeof s_scenarios / sizeof s_scenarios[0]);
    for (int i = 0; i < total && rc == 0; i++) {
        if (opt->summary)
            fprintf(stderr, "\rzcluster bench: [%d/%d] %-12s", i + 1, total, s_scenarios[i].name);
        rc = s_run(s_scenarios[i].name, opt);
    }
    if (opt->summary) {
        fprintf(stderr, "\r%50s\r", "");
        if (rc == 0) s_summary_print(opt);
    }
    return rc;
}

//  --curve: a cluster key pair for this run, in a new directory dir (cap
//  bytes) under /tmp, named by $ZC_KEYS. Returns 0, or -1 after saying why.
static int s_run_keys(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/zc-bench-keys-XXXXXX");
    if (!mkdtemp(dir)) {
        *dir = 0;
        fprintf(stderr, "zcluster bench: cannot create a directory in /tmp\n");
        return -1;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/cluster.keys", dir);
    zc_security_t *security = zc_security_new();
    int rc = zc_security_set_curve(security, NULL, NULL) || zc_security_save(security, path);
    if (rc)
        fprintf(stderr, "zcluster bench: cannot make a key pair: %s\n",
                zc_security_errstr(security));
    zc_security_destroy(&security);
    return rc ? -1 : setenv("ZC_KEYS", path, 1);
}

//  Removes what s_run_keys made.
static void s_run_keys_remove(const char *dir)
{
    if (!*dir) return;
    char path[128];
    snprintf(path, sizeof path, "%s/cluster.keys", dir);
    unlink(path);
    rmdir(dir);
}

int cli_bench(int argc, char **argv)
{
    bench_options_t opt = {64, 1000000, 1, 0, NULL, 0, 0, 0};
    const char *scenario = NULL, *plot = NULL;
    int curve = 0;
    int rc = s_parse(argc, argv, &opt, &scenario, &plot, &curve);
    if (rc >= 0) return rc;
    opt.summary = !scenario && !opt.json;
    char keys_dir[64] = "";
    if (curve && s_run_keys(keys_dir, sizeof keys_dir)) return 1;
    const char *keys = getenv("ZC_KEYS");
    int secure = keys && *keys;
    //  Without credentials every mesh would warn that it is unauthenticated:
    //  said once here instead.
    zc_log_set_level(secure ? ZC_LOG_WARNING : ZC_LOG_ERROR);
    fprintf(stderr, "zcluster bench: security %s\n",
            secure ? "CURVE (cluster keys, ZAP), raw baselines too"
                   : "off (--curve or --keys FILE)");
    signal(SIGPIPE, SIG_IGN);
    if (plot && bench_plot_begin(plot)) return 1;
    //  Scenarios through Redis get a private redis-server, as a master would.
    char dir[64] = "";
    zc_embedded_redis_t *redis = NULL;
    if (!opt.redis_url) {
        if (!(redis = s_private_redis(dir, sizeof dir))) return 1;
        opt.redis_url = zc_embedded_redis_url(redis);
    }
    rc = plot                                        ? s_run_plot(scenario, &opt)
         : !scenario || strcmp(scenario, "all") == 0 ? s_run_all(&opt)
                                                     : s_run(scenario, &opt);
    zc_embedded_redis_destroy(&redis);
    if (*dir) rmdir(dir);
    s_run_keys_remove(keys_dir);
    return rc;
}
