/*  zcluster queue — looking into the task queue from the command line:
    the jobs of a queue (paged), the delayed ones with their times, what
    each worker runs now, one job, a queue's counters, and removing one
    job by id. One command per run, straight from Redis (no master needed).

    Every job prints on one line, the same way wherever it comes from:
        ID QUEUE TASK STATE attempt=N failures=N at=MS node=NODE args=ARGS error=TEXT
    (node, args and error only when there is one), its args as msgpack
    text and every field escaped, so a line never breaks.
*/
#include "cli.h"
#include "cli_args.h"
#include "cli_console.h"
#include "cli_render.h"
#include "zc_queue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: zcluster queue [--redis URL] [--cluster NAME] COMMAND ARGS\n"
            "\n"
            "Looks into the cluster's task queue in Redis (--redis defaults to\n"
            "$ZC_REDIS_URL, --cluster to $ZC_CLUSTER or \"zcluster\").\n"
            "\n"
            "commands (OFFSET default 0, COUNT default 100, at most 1000):\n"
            "  jobs QUEUE [OFFSET [COUNT]]     queued jobs, next to run first\n"
            "  failed QUEUE [OFFSET [COUNT]]   the failed list, newest first\n"
            "  delayed [QUEUE|-] [OFFSET [COUNT]]  delayed jobs by due time (at=), all queues\n"
            "                                  with -\n"
            "  working [OFFSET [COUNT]]        claimed jobs: the node running each, its lease\n"
            "                                  deadline (at=)\n"
            "  show ID                         one job\n"
            "  stats QUEUE                     the queue's counters\n"
            "  remove QUEUE ID                 delete a queued, delayed or failed job\n"
            "\n"
            "A job prints as: ID QUEUE TASK STATE attempt=N failures=N at=MS [node=NODE]\n"
            "[args=ARGS] [error=TEXT]; STATE is queued, delayed, active, failed, or missing /\n"
            "damaged for an id whose job hash is gone or not a job's.\n"
            "\n"
            "exit status: 0 ok, 1 the command failed, 64 usage error\n");
}

//  Writes one job on out, as the header says.
static void s_print_job(FILE *out, const zc_queue_job_t *job)
{
    cli_render_text(out, job->id, strlen(job->id));
    fprintf(out, " %s %s %s attempt=%d failures=%d at=%" PRId64, *job->queue ? job->queue : "-",
            *job->task ? job->task : "-", job->state, job->attempt, job->failures, job->at_ms);
    if (*job->node) {
        fputs(" node=", out);
        cli_render_text(out, job->node, strlen(job->node));
    }
    if (job->args_size) {
        fputs(" args=", out);
        cli_render_msgpack(out, job->args, job->args_size);
    }
    if (*job->error) {
        fputs(" error=", out);
        cli_render_text(out, job->error, strlen(job->error));
    }
}

//  Answers the queue's failure. Returns 0.
static int s_fail(cli_console_t *console, zc_queue_t *queue)
{
    cli_console_error(console, "%s: %s", zc_strerror(zc_queue_error(queue)),
                      zc_queue_errstr(queue));
    return 0;
}

//  Answers with one job per line and a last line "total=N", or the failure.
static int s_answer_jobs(cli_console_t *console, zc_queue_t *queue, int rc, zc_queue_job_t *jobs,
                         size_t count, int64_t total)
{
    if (rc) return s_fail(console, queue);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    for (size_t i = 0; out && i < count; i++) {
        s_print_job(out, &jobs[i]);
        fputc('\n', out);
    }
    if (out) {
        fprintf(out, "total=%" PRId64, total);
        fclose(out);
    }
    cli_console_line(console, "%s", text ? text : "out of memory");
    free(text);
    zc_queue_jobs_free(&jobs, count);
    return 0;
}

//  Reads [OFFSET [COUNT]] from argv[first]. Returns 0 or -1.
static int s_range(int argc, char **argv, int first, int64_t *offset, int64_t *count)
{
    *offset = 0;
    *count = 100;
    if (argc > first && cli_args_number(argv[first], 0, INT64_MAX, offset)) return -1;
    if (argc > first + 1 && cli_args_number(argv[first + 1], 1, 1000, count)) return -1;
    return 0;
}

//  jobs QUEUE [OFFSET [COUNT]] | failed QUEUE [OFFSET [COUNT]]
static int s_cmd_jobs(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = (zc_queue_t *)self;
    int64_t offset, count, total = 0;
    if (s_range(argc, argv, 2, &offset, &count)) return -1;
    zc_queue_list_t list = strcmp(argv[0], "jobs") == 0 ? ZC_QUEUE_READY : ZC_QUEUE_FAILED;
    zc_queue_job_t *jobs = NULL;
    size_t n = 0;
    int rc = zc_queue_jobs(queue, argv[1], list, offset, (int)count, &jobs, &n, &total);
    return s_answer_jobs(console, queue, rc, jobs, n, total);
}

//  delayed [QUEUE|-] [OFFSET [COUNT]]
static int s_cmd_delayed(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = (zc_queue_t *)self;
    int64_t offset, count, total = 0;
    if (s_range(argc, argv, 2, &offset, &count)) return -1;
    const char *name = argc > 1 && strcmp(argv[1], "-") != 0 ? argv[1] : NULL;
    zc_queue_job_t *jobs = NULL;
    size_t n = 0;
    int rc = zc_queue_delayed(queue, name, offset, (int)count, &jobs, &n, &total);
    return s_answer_jobs(console, queue, rc, jobs, n, total);
}

//  working [OFFSET [COUNT]]
static int s_cmd_working(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = (zc_queue_t *)self;
    int64_t offset, count, total = 0;
    if (s_range(argc, argv, 1, &offset, &count)) return -1;
    zc_queue_job_t *jobs = NULL;
    size_t n = 0;
    int rc = zc_queue_working(queue, offset, (int)count, &jobs, &n, &total);
    return s_answer_jobs(console, queue, rc, jobs, n, total);
}

//  show ID
static int s_cmd_show(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = (zc_queue_t *)self;
    zc_queue_job_t job;
    if (zc_queue_job(queue, argv[1], &job)) {
        zc_queue_job_clear(&job);
        return s_fail(console, queue);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out) {
        s_print_job(out, &job);
        fprintf(out, " created=%" PRId64 " max_attempts=%d", job.created_ms, job.max_attempts);
        fclose(out);
    }
    zc_queue_job_clear(&job);
    cli_console_line(console, "%s", text ? text : "out of memory");
    free(text);
    return 0;
}

//  stats QUEUE
static int s_cmd_stats(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = (zc_queue_t *)self;
    zc_queue_stats_t s;
    if (zc_queue_stats(queue, argv[1], &s)) return s_fail(console, queue);
    cli_console_line(console,
                     "queued=%" PRId64 " delayed=%" PRId64 " inflight=%" PRId64
                     " processed=%" PRId64 " failed=%" PRId64 " failed_list=%" PRId64
                     " retried=%" PRId64 " requeued=%" PRId64 " lost_acks=%" PRId64,
                     s.queued, s.delayed, s.inflight, s.processed, s.failed, s.failed_list,
                     s.retried, s.requeued, s.lost_acks);
    return 0;
}

//  remove QUEUE ID
static int s_cmd_remove(cli_console_t *console, void *self, int argc, char **argv)
{
    zc_queue_t *queue = (zc_queue_t *)self;
    if (zc_queue_remove(queue, argv[1], argv[2])) return s_fail(console, queue);
    cli_console_line(console, "removed %s", argv[2]);
    return 0;
}

static const cli_command_t s_commands[] = {
    {"jobs", 1, 3, s_cmd_jobs, NULL, 0},       {"failed", 1, 3, s_cmd_jobs, NULL, 0},
    {"delayed", 0, 3, s_cmd_delayed, NULL, 0}, {"working", 0, 2, s_cmd_working, NULL, 0},
    {"show", 1, 1, s_cmd_show, NULL, 0},       {"stats", 1, 1, s_cmd_stats, NULL, 0},
    {"remove", 2, 2, s_cmd_remove, NULL, 0},   {NULL, 0, 0, NULL, NULL, 0},
};

int cli_queue(int argc, char **argv)
{
    cli_cluster_t where = {0};
    static struct option options[] = {
        CLI_OPTION_REDIS, CLI_OPTION_CLUSTER, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cli_args_t args = {"+r:c:h", options, s_usage, &where, "rc ", NULL, NULL};
    int status = cli_args_parse(&args, argc, argv);
    if (status >= 0) return status;
    if (!cli_cluster_need_redis(&where, "queue")) return CLI_USAGE;
    if (optind == argc) {
        s_usage(stderr);
        return CLI_USAGE;
    }
    zc_queue_t *queue = zc_queue_new(cli_cluster_redis(&where), where.cluster);
    if (!queue) return 1; //  a bad URL or name: the reason is logged
    cli_console_t *console = cli_console_new(s_commands, queue);
    status = console ? cli_console_run_once(console, "zcluster queue", s_usage, argc - optind,
                                            argv + optind)
                     : 1;
    cli_console_destroy(&console);
    zc_queue_destroy(&queue);
    return status;
}
