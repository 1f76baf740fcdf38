/*  zcluster top — the cluster live, like `pm2 monit` or `redis-cli --stat`:
    a screen redrawn every second with the nodes (host, pid, groups, message
    and RPC rates, RPC latency), the groups, the leader and the depth of
    every queue. q or Ctrl-C quits (exit 0).

    Straight from Redis, so it needs no master: the registry gives the
    nodes, groups and leader; the counters come from the snapshots nodes
    publish once a second (zc_metrics_publish: every `zcluster node` with a
    Redis does, and a supervised worker); rates are the change between two
    screens. A node that publishes nothing shows "-".

    The terminal: with a tty on stdin it is put in non-canonical mode (no
    echo, a key at a time) and restored on every way out; without one, a
    line starting with q quits, and the end of input too.
*/
#include "cli.h"
#include "cli_args.h"
#include "zc_identity.h"
#include "zc_queue.h"
#include "zc_redis.h"

#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define S_NODES_MAX  256
#define S_GROUPS_MAX 64

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: zcluster top [--redis URL] [--cluster NAME] [--interval MS]\n"
                 "\n"
                 "Shows the cluster live, redrawn every second (--interval): nodes with their\n"
                 "host, pid, groups, messages in and out per second, RPC calls per second and\n"
                 "their mean latency, then the groups, the leader and every queue's depth.\n"
                 "Reads Redis directly (--redis or $ZC_REDIS_URL, --cluster or $ZC_CLUSTER).\n"
                 "Rates come from the counters nodes publish each second (every zcluster node\n"
                 "with a Redis does); '-' for a node that publishes none. q or Ctrl-C quits.\n");
}

//  One node's counters as last read.
typedef struct {
    char id[ZC_NAME_MAX + 1];
    double in, out, calls, latency_sum, latency_count;
    int has_metrics;
} s_counters_t;

typedef struct {
    zc_identity_t identity;
    zc_redis_t *redis;
    zc_queue_t *queue;
    s_counters_t last[S_NODES_MAX];
    int last_count;
    int64_t last_at;                            //  when they were read (ms, monotonic)
    char groups[S_GROUPS_MAX][ZC_NAME_MAX + 1]; //  this screen's groups
    int group_members[S_GROUPS_MAX], group_count;
} s_top_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Sums the published samples of node id into *c.
static void s_read_counters(s_top_t *self, const char *id, s_counters_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    char suffix[16 + ZC_NAME_MAX], key[ZC_PREFIX_MAX + 16 + ZC_NAME_MAX];
    snprintf(suffix, sizeof suffix, "metrics:%s", id);
    redisReply *reply = zc_redis_command(self->redis, "GET %s",
                                         zc_identity_key(&self->identity, key, sizeof key, suffix));
    json_t *samples =
        reply && reply->type == REDIS_REPLY_STRING ? json_loads(reply->str, 0, NULL) : NULL;
    if (reply) freeReplyObject(reply);
    size_t i;
    json_t *sample;
    json_array_foreach(samples, i, sample)
    {
        const char *name = json_string_value(json_array_get(sample, 0));
        double value = json_number_value(json_array_get(sample, 2));
        if (!name) continue;
        c->has_metrics = 1;
        if (strcmp(name, "zcluster_messages_received_total") == 0) c->in += value;
        if (strcmp(name, "zcluster_messages_sent_total") == 0) c->out += value;
        if (strcmp(name, "zcluster_rpc_calls_total") == 0) c->calls += value;
        if (strcmp(name, "zcluster_rpc_call_duration_seconds_sum") == 0) c->latency_sum = value;
        if (strcmp(name, "zcluster_rpc_call_duration_seconds_count") == 0) c->latency_count = value;
    }
    json_decref(samples);
}

//  The counters of node id at the previous screen, or NULL.
static const s_counters_t *s_previous(s_top_t *self, const char *id)
{
    for (int i = 0; i < self->last_count; i++)
        if (strcmp(self->last[i].id, id) == 0) return &self->last[i];
    return NULL;
}

//  Counts the members of each group named in text (space-separated).
static void s_count_groups(s_top_t *self, const char *text)
{
    char copy[1024], *save = NULL;
    snprintf(copy, sizeof copy, "%s", text);
    for (char *name = strtok_r(copy, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
        int i = 0;
        while (i < self->group_count && strcmp(self->groups[i], name) != 0)
            i++;
        if (i == S_GROUPS_MAX) continue;
        if (i == self->group_count) {
            snprintf(self->groups[i], sizeof self->groups[i], "%s", name);
            self->group_members[self->group_count++] = 0;
        }
        self->group_members[i]++;
    }
}

//  Prints one node's line: record fields and rates since the last screen.
static void s_print_node(s_top_t *self, FILE *out, const char *id, const s_counters_t *now)
{
    char key[ZC_PREFIX_MAX + 8 + ZC_NAME_MAX];
    char suffix[8 + ZC_NAME_MAX];
    snprintf(suffix, sizeof suffix, "node:%s", id);
    redisReply *r = zc_redis_command(self->redis, "HMGET %s host pid groups",
                                     zc_identity_key(&self->identity, key, sizeof key, suffix));
    const char *f[3] = {"?", "?", ""};
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < 3 && i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING) f[i] = r->element[i]->str;
    fprintf(out, "%-24.24s %-14.14s %7.7s  %-16.16s", id, f[0], f[1], *f[2] ? f[2] : "-");
    s_count_groups(self, f[2]);
    if (r) freeReplyObject(r);
    const s_counters_t *before = s_previous(self, id);
    if (!now->has_metrics || !before || !before->has_metrics) {
        fprintf(out, " %10s %10s %8s %8s\n", "-", "-", "-", "-");
        return;
    }
    double dt = (double)(s_now_ms() - self->last_at) / 1000;
    double calls = now->latency_count - before->latency_count;
    if (dt <= 0) dt = 1;
    fprintf(out, " %10.0f %10.0f %8.0f", (now->in - before->in) / dt, (now->out - before->out) / dt,
            (now->calls - before->calls) / dt);
    if (calls > 0)
        fprintf(out, " %8.2f\n", 1000 * (now->latency_sum - before->latency_sum) / calls);
    else
        fprintf(out, " %8s\n", "-");
}

//  Prints the nodes, and keeps their counters for the next screen.
static void s_print_nodes(s_top_t *self, FILE *out)
{
    char key[ZC_PREFIX_MAX + 8];
    redisReply *ids = zc_redis_command(self->redis, "SMEMBERS %s",
                                       zc_identity_key(&self->identity, key, sizeof key, "nodes"));
    fprintf(out, "%-24s %-14s %7s  %-16s %10s %10s %8s %8s\n", "NODE", "HOST", "PID", "GROUPS",
            "MSG IN/s", "MSG OUT/s", "RPC/s", "RPC ms");
    s_counters_t now[S_NODES_MAX];
    int count = 0;
    for (size_t i = 0; ids && ids->type == REDIS_REPLY_ARRAY && i < ids->elements; i++) {
        if (ids->element[i]->type != REDIS_REPLY_STRING || count == S_NODES_MAX) continue;
        s_read_counters(self, ids->element[i]->str, &now[count]);
        s_print_node(self, out, ids->element[i]->str, &now[count]);
        count++;
    }
    if (!ids || ids->type != REDIS_REPLY_ARRAY)
        fprintf(out, "(cannot read the registry: %s)\n", zc_redis_errstr(self->redis));
    if (ids) freeReplyObject(ids);
    fprintf(out, "\nGROUPS:");
    for (int i = 0; i < self->group_count; i++)
        fprintf(out, " %s (%d)", self->groups[i], self->group_members[i]);
    fprintf(out, "%s\n", self->group_count ? "" : " none");
    self->group_count = 0;
    memcpy(self->last, now, sizeof(s_counters_t) * (size_t)count);
    self->last_count = count;
    self->last_at = s_now_ms();
}

static void s_print_queues(s_top_t *self, FILE *out)
{
    char **names = NULL;
    size_t count = 0;
    if (zc_queue_names(self->queue, &names, &count)) {
        fprintf(out, "\nQUEUES: %s\n", zc_queue_errstr(self->queue));
        return;
    }
    fprintf(out, "\n%-24s %10s %10s %10s %10s %12s\n", "QUEUE", "QUEUED", "DELAYED", "INFLIGHT",
            "FAILED", "PROCESSED");
    for (size_t i = 0; i < count; i++) {
        zc_queue_stats_t s;
        if (zc_queue_stats(self->queue, names[i], &s)) continue;
        fprintf(out, "%-24.24s %10lld %10lld %10lld %10lld %12lld\n", names[i], (long long)s.queued,
                (long long)s.delayed, (long long)s.inflight, (long long)s.failed_list,
                (long long)s.processed);
    }
    if (!count) fprintf(out, "(no queue)\n");
    zc_queue_names_free(&names);
}

//  Draws one screen: title with the leader, nodes, queues.
static void s_draw(s_top_t *self)
{
    char key[ZC_PREFIX_MAX + 8], when[16];
    redisReply *leader = zc_redis_command(
        self->redis, "GET %s", zc_identity_key(&self->identity, key, sizeof key, "leader"));
    time_t t = time(NULL);
    strftime(when, sizeof when, "%H:%M:%S", localtime(&t));
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) return;
    char holder[ZC_NAME_MAX + 32] = "none";
    if (leader && leader->type == REDIS_REPLY_STRING) {
        char id[ZC_NAME_MAX + 1];
        long long epoch = 0;
        if (sscanf(leader->str, "%255s %lld", id, &epoch) == 2)
            snprintf(holder, sizeof holder, "%s (epoch %lld)", id, epoch);
    }
    fprintf(out, "zcluster top - cluster %s - %s - leader %s - q quits\n\n", self->identity.cluster,
            when, holder);
    if (leader) freeReplyObject(leader);
    s_print_nodes(self, out);
    s_print_queues(self, out);
    fclose(out);
    printf("\033[H\033[2J%s", text); //  home, clear, then the screen at once
    fflush(stdout);
    free(text);
}

//  Waits up to ms for a key or a line; returns 1 to quit.
static int s_wait_key(int ms)
{
    struct pollfd fd = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&fd, 1, ms) <= 0) return s_stop;
    char c = 0;
    ssize_t n = read(STDIN_FILENO, &c, 1);
    return n <= 0 || c == 'q' || c == 'Q' || c == 3 || s_stop; //  3: Ctrl-C as a byte
}

int cli_top(int argc, char **argv)
{
    cli_cluster_t where = {0};
    static struct option options[] = {CLI_OPTION_REDIS,
                                      CLI_OPTION_CLUSTER,
                                      {"interval", required_argument, 0, 'n'},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    int64_t interval = 1000;
    optind = 1;
    int option;
    while ((option = getopt_long(argc, argv, "+r:c:n:h", options, NULL)) != -1)
        if (!cli_cluster_option(&where, option, optarg, "rc ") &&
            (option != 'n' || cli_args_number(optarg, 100, 60000, &interval)))
            return cli_args_usage(option == 'n' ? '?' : option, s_usage);
    if (cli_args_none_left("top", argc, argv)) return CLI_USAGE;
    s_top_t self = {.last_count = 0};
    char err[300];
    if (!cli_cluster_need_redis(&where, "top")) return CLI_USAGE;
    if (zc_identity_init(&self.identity, cli_cluster_redis(&where), where.cluster, "", err,
                         sizeof err)) {
        fprintf(stderr, "zcluster top: %s\n", err);
        return CLI_USAGE;
    }
    self.redis = zc_redis_new(&self.identity.url, 2000);
    self.queue = zc_queue_new(cli_cluster_redis(&where), where.cluster);
    struct termios saved, raw;
    int tty = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        raw = saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    struct sigaction action = {.sa_handler = s_on_signal};
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    printf("\033[?25l"); //  hide the cursor while drawing
    do
        s_draw(&self);
    while (!s_stop && !s_wait_key((int)interval));
    printf("\033[?25h\n");
    if (tty) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    zc_queue_destroy(&self.queue);
    zc_redis_destroy(&self.redis);
    return 0;
}
