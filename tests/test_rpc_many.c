/*  RPC with many calls in flight: the pending-call table and how replies
    find their calls, the handler pool's hand-back, inline answers sent
    from the message's own bytes.

    - A reply finds its call by corr alone: a node's first call is corr 1;
      a reply whose corr names the right slot but an older use of it, or no
      slot at all, is late and completes nothing; the same reply twice is
      late the second time.
    - 500 calls at once to this node, on the pool (4 threads), each with
      its own arguments: every one completes with its own echo, and a
      result larger than a call keeps inline comes back whole.
    - 500 calls at once to a node in another process that serves inline
      (threads 0): the same, plus a handler error and a handler that gives
      no answer, both answered from inside the handler's call. */
#include "testkit.h"
#include "zcluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALLS 500
#define BIG   1000 //  larger than a call keeps inline

static void s_echo(zc_rpc_request_t *request, void *arg)
{
    zc_rpc_respond(request, zc_rpc_request_args(request), zc_rpc_request_size(request));
}

static void s_fail42(zc_rpc_request_t *request, void *arg)
{
    zc_rpc_fail(request, 42, "asked to fail");
}

static void s_silent(zc_rpc_request_t *request, void *arg)
{
}

static void s_big(zc_rpc_request_t *request, void *arg)
{
    uint8_t result[BIG];
    for (int i = 0; i < BIG; i++)
        result[i] = (uint8_t)i;
    zc_rpc_respond(request, result, sizeof result);
}

static zc_node_t *s_node_start(const char *id, const char *url)
{
    zc_node_t *node = zc_node_new(id);
    zc_node_set_redis(node, url);
    zc_node_set_cluster(node, "rpc-many");
    zc_node_set_election(node, 0);
    return zc_node_start(node) == 0 ? node : (zc_node_destroy(&node), NULL);
}

static void s_register(zc_rpc_t *rpc)
{
    zc_rpc_register(rpc, "echo", s_echo, NULL);
    zc_rpc_register(rpc, "fail", s_fail42, NULL);
    zc_rpc_register(rpc, "silent", s_silent, NULL);
    zc_rpc_register(rpc, "big", s_big, NULL);
}

//  The child: node "srv", handlers inline, until its pipe closes.
static void s_server(const char *url, int pipe_fd)
{
    zc_node_t *node = s_node_start("srv", url);
    zc_rpc_t *rpc = node ? zc_rpc_new(node) : NULL;
    if (rpc) {
        zc_rpc_set_threads(rpc, 0);
        s_register(rpc);
    }
    while (node) {
        zmq_pollitem_t items[1 + ZC_NODE_POLLITEMS_MAX] = {{NULL, pipe_fd, ZMQ_POLLIN, 0}};
        int n = 1 + zc_node_pollitems(node, items + 1);
        zmq_poll(items, n, 100);
        if (items[0].revents) break;
        while (zc_node_recv(node, 0))
            ;
    }
    zc_rpc_destroy(&rpc);
    zc_node_destroy(&node);
}

//  CALLS calls to `to` at once, call i with the msgpack uint i as its
//  arguments. Returns how many completed OK with their own arguments back.
static int s_many(zc_rpc_t *rpc, const char *to)
{
    zc_rpc_call_t **calls = (zc_rpc_call_t **)calloc(CALLS, sizeof *calls);
    uint8_t args[CALLS][3];
    for (int i = 0; i < CALLS; i++) {
        args[i][0] = 0xcd; //  uint 16
        args[i][1] = (uint8_t)(i >> 8);
        args[i][2] = (uint8_t)i;
        calls[i] = zc_rpc_start(rpc, ZC_RPC_NODE, to, "echo", args[i], 3, 10000, NULL, NULL);
    }
    int ok = 0;
    for (int i = 0; i < CALLS; i++) {
        const zc_rpc_reply_t *reply = NULL;
        if (zc_rpc_wait(rpc, calls[i]) == ZC_OK) reply = zc_rpc_call_reply(calls[i], 0);
        if (reply && reply->size == 3 && memcmp(reply->data, args[i], 3) == 0 &&
            strcmp(reply->node, to) == 0)
            ok++;
        zc_rpc_call_destroy(&calls[i]);
    }
    free(calls);
    return ok;
}

//  A result of BIG bytes from `to` comes back whole.
static int s_big_whole(zc_rpc_t *rpc, const char *to)
{
    zc_rpc_call_t *call = zc_rpc_call(rpc, ZC_RPC_NODE, to, "big", NULL, 0, 5000);
    const zc_rpc_reply_t *reply = zc_rpc_call_reply(call, 0);
    int whole = zc_rpc_call_status(call) == ZC_OK && reply && reply->size == BIG;
    for (int i = 0; whole && i < BIG; i++)
        whole = ((const uint8_t *)reply->data)[i] == (uint8_t)i;
    zc_rpc_call_destroy(&call);
    return whole;
}

//  Sends a zc.ok reply with corr from raw to the node and runs the node
//  until its late count moves or 2 s pass. Returns the late count.
static uint64_t s_forged_reply(zc_mesh_t *raw, zc_node_t *node, zc_rpc_t *rpc, uint64_t corr)
{
    zc_rpc_stats_t stats;
    zc_rpc_stats(rpc, &stats);
    uint64_t late = stats.late_replies;
    zc_mesh_send_to(raw, zc_node_id(node), ZC_KIND_REPLY, "zc.ok", corr, "\xc3", 1);
    for (int64_t until = zt_now_ms() + 2000; stats.late_replies == late && zt_now_ms() < until;) {
        zc_node_recv(node, 5);
        zc_rpc_stats(rpc, &stats);
    }
    return stats.late_replies;
}

//  The node calls a bare mesh, which answers with forged corrs.
static void s_check_corr(zc_node_t *node, zc_rpc_t *rpc)
{
    zt_section("a reply finds its call by corr; a stale or unknown corr completes nothing");
    zc_mesh_t *raw = zc_mesh_new("raw-1");
    zc_mesh_set_endpoints(raw, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*");
    ZT_EQ(zc_mesh_start(raw), 0);
    zc_mesh_t *mesh = zc_node_mesh(node);
    zc_mesh_peer_add(raw, zc_node_id(node), zc_mesh_pub_endpoint(mesh),
                     zc_mesh_router_endpoint(mesh), NULL);
    zc_mesh_peer_add(mesh, "raw-1", zc_mesh_pub_endpoint(raw), zc_mesh_router_endpoint(raw), NULL);
    zc_rpc_call_t *call =
        zc_rpc_start(rpc, ZC_RPC_NODE, "raw-1", "echo", "\xc0", 1, 5000, NULL, NULL);
    zc_msg_t *request = NULL;
    for (int64_t until = zt_now_ms() + 3000; !request && zt_now_ms() < until;)
        request = zc_mesh_recv(raw, 10);
    ZT_CHECK(request && zc_msg_kind(request) == ZC_KIND_REQUEST);
    uint64_t corr = request ? zc_msg_corr(request) : 0;
    ZT_EQ(corr, 1);                                                //  the node's first call
    ZT_EQ(s_forged_reply(raw, node, rpc, corr + (1ull << 32)), 1); //  an older use of its slot
    ZT_EQ(s_forged_reply(raw, node, rpc, corr | 0xfffff), 2);      //  no such slot
    ZT_CHECK(!zc_rpc_call_done(call));
    ZT_EQ(s_forged_reply(raw, node, rpc, corr), 2);
    ZT_EQ(zc_rpc_wait(rpc, call), ZC_OK);
    const zc_rpc_reply_t *reply = zc_rpc_call_reply(call, 0);
    ZT_CHECK(reply && reply->size == 1 && ((const uint8_t *)reply->data)[0] == 0xc3);
    ZT_EQ(s_forged_reply(raw, node, rpc, corr), 3); //  the same reply again
    zc_rpc_call_destroy(&call);
    zc_mesh_peer_remove(mesh, "raw-1");
    zc_mesh_destroy(&raw);
}

int main(void)
{
    zt_redis_t *redis = zt_redis_start();
    if (!ZT_CHECK(redis != NULL)) return zt_done();
    const char *url = zt_redis_url(redis);
    int pipe_fds[2];
    ZT_EQ(pipe(pipe_fds), 0);
    pid_t server = zt_fork(); //  before this process has any zmq context
    if (server == 0) {
        close(pipe_fds[1]);
        s_server(url, pipe_fds[0]);
        _exit(0);
    }
    close(pipe_fds[0]);

    zc_node_t *node = s_node_start("cli", url);
    if (!ZT_CHECK(node != NULL)) return zt_done();
    zc_rpc_t *rpc = zc_rpc_new(node);
    ZT_EQ(zc_rpc_set_threads(rpc, 4), 0);
    s_register(rpc);
    s_check_corr(node, rpc);

    zt_section("500 calls at once to this node, on the pool");
    ZT_EQ(s_many(rpc, "cli"), CALLS);
    ZT_CHECK(s_big_whole(rpc, "cli"));

    zt_section("500 calls at once to a node that serves inline");
    for (int64_t until = zt_now_ms() + 5000;
         !zc_node_peer_exists(node, "srv") && zt_now_ms() < until;)
        zc_node_recv(node, 10);
    ZT_CHECK(zc_node_peer_exists(node, "srv"));
    ZT_EQ(s_many(rpc, "srv"), CALLS);
    ZT_CHECK(s_big_whole(rpc, "srv"));
    zc_rpc_call_t *call = zc_rpc_call(rpc, ZC_RPC_NODE, "srv", "fail", NULL, 0, 5000);
    const zc_rpc_reply_t *reply = zc_rpc_call_reply(call, 0);
    ZT_EQ(zc_rpc_call_status(call), ZC_ERR_HANDLER);
    ZT_CHECK(reply && reply->error_code == 42 && strcmp(reply->error, "asked to fail") == 0);
    zc_rpc_call_destroy(&call);
    call = zc_rpc_call(rpc, ZC_RPC_NODE, "srv", "silent", NULL, 0, 5000);
    reply = zc_rpc_call_reply(call, 0);
    ZT_EQ(zc_rpc_call_status(call), ZC_ERR_HANDLER);
    ZT_CHECK(reply && reply->error_code == -1 &&
             strcmp(reply->error, "the handler gave no result") == 0);
    zc_rpc_call_destroy(&call);
    zc_rpc_stats_t stats;
    zc_rpc_stats(rpc, &stats);
    ZT_EQ(stats.calls_timed_out, 0);

    zc_rpc_destroy(&rpc);
    zc_node_destroy(&node);
    close(pipe_fds[1]);
    int status = -1;
    ZT_EQ(waitpid(server, &status, 0), server);
    ZT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    zt_redis_destroy(&redis);
    return zt_done();
}
