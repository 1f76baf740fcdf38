/*  zcluster bench — throughput of zcluster next to raw libzmq, in one run.

    Each scenario runs its project path and its raw baseline the same way:
    receivers are separate processes forked before any ZeroMQ context
    exists, the sender is the parent, everything goes over tcp loopback.
    Receivers confirm they are subscribed before timing starts (warm-up
    messages), time from the first to the last measured message they
    actually received, and report over a pipe; a message counts only when
    received. The figure is the slowest receiver's rate.

    Scenarios: publish (public messages, 1 sender to K receivers; baseline
    raw PUB/SUB).
*/
#include "cli.h"
#include "zcluster.h"

#include <czmq.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_NODES 16
#define BENCH_HWM       100000

typedef struct {
    size_t size;
    long count;
    int nodes;
    int json;
} s_options_t;

typedef struct {
    double rate;   //  messages per second (slowest receiver)
    long received; //  fewest received by one receiver
} s_result_t;

static int64_t s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int s_read_line(int fd, char *line, size_t cap)
{
    size_t used = 0;
    while (used + 1 < cap) {
        if (read(fd, line + used, 1) != 1)
            return -1;
        if (line[used] == '\n')
            break;
        used++;
    }
    line[used] = 0;
    return 0;
}

//  --------------------------------------------------------------------------
//  Receivers: wait for the sender's endpoint, connect, count.

//  The receiving side of one message source, project or raw.
typedef struct {
    zc_mesh_t *mesh; //  project path
    void *sub;       //  raw path
    zmq_msg_t msg;
} s_inbox_t;

//  Receives one message; returns its first payload byte ('w' warm-up,
//  'b' measured) or 0 on timeout.
static char s_inbox_recv(s_inbox_t *in, int timeout_ms)
{
    if (in->mesh) {
        zc_msg_t *msg = zc_mesh_recv(in->mesh, timeout_ms);
        return msg && zc_msg_size(msg) ? *(const char *) zc_msg_data(msg) : 0;
    }
    zmq_setsockopt(in->sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    if (zmq_msg_recv(&in->msg, in->sub, 0) < 0 || zmq_msg_size(&in->msg) == 0)
        return 0;
    return *(const char *) zmq_msg_data(&in->msg);
}

static int s_receiver(int index, int raw, const s_options_t *opt, int in_fd, int out_fd)
{
    char line[512], pub[256], router[256];
    if (s_read_line(in_fd, line, sizeof line) || sscanf(line, "%255s %255s", pub, router) != 2)
        return 1;
    s_inbox_t in = {0};
    zmq_msg_init(&in.msg);
    if (raw) {
        in.sub = zsock_resolve(zsock_new(ZMQ_SUB));
        int hwm = BENCH_HWM;
        zmq_setsockopt(in.sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
        zmq_setsockopt(in.sub, ZMQ_SUBSCRIBE, "", 0);
        zmq_connect(in.sub, pub);
    }
    else {
        char id[32];
        snprintf(id, sizeof id, "bench-r%d", index);
        in.mesh = zc_mesh_new(id);
        zc_mesh_set_hwm(in.mesh, BENCH_HWM);
        if (zc_mesh_start(in.mesh) || zc_mesh_peer_add(in.mesh, "bench-s", pub, router, NULL))
            return 1;
    }
    //  Warm-up: the first message proves the subscription reached the sender.
    char c;
    while ((c = s_inbox_recv(&in, 5000)) == 'w')
        break;
    if (c != 'w')
        return 1;
    if (write(out_fd, "ready\n", 6) != 6)
        return 1;
    long received = 0;
    int64_t first = 0, last = 0;
    while (received < opt->count) {
        c = s_inbox_recv(&in, received ? 1000 : 10000);
        if (!c)
            break; //  the rest was lost
        if (c != 'b')
            continue;
        last = s_now_ns();
        if (!received++)
            first = last;
    }
    dprintf(out_fd, "%ld %lld\n", received, (long long) (last - first));
    zmq_msg_close(&in.msg);
    zc_mesh_destroy(&in.mesh);
    return 0;
}

//  --------------------------------------------------------------------------
//  The sender: the parent process

typedef struct {
    zc_mesh_t *mesh;
    void *pub;
} s_outbox_t;

static void s_outbox_send(s_outbox_t *out, const char *payload, size_t size)
{
    if (out->mesh)
        zc_mesh_publish(out->mesh, "bench", payload, size);
    else
        zmq_send(out->pub, payload, size, 0);
}

static int s_run_publish(int raw, const s_options_t *opt, s_result_t *result)
{
    int to[BENCH_MAX_NODES][2], from[BENCH_MAX_NODES][2];
    pid_t pids[BENCH_MAX_NODES];
    for (int i = 0; i < opt->nodes; i++) {
        if (pipe(to[i]) || pipe(from[i]))
            return -1;
        fflush(stdout);
        pids[i] = fork();
        if (pids[i] == 0) {
            close(to[i][1]);
            close(from[i][0]);
            _exit(s_receiver(i, raw, opt, to[i][0], from[i][1]));
        }
        close(to[i][0]);
        close(from[i][1]);
    }
    s_outbox_t out = {0};
    zsock_t *pub_sock = NULL;
    char endpoints[512];
    if (raw) {
        pub_sock = zsock_new(ZMQ_PUB);
        out.pub = zsock_resolve(pub_sock);
        int hwm = BENCH_HWM;
        zmq_setsockopt(out.pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zsock_bind(pub_sock, "tcp://127.0.0.1:*");
        char *ep = zsock_last_endpoint(pub_sock);
        snprintf(endpoints, sizeof endpoints, "%s %s\n", ep, ep);
        zstr_free(&ep);
    }
    else {
        out.mesh = zc_mesh_new("bench-s");
        zc_mesh_set_hwm(out.mesh, BENCH_HWM);
        zc_mesh_start(out.mesh);
        snprintf(endpoints, sizeof endpoints, "%s %s\n", zc_mesh_pub_endpoint(out.mesh),
                 zc_mesh_router_endpoint(out.mesh));
    }
    for (int i = 0; i < opt->nodes; i++)
        if (write(to[i][1], endpoints, strlen(endpoints)) < 0)
            return -1;
    char *payload = (char *) malloc(opt->size ? opt->size : 1);
    memset(payload, 'x', opt->size);
    //  Warm up until every receiver is subscribed.
    payload[0] = 'w';
    int ready = 0;
    int64_t give_up = s_now_ns() + 10 * 1000000000LL;
    while (ready < opt->nodes && s_now_ns() < give_up) {
        s_outbox_send(&out, payload, opt->size);
        zmq_pollitem_t items[BENCH_MAX_NODES];
        for (int i = 0; i < opt->nodes; i++)
            items[i] = (zmq_pollitem_t){.fd = from[i][0], .events = ZMQ_POLLIN};
        if (zmq_poll(items, opt->nodes, 10) > 0)
            for (int i = 0; i < opt->nodes; i++)
                if (items[i].revents & ZMQ_POLLIN) {
                    char line[64];
                    if (s_read_line(from[i][0], line, sizeof line) == 0)
                        ready++;
                }
    }
    payload[0] = 'b';
    for (long n = 0; n < opt->count && ready == opt->nodes; n++)
        s_outbox_send(&out, payload, opt->size);
    result->rate = 0;
    result->received = -1;
    for (int i = 0; i < opt->nodes && ready == opt->nodes; i++) {
        char line[128];
        long received = 0;
        long long ns = 0;
        if (s_read_line(from[i][0], line, sizeof line) || sscanf(line, "%ld %lld", &received, &ns) != 2)
            continue;
        double rate = ns > 0 ? received / (ns / 1e9) : 0;
        if (result->received < 0 || rate < result->rate) {
            result->rate = rate;
            result->received = received;
        }
    }
    free(payload);
    for (int i = 0; i < opt->nodes; i++) {
        if (ready < opt->nodes)
            kill(pids[i], SIGKILL);
        close(to[i][1]);
        close(from[i][0]);
        waitpid(pids[i], NULL, 0);
    }
    zc_mesh_destroy(&out.mesh);
    zsock_destroy(&pub_sock);
    //  The next run forks again: children must not inherit a live context.
    zsys_shutdown();
    return ready == opt->nodes && result->received >= 0 ? 0 : -1;
}

//  --------------------------------------------------------------------------

static void s_report(const char *scenario, const s_options_t *opt, const s_result_t *project,
                     const s_result_t *baseline, const char *baseline_name)
{
    double ratio = baseline->rate > 0 ? project->rate / baseline->rate : 0;
    if (opt->json)
        printf("{\"scenario\":\"%s\",\"size\":%zu,\"count\":%ld,\"nodes\":%d,\"rate\":%.0f,"
               "\"received\":%ld,\"baseline\":{\"name\":\"%s\",\"size\":%zu,\"count\":%ld,"
               "\"nodes\":%d,\"rate\":%.0f,\"received\":%ld},\"ratio\":%.3f}\n",
               scenario, opt->size, opt->count, opt->nodes, project->rate, project->received,
               baseline_name, opt->size, opt->count, opt->nodes, baseline->rate,
               baseline->received, ratio);
    else {
        printf("%-10s %6zu B  %2d node(s)  %10.0f msg/s  (%ld of %ld received)\n", scenario,
               opt->size, opt->nodes, project->rate, project->received, opt->count);
        printf("%-10s %6zu B  %2d node(s)  %10.0f msg/s  (%ld of %ld received)\n", baseline_name,
               opt->size, opt->nodes, baseline->rate, baseline->received, opt->count);
        printf("ratio      %.2f of the baseline\n", ratio);
    }
}

int cli_bench(int argc, char **argv)
{
    static struct option options[] = {{"size", required_argument, 0, 's'},
                                      {"count", required_argument, 0, 'c'},
                                      {"nodes", required_argument, 0, 'n'},
                                      {"json", no_argument, 0, 'j'},
                                      {"help", no_argument, 0, 'h'},
                                      {0, 0, 0, 0}};
    s_options_t opt = {64, 1000000, 1, 0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:c:n:jh", options, NULL)) != -1) {
        switch (c) {
        case 's': opt.size = (size_t) atol(optarg); break;
        case 'c': opt.count = atol(optarg); break;
        case 'n': opt.nodes = atoi(optarg); break;
        case 'j': opt.json = 1; break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: zcluster bench publish [--size BYTES] [--count N] [--nodes K] "
                    "[--json]\n");
            return c == 'h' ? 0 : CLI_USAGE;
        }
    }
    if (optind != argc - 1 || strcmp(argv[optind], "publish") != 0) {
        fprintf(stderr, "zcluster bench: give one scenario: publish\n");
        return CLI_USAGE;
    }
    if (opt.size < 1 || opt.size > 1024 * 1024 || opt.count < 1 || opt.nodes < 1
        || opt.nodes > BENCH_MAX_NODES) {
        fprintf(stderr, "zcluster bench: --size 1..1048576, --count >= 1, --nodes 1..%d\n",
                BENCH_MAX_NODES);
        return CLI_USAGE;
    }
    zc_log_set_level(ZC_LOG_WARNING);
    s_result_t project, baseline;
    if (s_run_publish(1, &opt, &baseline) || s_run_publish(0, &opt, &project)) {
        fprintf(stderr, "zcluster bench: a receiver did not get ready\n");
        return 1;
    }
    s_report("publish", &opt, &project, &baseline, "zmq-pubsub");
    return 0;
}
