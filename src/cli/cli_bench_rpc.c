/*  zcluster bench: rpc and rpc-all, each next to raw DEALER/ROUTER echoes.

    The project side is real cluster nodes: the parent and K children
    register in a Redis registry (the bench's own redis-server unless
    --redis is given) and find each other there. Children serve "echo"
    inline on their node's thread (zc_rpc_set_threads 0), as a low-latency
    service would; the thread pool adds a handoff per call. The baseline is
    the simplest correct echo: a ROUTER per child in a blocking receive loop
    that sends each frame back to the DEALER that sent it, and a DEALER that
    sends and receives (no poll on either side).

    rpc:      sequential calls to one node: p50/p99 round trip, and calls/s
              with up to BENCH_WINDOW calls in flight. With --rate N, calls
              started N per second whatever is in flight, latency from each
              one's intended start (cli_bench_rate.c) to its reply.
    rpc-all:  sequential calls to all K nodes, gathering every reply: p50/p99
              (the project's "all" includes the caller, which answers inline).
*/
#include "cli_bench.h"
#include "zcluster.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_WINDOW    64
#define LATENCY_SAMPLES 20000

static void s_echo(zc_rpc_request_t *request, void *arg)
{
    zc_rpc_respond(request, zc_rpc_request_args(request), zc_rpc_request_size(request));
}

//  A child: a node serving echo (or a raw ROUTER echo) until its pipe closes.
static int s_server(int index, const bench_options_t *opt, int in_fd, int out_fd, void *arg)
{
    int raw = *(int *)arg;
    if (raw) {
        //  The simplest echo: blocking receives, no poll; the parent kills
        //  it when done (bench_reap).
        zsock_t *router = zsock_new(ZMQ_ROUTER);
        zsock_set_sndhwm(router, BENCH_HWM);
        zsock_set_rcvhwm(router, BENCH_HWM);
        zc_security_t *security = bench_secure(zsock_resolve(router), 1);
        zsock_bind(router, "tcp://127.0.0.1:*");
        char *ep = zsock_last_endpoint(router);
        bench_write_line(out_fd, "%s", ep);
        zstr_free(&ep);
        void *handle = zsock_resolve(router);
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        while (zmq_msg_recv(&id, handle, 0) >= 0 && zmq_msg_recv(&body, handle, 0) >= 0) {
            zmq_msg_send(&id, handle, ZMQ_SNDMORE);
            zmq_msg_send(&body, handle, 0);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
        zsock_destroy(&router);
        zc_security_destroy(&security);
        return 0;
    }
    char id[32];
    snprintf(id, sizeof id, "bench-r%d", index);
    zc_node_t *node = zc_node_new(id);
    zc_node_set_redis(node, opt->redis_url);
    zc_node_set_cluster(node, "bench");
    zc_node_set_election(node, 0);
    zc_mesh_set_hwm(zc_node_mesh(node), BENCH_HWM);
    if (zc_node_start(node)) {
        zc_node_destroy(&node);
        return 1;
    }
    zc_rpc_t *rpc = zc_rpc_new(node);
    zc_rpc_set_threads(rpc, 0);
    zc_rpc_register(rpc, "echo", s_echo, NULL);
    int announced = 0;
    while (1) {
        zmq_pollitem_t items[1 + ZC_NODE_POLLITEMS_MAX] = {{NULL, in_fd, ZMQ_POLLIN, 0}};
        int n = 1 + zc_node_pollitems(node, items + 1);
        zmq_poll(items, n, 100);
        if (items[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            break; //  the parent closed the pipe (or wrote): done
        while (zc_node_recv(node, 0))
            ;
        if (!announced && zc_node_peer_exists(node, "bench-c")) {
            bench_write_line(out_fd, "ready");
            announced = 1;
        }
    }
    zc_rpc_destroy(&rpc);
    zc_node_destroy(&node);
    return 0;
}

//  The caller's side: a node, or raw DEALERs, one per server.
typedef struct {
    zc_node_t *node;
    zc_rpc_t *rpc;
    zsock_t *dealers[BENCH_MAX_NODES];
    zc_security_t *security[BENCH_MAX_NODES]; //  the dealers', with CURVE on
    int count;
    zmq_msg_t reply;
} s_caller_t;

//  One call to server `target` (or to all, target < 0). Returns 0 on success.
static int s_call(s_caller_t *caller, int target, const char *payload, size_t size)
{
    if (caller->node) {
        char id[32];
        snprintf(id, sizeof id, "bench-r%d", target);
        zc_rpc_call_t *call = zc_rpc_call(caller->rpc, target < 0 ? ZC_RPC_ALL_GATHER : ZC_RPC_NODE,
                                          target < 0 ? NULL : id, "echo", payload, size, 5000);
        int rc = zc_rpc_call_status(call) == ZC_OK ? 0 : -1;
        zc_rpc_call_destroy(&call);
        return rc;
    }
    int first = target < 0 ? 0 : target, last = target < 0 ? caller->count - 1 : target;
    for (int i = first; i <= last; i++)
        zmq_send(zsock_resolve(caller->dealers[i]), payload, size, 0);
    for (int i = first; i <= last; i++)
        if (zmq_msg_recv(&caller->reply, zsock_resolve(caller->dealers[i]), 0) < 0) return -1;
    return 0;
}

//  Calls/s with up to BENCH_WINDOW calls in flight to server 0.
static double s_window(s_caller_t *caller, const char *payload, size_t size, long total)
{
    int64_t start = bench_now_ns();
    long sent = 0, done = 0;
    if (caller->node) {
        //  A ring of calls in flight; wait for the oldest, start the next.
        zc_rpc_call_t *calls[BENCH_WINDOW] = {0};
        long oldest = 0;
        while (done < total) {
            while (sent < total && sent - oldest < BENCH_WINDOW)
                calls[sent++ % BENCH_WINDOW] = zc_rpc_start(
                    caller->rpc, ZC_RPC_NODE, "bench-r0", "echo", payload, size, 5000, NULL, NULL);
            zc_rpc_call_t **call = &calls[oldest++ % BENCH_WINDOW];
            if (zc_rpc_wait(caller->rpc, *call) == ZC_OK) done++;
            zc_rpc_call_destroy(call);
            if (oldest == total) break;
        }
        for (int i = 0; i < BENCH_WINDOW; i++)
            zc_rpc_call_destroy(&calls[i]);
    } else {
        void *dealer = zsock_resolve(caller->dealers[0]);
        while (done < total) {
            while (sent < total && sent - done < BENCH_WINDOW) {
                zmq_send(dealer, payload, size, 0);
                sent++;
            }
            if (zmq_msg_recv(&caller->reply, dealer, 0) < 0) break;
            done++;
        }
    }
    double seconds = (bench_now_ns() - start) / 1e9;
    return seconds > 0 ? done / seconds : 0;
}

//  Sequential round trips (LATENCY_SAMPLES at most) for p50/p99, then
//  calls/s with BENCH_WINDOW in flight (rpc only). Returns 0 or -1.
static int s_sequential(s_caller_t *caller, const bench_options_t *opt, int all, char *payload,
                        bench_result_t *result)
{
    long samples = opt->count < LATENCY_SAMPLES ? opt->count : LATENCY_SAMPLES;
    int64_t *rtts = (int64_t *)calloc((size_t)samples, sizeof(int64_t));
    long done = 0;
    for (; done < samples; done++) {
        int64_t start = bench_now_ns();
        if (s_call(caller, all ? -1 : 0, payload, opt->size)) break;
        rtts[done] = bench_now_ns() - start;
    }
    result->received = done;
    bench_percentiles(rtts, done, result);
    free(rtts);
    result->rate = done == samples && !all ? s_window(caller, payload, opt->size, opt->count) : 0;
    return done == samples ? 0 : -1;
}

//  --rate: the latencies of the calls that completed, from their intended
//  send times (ns).
typedef struct {
    s_caller_t *caller;
    int64_t *samples;
    long done;
} s_paced_t;

//  Records a completed call's latency from the stamp its echo carries.
static void s_paced_record(s_paced_t *paced, const void *echo, size_t size)
{
    if (size >= BENCH_STAMP_MIN)
        paced->samples[paced->done++] = bench_now_ns() - bench_stamp_read((const char *)echo);
}

//  A started call completed (zc_rpc_done_fn over an s_paced_t).
static void s_paced_done(zc_rpc_t *rpc, zc_rpc_call_t *call, void *arg)
{
    (void)rpc;
    const zc_rpc_reply_t *reply = zc_rpc_call_reply(call, 0);
    if (zc_rpc_call_status(call) == ZC_OK && reply)
        s_paced_record((s_paced_t *)arg, reply->data, reply->size);
}

//  Takes the replies that came within timeout_ms (bench_wait_fn over an
//  s_paced_t): the node's loop runs the calls' callbacks; raw replies are
//  read here.
static void s_paced_take(void *arg, int timeout_ms)
{
    s_paced_t *paced = (s_paced_t *)arg;
    s_caller_t *caller = paced->caller;
    if (caller->node) {
        zc_node_recv(caller->node, timeout_ms);
        return;
    }
    void *dealer = zsock_resolve(caller->dealers[0]);
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    if (timeout_ms > 0 && zmq_poll(&item, 1, timeout_ms) <= 0) return;
    while (zmq_msg_recv(&caller->reply, dealer, ZMQ_DONTWAIT) >= 0)
        s_paced_record(paced, zmq_msg_data(&caller->reply), zmq_msg_size(&caller->reply));
}

//  --rate: opt->count calls to server 0, each started at its intended
//  time whatever is still in flight, then up to 5 s for the last replies.
//  Returns 0 or -1.
static int s_paced(s_caller_t *caller, const bench_options_t *opt, char *payload,
                   bench_result_t *result)
{
    s_paced_t paced = {caller, (int64_t *)calloc((size_t)opt->count, sizeof(int64_t)), 0};
    zc_rpc_call_t **calls =
        caller->node ? (zc_rpc_call_t **)calloc((size_t)opt->count, sizeof *calls) : NULL;
    void *dealer = caller->node ? NULL : zsock_resolve(caller->dealers[0]);
    if (!paced.samples || (caller->node && !calls)) {
        fprintf(stderr, "zcluster bench: no memory for %ld calls (--count)\n", opt->count);
        free(paced.samples);
        free(calls);
        return -1;
    }
    int64_t start = bench_now_ns();
    for (long i = 0; i < opt->count; i++) {
        int64_t intended = bench_intended(opt, start, i);
        bench_pace(intended, s_paced_take, &paced);
        bench_stamp(payload, intended);
        if (calls)
            calls[i] = zc_rpc_start(caller->rpc, ZC_RPC_NODE, "bench-r0", "echo", payload,
                                    opt->size, 5000, s_paced_done, &paced);
        else
            zmq_send(dealer, payload, opt->size, 0);
    }
    int64_t sent = bench_now_ns(), give_up = sent + 5000000000LL;
    while (paced.done < opt->count && bench_now_ns() < give_up)
        s_paced_take(&paced, 1);
    for (long i = 0; calls && i < opt->count; i++)
        zc_rpc_call_destroy(&calls[i]);
    free(calls);
    result->sent = opt->count;
    result->received = paced.done;
    result->rate = paced.done / ((sent - start) / 1e9);
    bench_percentiles(paced.samples, paced.done, result);
    free(paced.samples);
    return 0;
}

static int s_rpc_once(const bench_options_t *opt, int raw, int all, bench_result_t *result)
{
    bench_children_t children;
    int servers = all ? opt->nodes : 1;
    if (bench_spawn(&children, servers, s_server, opt, &raw)) return -1;
    s_caller_t caller = {0};
    zmq_msg_init(&caller.reply);
    int rc = 0;
    if (raw) {
        for (int i = 0; i < servers && rc == 0; i++) {
            char ep[256];
            rc = bench_read_line(children.from[i], ep, sizeof ep, 10000);
            caller.dealers[i] = zsock_new(ZMQ_DEALER);
            caller.security[i] = bench_secure(zsock_resolve(caller.dealers[i]), 0);
            if (rc == 0) rc = zsock_connect(caller.dealers[i], "%s", ep);
            caller.count++;
        }
    } else {
        caller.node = zc_node_new("bench-c");
        zc_node_set_redis(caller.node, opt->redis_url);
        zc_node_set_cluster(caller.node, "bench");
        zc_node_set_election(caller.node, 0);
        zc_mesh_set_hwm(zc_node_mesh(caller.node), BENCH_HWM);
        rc = zc_node_start(caller.node);
        if (rc == 0) {
            //  All nodes includes the caller: it answers inline, at no network cost.
            caller.rpc = zc_rpc_new(caller.node);
            zc_rpc_set_threads(caller.rpc, 0);
            zc_rpc_register(caller.rpc, "echo", s_echo, NULL);
        }
        int64_t give_up = bench_now_ns() + 10 * 1000000000LL;
        while (rc == 0 && zc_node_peer_count(caller.node) < (size_t)servers &&
               bench_now_ns() < give_up)
            zc_node_recv(caller.node, 10);
        if (rc == 0) rc = bench_gather(&children, 10000);
    }
    char *payload = (char *)calloc(1, opt->size);
    //  Warm up, then measure.
    for (int i = 0; rc == 0 && i < 100; i++)
        rc = s_call(&caller, all ? -1 : 0, payload, opt->size);
    if (rc == 0)
        rc = opt->rate > 0 ? s_paced(&caller, opt, payload, result)
                           : s_sequential(&caller, opt, all, payload, result);
    free(payload);
    zc_rpc_destroy(&caller.rpc);
    zc_node_destroy(&caller.node);
    for (int i = 0; i < caller.count; i++) {
        zsock_destroy(&caller.dealers[i]);
        zc_security_destroy(&caller.security[i]);
    }
    zmq_msg_close(&caller.reply);
    bench_reap(&children, raw); //  the raw echoes serve until killed
    return rc;
}

int bench_rpc(const bench_options_t *opt, int all, bench_result_t *project,
              bench_result_t *baseline)
{
    return s_rpc_once(opt, 1, all, baseline) || s_rpc_once(opt, 0, all, project) ? -1 : 0;
}
