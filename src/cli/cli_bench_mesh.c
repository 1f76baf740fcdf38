/*  zcluster bench: publish, shout and whisper, each next to raw libzmq.

    Children are the receivers (publish, shout) or the echoing peer
    (whisper); the parent sends. Receivers prove they are subscribed with a
    warm-up message before timing starts, then time from the first to the
    last measured message they received and report "RECEIVED NANOSECONDS".
    The figure is the slowest receiver's rate. Payload byte 0 tells the
    message's role: 'w' warm-up, 'b' measured, 'p' ping to echo.
*/
#include "cli_bench.h"
#include "zcluster.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTT_SAMPLES_MAX 20000

//  One side of a scenario: a mesh (project) or a raw socket (baseline).
typedef struct {
    zc_mesh_t *mesh;
    zsock_t *sock;
    void *raw;
    zmq_msg_t frame;
    zmq_msg_t identity; //  the sender's routing id (raw ROUTER)
    size_t skip;        //  topic bytes before the payload (raw with a topic)
} s_end_t;

//  Receives one message; returns its role byte, or 0 on timeout.
static char s_recv(s_end_t *end, int timeout_ms, int router)
{
    if (end->mesh) {
        zc_msg_t *msg = zc_mesh_recv(end->mesh, timeout_ms);
        return msg && zc_msg_size(msg) ? *(const char *)zc_msg_data(msg) : 0;
    }
    zmq_setsockopt(end->raw, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    if (router && zmq_msg_recv(&end->identity, end->raw, 0) < 0) return 0;
    if (zmq_msg_recv(&end->frame, end->raw, 0) < 0 || zmq_msg_size(&end->frame) <= end->skip)
        return 0;
    return ((const char *)zmq_msg_data(&end->frame))[end->skip];
}

static int s_hwm(void *raw)
{
    int hwm = BENCH_HWM;
    return zmq_setsockopt(raw, ZMQ_SNDHWM, &hwm, sizeof hwm) |
           zmq_setsockopt(raw, ZMQ_RCVHWM, &hwm, sizeof hwm);
}

//  Counts 'b' messages after the warm-up and reports them.
static int s_count(s_end_t *end, const bench_options_t *opt, int out_fd, int router)
{
    char c;
    while ((c = s_recv(end, 10000, router)) != 'w')
        if (!c) return 1;
    bench_write_line(out_fd, "ready");
    long received = 0;
    int64_t first = 0, last = 0;
    while (received < opt->count) {
        c = s_recv(end, received ? 1000 : 10000, router);
        if (!c) break; //  the rest was lost
        if (c != 'b') continue;
        last = bench_now_ns();
        if (!received++) first = last;
    }
    bench_write_line(out_fd, "%ld %lld", received, (long long)(last - first));
    return 0;
}

//  Reads the children's reports; the slowest receiver sets the figure.
static void s_collect(bench_children_t *children, bench_result_t *result)
{
    result->rate = 0;
    result->received = -1;
    for (int i = 0; i < children->count; i++) {
        char line[128];
        long received = 0;
        long long ns = 0;
        if (bench_read_line(children->from[i], line, sizeof line, 60000) ||
            sscanf(line, "%ld %lld", &received, &ns) != 2)
            continue;
        double rate = ns > 0 ? received / (ns / 1e9) : 0;
        if (result->received < 0 || rate < result->rate) {
            result->rate = rate;
            result->received = received;
        }
    }
}

//  Sends warm-ups with send_fn until every child reported ready.
typedef void(s_send_fn)(s_end_t *end, const char *payload, size_t size, int group);

static int s_warm_up(bench_children_t *children, s_end_t *end, s_send_fn *send, char *payload,
                     size_t size, int group)
{
    payload[0] = 'w';
    int ready = 0;
    int64_t give_up = bench_now_ns() + 10 * 1000000000LL;
    while (ready < children->count && bench_now_ns() < give_up) {
        send(end, payload, size, group);
        zmq_pollitem_t items[BENCH_MAX_NODES];
        for (int i = 0; i < children->count; i++)
            items[i] = (zmq_pollitem_t){.fd = children->from[i], .events = ZMQ_POLLIN};
        if (zmq_poll(items, children->count, 10) > 0)
            for (int i = 0; i < children->count; i++)
                if (items[i].revents & ZMQ_POLLIN) {
                    char line[64];
                    if (bench_read_line(children->from[i], line, sizeof line, 1000) == 0) ready++;
                }
    }
    return ready == children->count ? 0 : -1;
}

//  --------------------------------------------------------------------------
//  publish and shout

typedef struct {
    int raw, group;
} s_pub_args_t;

static int s_pub_receiver(int index, const bench_options_t *opt, int in_fd, int out_fd, void *arg)
{
    s_pub_args_t *args = (s_pub_args_t *)arg;
    char line[512], pub[256], router[256];
    if (bench_read_line(in_fd, line, sizeof line, 10000) ||
        sscanf(line, "%255s %255s", pub, router) != 2)
        return 1;
    s_end_t end = {0};
    zmq_msg_init(&end.frame);
    if (args->raw) {
        end.sock = zsock_new(ZMQ_SUB);
        end.raw = zsock_resolve(end.sock);
        s_hwm(end.raw);
        end.skip = args->group ? 6 : 0; //  "bench\0": an exact topic
        zmq_setsockopt(end.raw, ZMQ_SUBSCRIBE, "bench", end.skip);
        zmq_connect(end.raw, pub);
    } else {
        char id[32];
        snprintf(id, sizeof id, "bench-r%d", index);
        end.mesh = zc_mesh_new(id);
        zc_mesh_set_hwm(end.mesh, BENCH_HWM);
        if (zc_mesh_start(end.mesh) || zc_mesh_peer_add(end.mesh, "bench-s", pub, router, NULL) ||
            (args->group && zc_mesh_join(end.mesh, "bench")))
            return 1;
    }
    int rc = s_count(&end, opt, out_fd, 0);
    zmq_msg_close(&end.frame);
    zc_mesh_destroy(&end.mesh);
    zsock_destroy(&end.sock);
    return rc;
}

static void s_pub_send(s_end_t *end, const char *payload, size_t size, int group)
{
    if (end->mesh) {
        if (group)
            zc_mesh_shout(end->mesh, "bench", "bench", payload, size);
        else
            zc_mesh_publish(end->mesh, "bench", payload, size);
    } else if (group) {
        //  Raw with a topic: one frame, "bench\0" then the payload.
        zmq_msg_t frame;
        zmq_msg_init_size(&frame, 6 + size);
        memcpy(zmq_msg_data(&frame), "bench", 6);
        memcpy((char *)zmq_msg_data(&frame) + 6, payload, size);
        if (zmq_msg_send(&frame, end->raw, 0) < 0) zmq_msg_close(&frame);
    } else
        zmq_send(end->raw, payload, size, 0);
}

static int s_publish_once(const bench_options_t *opt, int raw, int group, bench_result_t *result)
{
    s_pub_args_t args = {raw, group};
    bench_children_t children;
    if (bench_spawn(&children, opt->nodes, s_pub_receiver, opt, &args)) return -1;
    s_end_t end = {0};
    char endpoints[512];
    if (raw) {
        end.sock = zsock_new(ZMQ_PUB);
        end.raw = zsock_resolve(end.sock);
        s_hwm(end.raw);
        zsock_bind(end.sock, "tcp://127.0.0.1:*");
        char *ep = zsock_last_endpoint(end.sock);
        snprintf(endpoints, sizeof endpoints, "%s %s", ep, ep);
        zstr_free(&ep);
    } else {
        end.mesh = zc_mesh_new("bench-s");
        zc_mesh_set_hwm(end.mesh, BENCH_HWM);
        zc_mesh_start(end.mesh);
        snprintf(endpoints, sizeof endpoints, "%s %s", zc_mesh_pub_endpoint(end.mesh),
                 zc_mesh_router_endpoint(end.mesh));
    }
    for (int i = 0; i < children.count; i++)
        bench_write_line(children.to[i], "%s", endpoints);
    char *payload = (char *)calloc(1, opt->size);
    int rc = s_warm_up(&children, &end, s_pub_send, payload, opt->size, group);
    payload[0] = 'b';
    for (long n = 0; rc == 0 && n < opt->count; n++)
        s_pub_send(&end, payload, opt->size, group);
    if (rc == 0) s_collect(&children, result);
    free(payload);
    zc_mesh_destroy(&end.mesh);
    zsock_destroy(&end.sock);
    bench_reap(&children, rc != 0);
    return rc == 0 && result->received >= 0 ? 0 : -1;
}

int bench_publish(const bench_options_t *opt, int group, bench_result_t *project,
                  bench_result_t *baseline)
{
    if (s_publish_once(opt, 1, group, baseline) || s_publish_once(opt, 0, group, project))
        return -1;
    project->p50_us = project->p99_us = baseline->p50_us = baseline->p99_us = -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  whisper: one way, then round trip

static int s_echo_peer(int index, const bench_options_t *opt, int in_fd, int out_fd, void *arg)
{
    int raw = *(int *)arg;
    char line[512], pub[256], router[256];
    if (bench_read_line(in_fd, line, sizeof line, 10000) ||
        sscanf(line, "%255s %255s", pub, router) != 2)
        return 1;
    s_end_t end = {0};
    zmq_msg_init(&end.frame);
    zmq_msg_init(&end.identity);
    if (raw) {
        end.sock = zsock_new(ZMQ_ROUTER);
        end.raw = zsock_resolve(end.sock);
        s_hwm(end.raw);
        zsock_bind(end.sock, "tcp://127.0.0.1:*");
        char *ep = zsock_last_endpoint(end.sock);
        bench_write_line(out_fd, "%s %s", ep, ep);
        zstr_free(&ep);
    } else {
        end.mesh = zc_mesh_new("bench-r");
        zc_mesh_set_hwm(end.mesh, BENCH_HWM);
        if (zc_mesh_start(end.mesh) || zc_mesh_peer_add(end.mesh, "bench-s", pub, router, NULL))
            return 1;
        bench_write_line(out_fd, "%s %s", zc_mesh_pub_endpoint(end.mesh),
                         zc_mesh_router_endpoint(end.mesh));
    }
    int rc = s_count(&end, opt, out_fd, raw);
    //  Then echo pings until the parent is done.
    char c;
    while (rc == 0 && (c = s_recv(&end, 10000, raw)) != 0) {
        if (c != 'p') continue;
        if (end.mesh)
            zc_mesh_whisper(end.mesh, "bench-s", "bench", "p", 1);
        else {
            zmq_msg_send(&end.identity, end.raw, ZMQ_SNDMORE);
            zmq_send(end.raw, "p", 1, 0);
        }
    }
    zmq_msg_close(&end.frame);
    zmq_msg_close(&end.identity);
    zc_mesh_destroy(&end.mesh);
    zsock_destroy(&end.sock);
    return rc;
}

static void s_whisper_send(s_end_t *end, const char *payload, size_t size, int unused)
{
    if (end->mesh) {
        while (zc_mesh_whisper(end->mesh, "bench-r", "bench", payload, size) != 0 &&
               errno == EAGAIN)
            zc_mesh_recv(end->mesh, 1);
    } else
        zmq_send(end->raw, payload, size, 0);
}

static int s_whisper_once(const bench_options_t *opt, int raw, bench_result_t *one_way,
                          bench_result_t *rtt)
{
    bench_children_t children;
    bench_options_t single = *opt;
    single.nodes = 1;
    if (bench_spawn(&children, 1, s_echo_peer, &single, &raw)) return -1;
    s_end_t end = {0};
    zmq_msg_init(&end.frame);
    char endpoints[512];
    if (raw) {
        end.sock = zsock_new(ZMQ_DEALER);
        end.raw = zsock_resolve(end.sock);
        s_hwm(end.raw);
        zsock_set_identity(end.sock, "bench-s");
        snprintf(endpoints, sizeof endpoints, "- -");
    } else {
        end.mesh = zc_mesh_new("bench-s");
        zc_mesh_set_hwm(end.mesh, BENCH_HWM);
        zc_mesh_start(end.mesh);
        snprintf(endpoints, sizeof endpoints, "%s %s", zc_mesh_pub_endpoint(end.mesh),
                 zc_mesh_router_endpoint(end.mesh));
    }
    char line[512], pub[256], router[256];
    bench_write_line(children.to[0], "%s", endpoints);
    int rc = bench_read_line(children.from[0], line, sizeof line, 10000) ||
                     sscanf(line, "%255s %255s", pub, router) != 2
                 ? -1
                 : 0;
    if (rc == 0)
        rc = raw ? zmq_connect(end.raw, router)
                 : zc_mesh_peer_add(end.mesh, "bench-r", pub, router, NULL);
    char *payload = (char *)calloc(1, opt->size);
    if (rc == 0) rc = s_warm_up(&children, &end, s_whisper_send, payload, opt->size, 0);
    payload[0] = 'b';
    for (long n = 0; rc == 0 && n < opt->count; n++)
        s_whisper_send(&end, payload, opt->size, 0);
    if (rc == 0) s_collect(&children, one_way);
    //  Round trips, one at a time.
    long samples = opt->count < RTT_SAMPLES_MAX ? opt->count : RTT_SAMPLES_MAX;
    int64_t *rtts = (int64_t *)calloc((size_t)samples, sizeof(int64_t));
    long done = 0;
    payload[0] = 'p';
    for (; rc == 0 && done < samples; done++) {
        int64_t start = bench_now_ns();
        s_whisper_send(&end, payload, opt->size, 0);
        if (s_recv(&end, 5000, 0) != 'p') break;
        rtts[done] = bench_now_ns() - start;
    }
    rtt->received = done;
    rtt->rate = 0; //  a latency figure: compared by p50
    if (done) bench_percentiles(rtts, done, rtt);
    free(rtts);
    free(payload);
    zmq_msg_close(&end.frame);
    zc_mesh_destroy(&end.mesh);
    zsock_destroy(&end.sock);
    bench_reap(&children, 1);
    return rc == 0 && one_way->received >= 0 && done == samples ? 0 : -1;
}

int bench_whisper(const bench_options_t *opt, bench_result_t results[4])
{
    if (s_whisper_once(opt, 1, &results[1], &results[3]) ||
        s_whisper_once(opt, 0, &results[0], &results[2]))
        return -1;
    results[0].p50_us = results[0].p99_us = results[1].p50_us = results[1].p99_us = -1;
    return 0;
}
