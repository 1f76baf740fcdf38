/*  zcluster worker — a queue worker with built-in tasks, driven by lines on stdin.

    For demos, for operators poking at queues by hand, and for the
    multi-process tests: the worker drains its queues in the background and
    prints one line per finished run (`done ID TASK ATTEMPT` or `failed ID
    TASK ATTEMPT ERROR`), flushed before the result goes to Redis, so a
    driver counts every execution even of a worker it later SIGKILLs. Each
    command on stdin answers exactly one line, `ok ...` or `error ...`.

    Task arguments on the command line are JSON (one word, no spaces),
    carried as msgpack; a word that is not JSON is taken as a string.
*/
#include "cli.h"
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

#define LINE_MAX_BYTES 8192

static volatile sig_atomic_t s_interrupted;

static void s_on_signal(int sig)
{
    s_interrupted = sig;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: zcluster worker [--redis URL] [--cluster NAME] [--id NODE_ID]\n"
            "                       [--queue QUEUE]... [--concurrency N] [--threads N]\n"
            "                       [--lease MS]\n\n"
            "Drains the queues (in priority order; default: one queue named 'default')\n"
            "with up to N jobs at once (default 4; 0 only keeps the cluster's queues moving:\n"
            "delayed jobs, lost claims, recurring tasks). Redis: --redis or $ZC_REDIS_URL;\n"
            "cluster: --cluster or $ZC_CLUSTER, default 'zcluster'.\n"
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

typedef struct {
    zc_queue_t *queue;
    zc_queue_worker_t *worker;
    int done;
} s_console_t;

//  Parses a non-negative integer option value. Returns 0 or -1.
static int s_number(const char *text, int64_t *value)
{
    char *end;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : -1;
    if (!text || errno || end == text || *end || v < 0) return -1;
    *value = v;
    return 0;
}

static void s_cmd_enqueue(s_console_t *console, char **w, int n)
{
    const char *queue = n > 1 ? w[1] : NULL, *task = n > 2 ? w[2] : NULL, *json = NULL;
    zc_job_opts_t opts = {0};
    int64_t in = -1, at = -1, value;
    for (int i = 3; i < n; i++) {
        const char *opt = w[i];
        if (strncmp(opt, "--", 2) != 0) {
            if (json) {
                s_print("error enqueue: more than one ARGS word ('%s')", opt);
                return;
            }
            json = opt;
            continue;
        }
        const char *val = i + 1 < n ? w[++i] : NULL;
        if (strcmp(opt, "--id") == 0 && val)
            opts.id = val;
        else if (strcmp(opt, "--in") == 0 && s_number(val, &in) == 0)
            ;
        else if (strcmp(opt, "--at") == 0 && s_number(val, &at) == 0)
            ;
        else if (strcmp(opt, "--attempts") == 0 && s_number(val, &value) == 0 && value < 1000000)
            opts.max_attempts = (int)value;
        else if (strcmp(opt, "--backoff") == 0 && s_number(val, &value) == 0)
            opts.backoff_ms = value;
        else if (strcmp(opt, "--timeout") == 0 && s_number(val, &value) == 0)
            opts.timeout_ms = value;
        else {
            s_print("error enqueue: bad option %s %s", opt, val ? val : "");
            return;
        }
    }
    if (!queue || !task) {
        s_print("error enqueue: usage: enqueue QUEUE TASK [ARGS] [--id JOBID] [--in MS] ...");
        return;
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    if (json) s_pack_word(&sbuf, json);
    char id[ZC_JOB_ID_MAX + 1] = "";
    int rc;
    if (in >= 0)
        rc = zc_queue_enqueue_in(console->queue, queue, task, sbuf.data, sbuf.size, in, &opts, id);
    else if (at >= 0)
        rc = zc_queue_enqueue_at(console->queue, queue, task, sbuf.data, sbuf.size, at, &opts, id);
    else
        rc = zc_queue_enqueue(console->queue, queue, task, sbuf.data, sbuf.size, &opts, id);
    msgpack_sbuffer_destroy(&sbuf);
    if (rc == 0)
        s_print("ok enqueue %s", id);
    else if (zc_queue_error(console->queue) == ZC_ERR_DUPLICATE)
        s_print("error enqueue: duplicate: %s", zc_queue_errstr(console->queue));
    else
        s_print("error enqueue: %s", zc_queue_errstr(console->queue));
}

static void s_cmd_stats(s_console_t *console, char **w, int n)
{
    if (n == 1) {
        zc_queue_worker_stats_t s;
        zc_queue_worker_stats(console->worker, &s);
        s_print("ok stats node=%s claimed=%llu succeeded=%llu failed=%llu timed_out=%llu "
                "lost=%llu released=%llu running=%llu scheduler=%d",
                zc_queue_worker_id(console->worker), (unsigned long long)s.claimed,
                (unsigned long long)s.succeeded, (unsigned long long)s.failed,
                (unsigned long long)s.timed_out, (unsigned long long)s.lost,
                (unsigned long long)s.released, (unsigned long long)s.running, s.scheduler);
        return;
    }
    zc_queue_stats_t s;
    if (zc_queue_stats(console->queue, w[1], &s)) {
        s_print("error stats: %s", zc_queue_errstr(console->queue));
        return;
    }
    s_print("ok stats queue=%s queued=%lld delayed=%lld inflight=%lld processed=%lld "
            "failed=%lld failed_list=%lld retried=%lld requeued=%lld lost_acks=%lld",
            w[1], (long long)s.queued, (long long)s.delayed, (long long)s.inflight,
            (long long)s.processed, (long long)s.failed, (long long)s.failed_list,
            (long long)s.retried, (long long)s.requeued, (long long)s.lost_acks);
}

static void s_cmd_failed(s_console_t *console, const char *queue)
{
    enum { MAX = 50 };
    zc_queue_failure_t *list = (zc_queue_failure_t *)calloc(MAX, sizeof *list);
    int count = list ? zc_queue_failed(console->queue, queue, list, MAX) : -1;
    if (count < 0) {
        s_print("error failed: %s", list ? zc_queue_errstr(console->queue) : "out of memory");
        free(list);
        return;
    }
    size_t cap = 256 + (size_t)count * (ZC_JOB_ID_MAX + ZC_JOB_ERROR_MAX + 32);
    char *line = (char *)malloc(cap);
    if (!line) {
        s_print("error failed: out of memory");
        free(list);
        return;
    }
    size_t used = (size_t)snprintf(line, cap, "ok failed count=%d", count);
    for (int i = 0; i < count; i++)
        used += (size_t)snprintf(line + used, cap - used, " %s(%d: %s)", list[i].id,
                                 list[i].attempts, list[i].error);
    s_print("%s", line);
    free(line);
    free(list);
}

static void s_cmd_every(s_console_t *console, char **w, int n)
{
    int64_t every;
    if (n < 4 || s_number(w[1], &every) || every == 0) {
        s_print("error every: usage: every MS QUEUE TASK [ARGS] [--name NAME]");
        return;
    }
    char name[2 * ZC_QUEUE_NAME_MAX + 2];
    snprintf(name, sizeof name, "%s.%s", w[2], w[3]);
    const char *json = NULL;
    for (int i = 4; i < n; i++) {
        if (strcmp(w[i], "--name") == 0 && i + 1 < n)
            snprintf(name, sizeof name, "%s", w[++i]);
        else if (!json && strncmp(w[i], "--", 2) != 0)
            json = w[i];
        else {
            s_print("error every: unexpected '%s'", w[i]);
            return;
        }
    }
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    if (json) s_pack_word(&sbuf, json);
    int rc = zc_queue_every(console->queue, name, w[2], w[3], sbuf.data, sbuf.size, every, NULL);
    msgpack_sbuffer_destroy(&sbuf);
    if (rc == 0)
        s_print("ok every %s", name);
    else
        s_print("error every: %s", zc_queue_errstr(console->queue));
}

//  Splits line on spaces into at most max words.
static int s_split(char *line, char **words, int max)
{
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p) break;
        words[n++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p) *p++ = 0;
    }
    return n;
}

static void s_execute(s_console_t *console, char *line)
{
    char *w[32];
    int n = s_split(line, w, 32);
    if (n == 0) return;
    const char *cmd = w[0];
    zc_queue_t *queue = console->queue;
    if (strcmp(cmd, "enqueue") == 0)
        s_cmd_enqueue(console, w, n);
    else if (strcmp(cmd, "stats") == 0 && n <= 2)
        s_cmd_stats(console, w, n);
    else if (strcmp(cmd, "failed") == 0 && n == 2)
        s_cmd_failed(console, w[1]);
    else if (strcmp(cmd, "retry") == 0 && n == 3) {
        if (zc_queue_retry(queue, w[1], w[2]) == 0)
            s_print("ok retry %s", w[2]);
        else
            s_print("error retry: %s", zc_queue_errstr(queue));
    } else if (strcmp(cmd, "delete") == 0 && n == 2) {
        int64_t deleted = zc_queue_delete(queue, w[1]);
        if (deleted >= 0)
            s_print("ok delete deleted=%lld", (long long)deleted);
        else
            s_print("error delete: %s", zc_queue_errstr(queue));
    } else if (strcmp(cmd, "every") == 0)
        s_cmd_every(console, w, n);
    else if (strcmp(cmd, "unschedule") == 0 && n == 2) {
        int rc = zc_queue_every_remove(queue, w[1]);
        if (rc == 1)
            s_print("ok unschedule %s", w[1]);
        else
            s_print("error unschedule: %s",
                    rc == 0 ? "no such recurring task" : zc_queue_errstr(queue));
    } else if (strcmp(cmd, "requeue") == 0 && n == 2) {
        int64_t requeued = zc_queue_requeue_node(queue, w[1]);
        if (requeued >= 0)
            s_print("ok requeue requeued=%lld", (long long)requeued);
        else
            s_print("error requeue: %s", zc_queue_errstr(queue));
    } else if (strcmp(cmd, "quit") == 0 && n == 1) {
        console->done = 1;
        s_print("ok quit");
    } else
        s_print("error %s: unknown command or wrong arguments", cmd);
}

//  The command line of `zcluster worker`.
typedef struct {
    const char *url, *cluster, *id;
    const char *queues[64];
    int queue_count;
    int64_t concurrency, threads, lease;
} s_options_t;

//  Reads one option into *o. Returns 0, or CLI_USAGE after saying why.
static int s_option(s_options_t *o, int c)
{
    switch (c) {
    case 'r':
        o->url = optarg;
        return 0;
    case 'c':
        o->cluster = optarg;
        return 0;
    case 'i':
        o->id = optarg;
        return 0;
    case 'q':
        if (o->queue_count == 64) {
            fprintf(stderr, "zcluster worker: at most 64 --queue options\n");
            return CLI_USAGE;
        }
        o->queues[o->queue_count++] = optarg;
        return 0;
    case 'n':
        if (s_number(optarg, &o->concurrency) || o->concurrency > 1000) {
            fprintf(stderr, "zcluster worker: --concurrency takes 0..1000\n");
            return CLI_USAGE;
        }
        return 0;
    case 't':
        if (s_number(optarg, &o->threads) || o->threads > 256) {
            fprintf(stderr, "zcluster worker: --threads takes 0..256\n");
            return CLI_USAGE;
        }
        return 0;
    case 'l':
        if (s_number(optarg, &o->lease) || o->lease < 300 || o->lease > 3600000) {
            fprintf(stderr, "zcluster worker: --lease takes 300..3600000 ms\n");
            return CLI_USAGE;
        }
        return 0;
    default:
        s_usage(stderr);
        return CLI_USAGE;
    }
}

//  Parses the command line into *o. Returns 0, -1 after --help, or
//  CLI_USAGE after saying what is wrong.
static int s_parse(s_options_t *o, int argc, char **argv)
{
    static struct option options[] = {{"redis", required_argument, 0, 'r'},
                                      {"cluster", required_argument, 0, 'c'},
                                      {"id", required_argument, 0, 'i'},
                                      {"queue", required_argument, 0, 'q'},
                                      {"concurrency", required_argument, 0, 'n'},
                                      {"threads", required_argument, 0, 't'},
                                      {"lease", required_argument, 0, 'l'},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->url = getenv("ZC_REDIS_URL");
    o->cluster = getenv("ZC_CLUSTER");
    o->concurrency = 4;
    o->threads = -1;
    int c, rc;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:c:i:q:n:t:l:h", options, NULL)) != -1) {
        if (c == 'h') {
            s_usage(stdout);
            return -1;
        }
        if ((rc = s_option(o, c)) != 0) return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "zcluster worker: unexpected argument '%s'\n", argv[optind]);
        return CLI_USAGE;
    }
    if (!o->url || !*o->url) {
        fprintf(stderr, "zcluster worker: no Redis: give --redis URL or set ZC_REDIS_URL\n");
        return CLI_USAGE;
    }
    if (!o->cluster || !*o->cluster) o->cluster = "zcluster";
    if (o->queue_count == 0) o->queues[o->queue_count++] = "default";
    return 0;
}

//  Makes the queue handle and the worker (not started) from the options.
//  Returns 0, or CLI_USAGE after saying what is wrong.
static int s_setup(const s_options_t *o, zc_queue_t **queue_p, zc_queue_worker_t **worker_p)
{
    zc_queue_t *queue = zc_queue_new(o->url, o->cluster);
    if (!queue) {
        fprintf(stderr, "zcluster worker: invalid Redis URL or cluster name\n");
        return CLI_USAGE;
    }
    zc_queue_worker_t *worker = zc_queue_worker_new(queue, o->id);
    if (!worker) {
        const char *id = o->id ? o->id : getenv("ZC_NODE_ID"); //  the default
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

//  Answers commands on stdin until quit, a signal or the end of stdin.
static void s_console(s_console_t *console)
{
    char buffer[LINE_MAX_BYTES];
    size_t used = 0;
    while (!console->done && !s_interrupted) {
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        int rc = poll(&pfd, 1, 500);
        if (rc < 0 && errno != EINTR) break;
        if (rc <= 0) continue;
        ssize_t got = read(STDIN_FILENO, buffer + used, sizeof buffer - used);
        if (got <= 0) break; //  stdin closed: the driver is gone
        used += (size_t)got;
        char *start = buffer, *eol;
        while (!console->done && (eol = memchr(start, '\n', used - (size_t)(start - buffer)))) {
            *eol = 0;
            if (eol > start && eol[-1] == '\r') eol[-1] = 0;
            s_execute(console, start);
            start = eol + 1;
        }
        used -= (size_t)(start - buffer);
        memmove(buffer, start, used);
        if (used == sizeof buffer) {
            s_print("error line longer than %d bytes", LINE_MAX_BYTES - 1);
            used = 0;
        }
    }
}

int cli_worker(int argc, char **argv)
{
    s_options_t options;
    int rc = s_parse(&options, argc, argv);
    if (rc) return rc < 0 ? 0 : rc;
    zc_queue_t *queue;
    zc_queue_worker_t *worker;
    if ((rc = s_setup(&options, &queue, &worker)) != 0) return rc;

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (zc_queue_worker_start(worker)) {
        fprintf(stderr, "zcluster worker: %s\n", zc_queue_worker_errstr(worker));
        zc_queue_worker_destroy(&worker);
        zc_queue_destroy(&queue);
        return 1;
    }
    s_print("ready %s", zc_queue_worker_id(worker));
    s_console_t console = {queue, worker, 0};
    s_console(&console);
    zc_queue_worker_destroy(&worker);
    zc_queue_destroy(&queue);
    return 0;
}
