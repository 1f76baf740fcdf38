/*  rpc — a node serves a method, another calls it.

    The server registers "add" (arguments: a msgpack array of two integers;
    result: their sum) and runs its node on a thread of its own; the client
    calls it by node id and prints the result. Only registered methods can
    be called; an unknown one comes back as ZC_ERR_UNKNOWN_METHOD.

    Run: ZC_REDIS_URL=redis://127.0.0.1:6379 ./rpc
*/
#include <zcluster.h>

#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_int s_done;

//  add([a, b]) -> a + b, on one of the RPC's handler threads.
static void s_add(zc_rpc_request_t *request, void *arg)
{
    msgpack_unpacked args;
    msgpack_unpacked_init(&args);
    if (msgpack_unpack_next(&args, zc_rpc_request_args(request), zc_rpc_request_size(request),
                            NULL) != MSGPACK_UNPACK_SUCCESS ||
        args.data.type != MSGPACK_OBJECT_ARRAY || args.data.via.array.size != 2) {
        zc_rpc_fail(request, 1, "add takes [a, b]");
        msgpack_unpacked_destroy(&args);
        return;
    }
    int64_t sum = args.data.via.array.ptr[0].via.i64 + args.data.via.array.ptr[1].via.i64;
    msgpack_unpacked_destroy(&args);
    msgpack_sbuffer out;
    msgpack_sbuffer_init(&out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
    msgpack_pack_int64(&pk, sum);
    zc_rpc_respond(request, out.data, out.size);
    msgpack_sbuffer_destroy(&out);
}

//  The server's node must be run (zc_node_recv) for requests to be served.
static void *s_serve(void *arg)
{
    zc_node_t *server = (zc_node_t *)arg;
    while (!s_done)
        zc_node_recv(server, 100);
    return NULL;
}

int main(void)
{
    zc_node_t *server = zc_node_new("server");
    zc_node_t *client = zc_node_new("client");
    zc_node_set_cluster(server, "examples");
    zc_node_set_cluster(client, "examples");
    zc_rpc_t *server_rpc = zc_rpc_new(server);
    zc_rpc_t *client_rpc = zc_rpc_new(client);
    zc_rpc_register(server_rpc, "add", s_add, NULL);
    if (zc_node_start(server) || zc_node_start(client)) {
        fprintf(stderr, "cannot start: %s\n", zc_node_errstr(server));
        return 1;
    }
    pthread_t thread;
    pthread_create(&thread, NULL, s_serve, server);

    int rc = 1;
    if (zc_node_wait_peers(client, 1, 10000) == 0) {
        msgpack_sbuffer args;
        msgpack_sbuffer_init(&args);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int(&pk, 40);
        msgpack_pack_int(&pk, 2);
        zc_rpc_call_t *call =
            zc_rpc_call(client_rpc, ZC_RPC_NODE, "server", "add", args.data, args.size, 5000);
        msgpack_sbuffer_destroy(&args);
        if (zc_rpc_call_status(call) == ZC_OK) {
            const zc_rpc_reply_t *reply = zc_rpc_call_reply(call, 0);
            msgpack_unpacked result;
            msgpack_unpacked_init(&result);
            if (msgpack_unpack_next(&result, reply->data, reply->size, NULL) ==
                MSGPACK_UNPACK_SUCCESS) {
                printf("add(40, 2) on %s = %lld\n", reply->node, (long long)result.data.via.i64);
                rc = result.data.via.i64 == 42 ? 0 : 1;
            }
            msgpack_unpacked_destroy(&result);
        } else
            fprintf(stderr, "call failed: %s\n", zc_strerror(zc_rpc_call_status(call)));
        zc_rpc_call_destroy(&call);
    }
    s_done = 1;
    pthread_join(thread, NULL);
    zc_rpc_destroy(&client_rpc);
    zc_rpc_destroy(&server_rpc);
    zc_node_destroy(&client);
    zc_node_destroy(&server);
    return rc;
}
