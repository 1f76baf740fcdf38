/*  zcluster worker — a queue worker with built-in tasks, driven by lines on stdin.

    For demos, for operators poking at queues by hand, and for the
    multi-process tests: the worker drains its queues in the background and
    prints one line per finished run (`done ID TASK ATTEMPT` or `failed ID
    TASK ATTEMPT ERROR`), flushed before the result goes to Redis, so a
    driver counts every execution even of a worker it later SIGKILLs. Each
    command on stdin answers exactly one line, `ok ...` or `error ...`.

    Under `zcluster start` it is a plain long-running worker: id, cluster
    and Redis come from ZC_NODE_ID, ZC_CLUSTER and ZC_REDIS_URL (the
    defaults of zc_queue and zc_queue_worker), it tells the master once it
    is connected and draining, and as stdin is /dev/null there its end does
    not stop it: it serves until SIGTERM, which stops it as `quit` does.

    Task arguments on the command line are JSON (one word, no spaces),
    carried as msgpack; a word that is not JSON is taken as a string.
*/
#include "cli.h"
#include "cli_args.h"
#include "cli_console.h"
#include "cli_metrics.h"
#include "zc_supervisor.h"
#include "zcluster.h"
#include "zc_job.h"
#include "zc_queue.h"
#include "zc_queue_worker.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <msgpack.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8191

static volatile sig_atomic_t s_interrupted;

static void s_on_signal(int sig)
{
    s_interrupted = sig;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: zcluster worker [--redis URL] [--cluster NAME] [--id NODE_ID] [--keys FILE]\n"
            "                       [--queue QUEUE]... [--concurrency N] [--threads N]\n"
            "                       [--lease MS] [--metrics-port PORT]\n\n"
            "Drains the queues (in priority order; default: one queue named 'default')\n"
            "with up to N jobs at once (default 4; 0 only keeps the cluster's queues moving:\n"
            "delayed jobs, lost claims, recurring tasks). Redis: --redis or $ZC_REDIS_URL;\n"
            "cluster: --cluster or $ZC_CLUSTER, default 'zcluster'; id: --id or $ZC_NODE_ID,\n"
            "else a generated one. Under `zcluster start` it takes all three from the\n"
            "master, tells it when it is ready and serves until SIGTERM (its stdin is\n"
            "/dev/null there: the end of stdin does not stop it). --keys FILE sets\n"
            "$ZC_KEYS, as on every cluster command (the worker itself starts no mesh).\n"
            "It publishes its counters to Redis each second (for a master's GET /metrics);\n"
            "--metrics-port also serves them, GET http://127.0.0.1:PORT/metrics (0: any\n"
            "free port, printed as `metrics PORT` after the ready line).\n"
            "Built-in tasks: noop, sleep (args: ms), fail (always fails), echo (prints args).\n"
            "Prints `ready NODE_ID`, then `done ID TASK ATTEMPT` or\n"
            "`failed ID TASK ATTEMPT ERROR` for every run, and reads commands on stdin,\n"
            "one per line; each answers one line, `ok ...` or `error ...`:\n"
            "  enqueue QUEUE TASK [ARGS] [--id JOBID] [--in MS] [--at EPOCH_MS]\n"
            "          [--attempts N] [--backoff MS] [--timeout MS]   -> ok enqueue JOBID\n"
            "  stats [QUEUE]           the queue's counters, or this worker's\n"
            "  failed QUEUE            the failed list: count, then ID(ATTEMPTS: ERROR)...\n"
            "  retry QUEUE JOBID       put a failed job back on its queue\n"
            "  delete QUEUE            delete a queue and all its jobs\n"
            "  every MS QUEUE TASK [ARGS] [--name NAME]   recurring task (name: QUEUE.TASK)\n"
            "  unschedule NAME         remove a recurring task\n"
            "  requeue NODE_ID         return a (dead) node's claimed jobs to their queues\n"
            "  quit                    stop: finish running jobs, give back the others\n"
            "ARGS is one word of JSON (5, \"text\", [1,2], {\"a\":1}); other words are strings.\n");
}

//  Prints one line and flushes it, whole, whichever thread calls.
static void s_print(const char *format, ...) __attribute__((format(printf, 1, 2)));

static void s_print(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    flockfile(stdout);
    vfprintf(stdout, format, args);
    fputc('\n', stdout);
    fflush(stdout);
    funlockfile(stdout);
    va_end(args);
}

//  --------------------------------------------------------------------------
//  JSON words to msgpack and back

static void s_pack_json(msgpack_packer *pk, json_t *value)
{
    switch (json_typeof(value)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(value));
        const char *key;
        json_t *item;
        json_object_foreach(value, key, item)
        {
            msgpack_pack_str_with_body(pk, key, strlen(key));
            s_pack_json(pk, item);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(value));
        size_t index;
        json_t *item;
        json_array_foreach(value, index, item) s_pack_json(pk, item);
        break;
    }
    case JSON_STRING:
        msgpack_pack_str_with_body(pk, json_string_value(value), json_string_length(value));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(value));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(value));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    default:
        msgpack_pack_nil(pk);
        break;
    }
}

//  Packs a command-line word as msgpack into sbuf.
static void s_pack_word(msgpack_sbuffer *sbuf, const char *word)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
    json_error_t error;
    json_t *value = json_loads(word, JSON_DECODE_ANY, &error);
    if (value) {
        s_pack_json(&pk, value);
        json_decref(value);
    } else
        msgpack_pack_str_with_body(&pk, word, strlen(word));
}

//  --------------------------------------------------------------------------
//  Built-in tasks

static int s_task_noop(zc_job_t *job, void *arg)
{
    return 0;
}

//  Reads the job's arguments as one integer into *value. Returns 0 or -1.
static int s_args_int(zc_job_t *job, int64_t *value)
{
    size_t size;
    const char *data = (const char *)zc_job_args(job, &size);
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    int rc = -1;
    if (size && msgpack_unpack_next(&msg, data, size, NULL) == MSGPACK_UNPACK_SUCCESS) {
        if (msg.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *value = (int64_t)msg.data.via.u64;
            rc = 0;
        } else if (msg.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            *value = msg.data.via.i64;
            rc = 0;
        }
    }
    msgpack_unpacked_destroy(&msg);
    return rc;
}

//  Sleeps for the ms in its arguments, returning early once cancelled.
static int s_task_sleep(zc_job_t *job, void *arg)
{
    int64_t ms;
    if (s_args_int(job, &ms) || ms < 0) {
        zc_job_set_error(job, "sleep needs a number of milliseconds as its argument");
        return -1;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!zc_job_cancelled(job)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left =
            ms - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        if (left <= 0) break;
        struct timespec nap = {0, (left > 10 ? 10 : left) * 1000000};
        nanosleep(&nap, NULL);
    }
    if (zc_job_lost(job)) {
        zc_job_set_error(job, "stopped: its lease was lost");
        return -1;
    }
    return 0;
}

static int s_task_fail(zc_job_t *job, void *arg)
{
    zc_job_set_error(job, "the fail task always fails");
    return -1;
}

static int s_task_echo(zc_job_t *job, void *arg)
{
    size_t size;
    const char *data = (const char *)zc_job_args(job, &size);
    char text[1024] = "nil";
    msgpack_unpacked msg;
    msgpack_unpacked_init(&msg);
    if (size && msgpack_unpack_next(&msg, data, size, NULL) == MSGPACK_UNPACK_SUCCESS)
        msgpack_object_print_buffer(text, sizeof text, msg.data);
    msgpack_unpacked_destroy(&msg);
    s_print("echo %s %s", zc_job_id(job), text);
    return 0;
}

static void s_on_finish(zc_job_t *job, int rc, void *arg)
{
    if (rc == 0)
        s_print("done %s %s %d", zc_job_id(job), zc_job_task(job), zc_job_attempt(job));
    else
        s_print("failed %s %s %d %s", zc_job_id(job), zc_job_task(job), zc_job_attempt(job),
                zc_job_errstr(job));
}

//  --------------------------------------------------------------------------
//  Commands

//  What the commands work on; self of the console.
typedef struct {
    zc_queue_t *queue;
    zc_queue_worker_t *worker;
    zc_metrics_t *metrics; //  published, and served with --metrics-port
    int64_t metrics_due;
} s_worker_t;

//  Reads the words after `enqueue QUEUE TASK` (w[3..n-1]): one ARGS word
//  and the options, into *opts, *in, *at and *json. Returns 0, or -1 after
//  answering what is wrong.
static int s_enqueue_options(cli_console_t *console, char **w, int n, zc_job_opts_t *opts,
                             int64_t *in, int64_t *at, const char **json)
{
    int64_t value;
    for (int i = 3; i < n; i++) {
        const char *opt = w[i];
        if (strncmp(opt, "--", 2) != 0) {
            if (*json) {
                cli_console_error(console, "more than one ARGS word ('%s')", opt);
                return -1;
            }
            *json = opt;
            continue;
        }
        const char *val = i + 1 < n ? w[++i] : NULL;
        if (strcmp(opt, "--id") == 0 && val)
            opts->id = val;
        else if (strcmp(opt, "--in") == 0 && cli_args_number(val, 0, INT64_MAX, in) == 0)
            ;
        else if (strcmp(opt, "--at") == 0 && cli_args_number(val, 0, INT64_MAX, at) == 0)
            ;
        else if (strcmp(opt, "--attempts") == 0 && cli_args_number(val, 0, 999999, &value) == 0)
            opts->max_attempts = (int)value;
        else if (strcmp(opt, "--backoff") == 0 && cli_args_number(val, 0, INT64_MAX, &value) == 0)
            opts->backoff_ms = value;
        else if (strcmp(opt, "--timeout") == 0 && cli_args_number(val, 0, INT64_MAX, &value) == 0)
            opts->timeout_ms = value;
        else {
            cli_console_error(console, "bad option %s %s", opt, val ? val : "");
            return -1;
        }
    }
    return 0;
}

//  enqueue QUEUE TASK [ARGS] [--id JOBID] [--in MS] [--at EPOCH_MS] [--attempts N]
//          [--backoff MS] [--timeout MS]
static int s_cmd_enqueue(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = ((s_worker_t *)self)->queue;
    const char *name = argv[1], *task = argv[2], *json = NULL;
    zc_job_opts_t opts = {0};
    int64_t in = -1, at = -1;
    if (s_enqueue_options(console, argv, argc, &opts, &in, &at, &json)) return 0;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    if (json) s_pack_word(&sbuf, json);
    char id[ZC_JOB_ID_MAX + 1] = "";
    int rc;
    if (in >= 0)
        rc = zc_queue_enqueue_in(queue, name, task, sbuf.data, sbuf.size, in, &opts, id);
    else if (at >= 0)
        rc = zc_queue_enqueue_at(queue, name, task, sbuf.data, sbuf.size, at, &opts, id);
    else
        rc = zc_queue_enqueue(queue, name, task, sbuf.data, sbuf.size, &opts, id);
    msgpack_sbuffer_destroy(&sbuf);
    if (rc == 0)
        cli_console_ok(console, "%s", id);
    else if (zc_queue_error(queue) == ZC_ERR_DUPLICATE)
        cli_console_error(console, "duplicate: %s", zc_queue_errstr(queue));
    else
        cli_console_error(console, "%s", zc_queue_errstr(queue));
    return 0;
}

//  stats [QUEUE]: the queue's counters, or this worker's
static int s_cmd_stats(cli_console_t *console, void *self, int argc, char **argv)
{
    s_worker_t *w = (s_worker_t *)self;
    if (argc == 1) {
        zc_queue_worker_stats_t s;
        zc_queue_worker_stats(w->worker, &s);
        cli_console_ok(console,
                       "node=%s claimed=%llu succeeded=%llu failed=%llu timed_out=%llu "
                       "lost=%llu released=%llu running=%llu scheduler=%d executing=%llu "
                       "lease_lost=%llu errors=%llu",
                       zc_queue_worker_id(w->worker), (unsigned long long)s.claimed,
                       (unsigned long long)s.succeeded, (unsigned long long)s.failed,
                       (unsigned long long)s.timed_out, (unsigned long long)s.lost,
                       (unsigned long long)s.released, (unsigned long long)s.running, s.scheduler,
                       (unsigned long long)s.executing, (unsigned long long)s.lease_lost,
                       (unsigned long long)s.errors);
        return 0;
    }
    zc_queue_stats_t s;
    if (zc_queue_stats(w->queue, argv[1], &s)) {
        cli_console_error(console, "%s", zc_queue_errstr(w->queue));
        return 0;
    }
    cli_console_ok(console,
                   "queue=%s queued=%lld delayed=%lld inflight=%lld processed=%lld "
                   "failed=%lld failed_list=%lld retried=%lld requeued=%lld lost_acks=%lld",
                   argv[1], (long long)s.queued, (long long)s.delayed, (long long)s.inflight,
                   (long long)s.processed, (long long)s.failed, (long long)s.failed_list,
                   (long long)s.retried, (long long)s.requeued, (long long)s.lost_acks);
    return 0;
}

//  failed QUEUE: count, then ID(ATTEMPTS: ERROR)...
static int s_cmd_failed(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = ((s_worker_t *)self)->queue;
    enum { MAX = 50 };
    zc_queue_failure_t *list = (zc_queue_failure_t *)calloc(MAX, sizeof *list);
    int count = list ? zc_queue_failed(queue, argv[1], list, MAX) : -1;
    size_t cap = 256 + (size_t)(count > 0 ? count : 0) * (ZC_JOB_ID_MAX + ZC_JOB_ERROR_MAX + 32);
    char *line = count >= 0 ? (char *)malloc(cap) : NULL;
    if (count < 0)
        cli_console_error(console, "%s", list ? zc_queue_errstr(queue) : "out of memory");
    else if (!line)
        cli_console_error(console, "out of memory");
    else {
        size_t used = (size_t)snprintf(line, cap, "count=%d", count);
        for (int i = 0; i < count; i++)
            used += (size_t)snprintf(line + used, cap - used, " %s(%d: %s)", list[i].id,
                                     list[i].attempts, list[i].error);
        cli_console_ok(console, "%s", line);
    }
    free(line);
    free(list);
    return 0;
}

//  retry QUEUE JOBID: a failed job back on its queue
static int s_cmd_retry(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = ((s_worker_t *)self)->queue;
    if (zc_queue_retry(queue, argv[1], argv[2]) == 0)
        cli_console_ok(console, "%s", argv[2]);
    else
        cli_console_error(console, "%s", zc_queue_errstr(queue));
    return 0;
}

//  Answers a count the queue returned: ok WORD=COUNT, or the queue's error.
static int s_answer_count(cli_console_t *console, zc_queue_t *queue, const char *word,
                          int64_t count)
{
    if (count >= 0)
        cli_console_ok(console, "%s=%lld", word, (long long)count);
    else
        cli_console_error(console, "%s", zc_queue_errstr(queue));
    return 0;
}

//  delete QUEUE: the queue and all its jobs
static int s_cmd_delete(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = ((s_worker_t *)self)->queue;
    return s_answer_count(console, queue, "deleted", zc_queue_delete(queue, argv[1]));
}

//  requeue NODE_ID: a (dead) node's claimed jobs back to their queues
static int s_cmd_requeue(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = ((s_worker_t *)self)->queue;
    return s_answer_count(console, queue, "requeued", zc_queue_requeue_node(queue, argv[1]));
}

//  every MS QUEUE TASK [ARGS] [--name NAME]: a recurring task (name: QUEUE.TASK)
static int s_cmd_every(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = ((s_worker_t *)self)->queue;
    int64_t every;
    if (cli_args_number(argv[1], 1, INT64_MAX, &every)) return -1;
    char name[2 * ZC_QUEUE_NAME_MAX + 2];
    snprintf(name, sizeof name, "%s.%s", argv[2], argv[3]);
    const char *json = NULL;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            snprintf(name, sizeof name, "%s", argv[++i]);
        else if (!json && strncmp(argv[i], "--", 2) != 0)
            json = argv[i];
        else {
            cli_console_error(console, "unexpected '%s'", argv[i]);
            return 0;
        }
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    if (json) s_pack_word(&sbuf, json);
    int rc = zc_queue_every(queue, name, argv[2], argv[3], sbuf.data, sbuf.size, every, NULL);
    msgpack_sbuffer_destroy(&sbuf);
    if (rc == 0)
        cli_console_ok(console, "%s", name);
    else
        cli_console_error(console, "%s", zc_queue_errstr(queue));
    return 0;
}

//  unschedule NAME: remove a recurring task
static int s_cmd_unschedule(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = ((s_worker_t *)self)->queue;
    int rc = zc_queue_every_remove(queue, argv[1]);
    if (rc == 1)
        cli_console_ok(console, "%s", argv[1]);
    else
        cli_console_error(console, "%s",
                          rc == 0 ? "no such recurring task" : zc_queue_errstr(queue));
    return 0;
}

static const cli_command_t s_commands[] = {
    {"enqueue", 2, CLI_ARGS_ANY, s_cmd_enqueue,
     "enqueue QUEUE TASK [ARGS] [--id JOBID] [--in MS] ...", 0},
    {"stats", 0, 1, s_cmd_stats, NULL, 0},
    {"failed", 1, 1, s_cmd_failed, NULL, 0},
    {"retry", 2, 2, s_cmd_retry, NULL, 0},
    {"delete", 1, 1, s_cmd_delete, NULL, 0},
    {"every", 3, CLI_ARGS_ANY, s_cmd_every, "every MS QUEUE TASK [ARGS] [--name NAME]", 0},
    {"unschedule", 1, 1, s_cmd_unschedule, NULL, 0},
    {"requeue", 1, 1, s_cmd_requeue, NULL, 0},
    {"quit", 0, 0, cli_console_quit, NULL, 0},
    {NULL, 0, 0, NULL, NULL, 0},
};

//  The console's wait: stdin (once it ended, none), or a fraction of a
//  second, or a signal (which stops it). The signal may reach one of the
//  worker's threads and not interrupt the poll: the timeout bounds how late
//  it is seen.
static int s_wait(void *self, int stdin_open)
{
    if (s_interrupted) return -1;
    s_worker_t *worker = (s_worker_t *)self;
    cli_metrics_tick(worker->metrics, &worker->metrics_due);
    struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
    int rc = poll(&pfd, stdin_open ? 1 : 0, 250);
    if (s_interrupted || (rc < 0 && errno != EINTR)) return -1;
    return rc > 0 ? 1 : 0;
}

//  --------------------------------------------------------------------------
//  Options and the worker's life

//  The command line of `zcluster worker`.
typedef struct {
    cli_cluster_t where; //  --redis, --cluster, --id
    const char *url;     //  --redis or $ZC_REDIS_URL
    const char *queues[64];
    int queue_count;
    int64_t concurrency, threads, lease;
    int64_t metrics_port; //  -1: not served
} s_options_t;

//  Reads one option other than --redis, --cluster and --id into *o.
//  Returns -1 to go on, or the exit code after saying what is wrong.
static int s_option(void *self, int c, const char *value)
{
    s_options_t *o = (s_options_t *)self;
    const char *error = NULL;
    if (c == 'q') {
        if (o->queue_count == 64)
            error = "at most 64 --queue options";
        else
            o->queues[o->queue_count++] = value;
    } else if (c == 'n') {
        if (cli_args_number(value, 0, 1000, &o->concurrency)) error = "--concurrency takes 0..1000";
    } else if (c == 't') {
        if (cli_args_number(value, 0, 256, &o->threads)) error = "--threads takes 0..256";
    } else if (c == 'l') {
        if (cli_args_number(value, 300, 3600000, &o->lease))
            error = "--lease takes 300..3600000 ms";
    } else if (c == 'M') {
        if (cli_args_number(value, 0, 65535, &o->metrics_port))
            error = "--metrics-port takes 0..65535";
    } else
        return cli_args_usage(c, s_usage);
    if (!error) return -1;
    fprintf(stderr, "zcluster worker: %s\n", error);
    return CLI_USAGE;
}

//  Parses the command line into *o. Returns -1 to go on, or the exit code
//  (after --help, or after saying what is wrong).
static int s_parse(s_options_t *o, int argc, char **argv)
{
    static struct option options[] = {CLI_OPTION_REDIS,
                                      CLI_OPTION_CLUSTER,
                                      CLI_OPTION_ID,
                                      CLI_OPTION_KEYS,
                                      {"queue", required_argument, 0, 'q'},
                                      {"concurrency", required_argument, 0, 'n'},
                                      {"threads", required_argument, 0, 't'},
                                      {"lease", required_argument, 0, 'l'},
                                      {"metrics-port", required_argument, 0, 'M'},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->concurrency = 4;
    o->threads = -1;
    o->metrics_port = -1;
    cli_args_t args = {"r:c:i:q:n:t:l:h", options, s_usage, &o->where, "rci", s_option, o};
    int rc = cli_args_parse(&args, argc, argv);
    if (rc >= 0) return rc;
    if (cli_args_none_left("worker", argc, argv)) return CLI_USAGE;
    if (!(o->url = cli_cluster_need_redis(&o->where, "worker"))) return CLI_USAGE;
    if (o->queue_count == 0) o->queues[o->queue_count++] = "default";
    return -1;
}

//  Makes the queue handle and the worker (not started) from the options.
//  Returns 0, or CLI_USAGE after saying what is wrong.
static int s_setup(const s_options_t *o, zc_queue_t **queue_p, zc_queue_worker_t **worker_p)
{
    zc_queue_t *queue = zc_queue_new(o->url, o->where.cluster); //  NULL: $ZC_CLUSTER
    if (!queue) {
        fprintf(stderr, "zcluster worker: invalid Redis URL or cluster name\n");
        return CLI_USAGE;
    }
    const char *id = cli_cluster_id(&o->where);
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, id);
    if (!worker) {
        fprintf(stderr, "zcluster worker: invalid node id '%s'\n", id ? id : "");
        zc_queue_destroy(&queue);
        return CLI_USAGE;
    }
    for (int i = 0; i < o->queue_count; i++)
        if (zc_queue_worker_add_queue(worker, o->queues[i])) {
            fprintf(stderr, "zcluster worker: invalid or repeated queue name '%s'\n", o->queues[i]);
            zc_queue_worker_destroy(&worker);
            zc_queue_destroy(&queue);
            return CLI_USAGE;
        }
    zc_queue_worker_register(worker, "noop", s_task_noop, NULL);
    zc_queue_worker_register(worker, "sleep", s_task_sleep, NULL);
    zc_queue_worker_register(worker, "fail", s_task_fail, NULL);
    zc_queue_worker_register(worker, "echo", s_task_echo, NULL);
    zc_queue_worker_set_concurrency(worker, (int)o->concurrency);
    if (o->threads >= 0) zc_queue_worker_set_threads(worker, (int)o->threads);
    if (o->lease) zc_queue_worker_set_lease(worker, (int)o->lease);
    zc_queue_worker_on_finish(worker, s_on_finish, NULL);
    *queue_p = queue;
    *worker_p = worker;
    return 0;
}

//  Answers commands on stdin until quit, a signal or the end of stdin; a
//  supervised worker has no driver and serves until SIGTERM.
static void s_serve(s_worker_t *self)
{
    cli_console_t *console = cli_console_new(s_commands, self);
    if (!console) return;
    cli_console_set_line_max(console, LINE_MAX_BYTES);
    cli_console_set_wait(console, s_wait, zc_supervisor_managed());
    cli_console_run(console);
    cli_console_destroy(&console);
}

int cli_worker(int argc, char **argv)
{
    s_options_t options;
    int rc = s_parse(&options, argc, argv);
    if (rc >= 0) return rc;
    zc_queue_t *queue;
    zc_queue_worker_t *worker;
    if ((rc = s_setup(&options, &queue, &worker)) != 0) return rc;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    //  `ready` comes before any run's line: a driver that waits for it must
    //  not miss the runs of the first jobs. Handlers print under the stdout
    //  lock (s_print), held here until it is printed.
    flockfile(stdout);
    if (zc_queue_worker_start(worker)) {
        funlockfile(stdout);
        fprintf(stderr, "zcluster worker: %s\n", zc_queue_worker_errstr(worker));
        zc_queue_worker_destroy(&worker);
        zc_queue_destroy(&queue);
        return 1;
    }
    s_worker_t self = {queue, worker, NULL, 0};
    self.metrics =
        cli_metrics_new("worker", &options.where, zc_queue_worker_id(worker), options.metrics_port);
    if (!self.metrics) {
        funlockfile(stdout); //  before destroy, which waits for the handlers
        zc_queue_worker_destroy(&worker);
        zc_queue_destroy(&queue);
        return 1;
    }
    zc_metrics_set_worker(self.metrics, worker);
    s_print("ready %s", zc_queue_worker_id(worker));
    if (zc_metrics_port(self.metrics) >= 0) s_print("metrics %d", zc_metrics_port(self.metrics));
    funlockfile(stdout);
    zc_supervisor_ready(); //  under `zcluster start`: tell the master
    s_serve(&self);
    zc_metrics_destroy(&self.metrics);
    zc_queue_worker_destroy(&worker);
    zc_queue_destroy(&queue);
    return 0;
}
