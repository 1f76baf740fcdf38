/*  test_rpc_wire — the RPC payloads of docs/PROTOCOL.md (section 12)
    against a real C node.

    Section 14.8 of the document is one conversation between `alpha`, a
    peer, and `beta`, a C node serving `rpc.echo`. This test reads those
    vectors out of the document (tests/vectorkit.h) and plays alpha with
    bare ZeroMQ sockets: it sends alpha's frames exactly as written, makes
    beta send each of its frames (a reply to alpha's request, a call, a
    kill) and checks them byte for byte (the `info` reply, whose counters
    and uptime vary, by its shape), and checks how beta reads each reply
    alpha sends (status, code, message or result). Each vector's `rpc` line
    is also checked against its payload, so the prose and the bytes agree.
*/
#include "testkit.h"
#include "vectorkit.h"
#include "zcluster.h"

#include <czmq.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static zt_vector_t s_vectors[ZT_VECTOR_MAX];

//  beta's one method: answers its arguments, fails on "fail", returns
//  without an answer on "none".
static void s_echo(zc_rpc_request_t *request, void *arg)
{
    static const char fail[] = "\xa4"
                               "fail",
                      none[] = "\xa4"
                               "none";
    const char *args = (const char *)zc_rpc_request_args(request);
    size_t size = zc_rpc_request_size(request);
    if (size == 5 && memcmp(args, fail, 5) == 0)
        zc_rpc_fail(request, 42, "asked to fail");
    else if (size != 5 || memcmp(args, none, 5) != 0)
        zc_rpc_respond(request, args, size);
}

//  The value of key in a vector's "key=value ..." line, into out.
static void s_decoded(const zt_vector_t *v, const char *key, char *out, size_t cap)
{
    out[0] = 0;
    char pattern[32];
    snprintf(pattern, sizeof pattern, " %s=", key);
    char line[sizeof v->decoded + 1];
    snprintf(line, sizeof line, " %s", v->decoded);
    const char *at = strstr(line, pattern);
    if (!at) return;
    at += strlen(pattern);
    snprintf(out, cap, "%.*s", (int)strcspn(at, " "), at);
}

//  A msgpack value as msgpack-c prints it (the document's VALUE).
static void s_print(const uint8_t *data, size_t size, char *out, size_t cap)
{
    msgpack_unpacked result;
    msgpack_unpacked_init(&result);
    size_t offset = 0;
    if (msgpack_unpack_next(&result, (const char *)data, size, &offset) == MSGPACK_UNPACK_SUCCESS &&
        offset == size)
        msgpack_object_print_buffer(out, cap, result.data);
    else
        snprintf(out, cap, "(not one msgpack value)");
    msgpack_unpacked_destroy(&result);
}

//  The protocol's status number of an outcome (section 12.2).
static int s_wire_status(zc_error_t status)
{
    const zc_error_t kinds[] = {ZC_OK,
                                ZC_ERR_UNKNOWN_METHOD,
                                ZC_ERR_HANDLER,
                                ZC_ERR_TIMEOUT,
                                ZC_ERR_PEER_GONE,
                                ZC_ERR_NO_ROUTE,
                                ZC_ERR_UNKNOWN_CONNECTION,
                                ZC_ERR_INVALID};
    for (int i = 0; i < 8; i++)
        if (kinds[i] == status) return i;
    return -1;
}

//  Checks a payload against the vector's rpc line: "args V", "ok V",
//  "ok shape", "kill N" or "error status=S code=C message=M".
static void s_check_rpc_line(const zt_vector_t *v, const uint8_t *payload, size_t size)
{
    char text[1024], expected[1024];
    if (strncmp(v->rpc, "error ", 6) == 0) {
        char sender[64];
        s_decoded(v, "sender", sender, sizeof sender);
        if (strcmp(sender, "beta") != 0) return; //  as beta reads it: checked on the call
        msgpack_unpacked result;
        msgpack_unpacked_init(&result);
        size_t offset = 0;
        int ok = msgpack_unpack_next(&result, (const char *)payload, size, &offset) ==
                     MSGPACK_UNPACK_SUCCESS &&
                 result.data.type == MSGPACK_OBJECT_ARRAY && result.data.via.array.size == 3;
        if (ZT_CHECK(ok)) {
            msgpack_object *o = result.data.via.array.ptr;
            snprintf(text, sizeof text, "error status=%" PRIu64 " code=%" PRId64 " message=%.*s",
                     o[0].via.u64, o[1].via.i64, (int)o[2].via.str.size, o[2].via.str.ptr);
            if (!ZT_CHECK(strcmp(text, v->rpc) == 0))
                fprintf(stderr, "  %s: payload says '%s'\n", v->name, text);
        }
        msgpack_unpacked_destroy(&result);
        return;
    }
    const char *value = strchr(v->rpc, ' ');
    if (!ZT_CHECK(value != NULL) || strcmp(v->rpc, "ok shape") == 0) return;
    s_print(payload, size, text, sizeof text);
    snprintf(expected, sizeof expected, "%s", value + 1);
    if (!ZT_CHECK(strcmp(text, expected) == 0))
        fprintf(stderr, "  %s: payload prints as %s, the document says %s\n", v->name, text,
                expected);
}

//  Same shape: the same types, map keys in the same order, equal strings;
//  integers may differ (counters, uptime).
static int s_same_shape(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type) return 0;
    if (a->type == MSGPACK_OBJECT_STR)
        return a->via.str.size == b->via.str.size &&
               memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
    if (a->type == MSGPACK_OBJECT_ARRAY) {
        if (a->via.array.size != b->via.array.size) return 0;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!s_same_shape(&a->via.array.ptr[i], &b->via.array.ptr[i])) return 0;
    }
    if (a->type == MSGPACK_OBJECT_MAP) {
        if (a->via.map.size != b->via.map.size) return 0;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!s_same_shape(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                !s_same_shape(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return 0;
    }
    return 1;
}

static int s_shape_matches(const uint8_t *a, size_t a_size, const uint8_t *b, size_t b_size)
{
    msgpack_unpacked x, y;
    msgpack_unpacked_init(&x);
    msgpack_unpacked_init(&y);
    size_t ox = 0, oy = 0;
    int same = msgpack_unpack_next(&x, (const char *)a, a_size, &ox) == MSGPACK_UNPACK_SUCCESS &&
               msgpack_unpack_next(&y, (const char *)b, b_size, &oy) == MSGPACK_UNPACK_SUCCESS &&
               ox == a_size && oy == b_size && s_same_shape(&x.data, &y.data);
    msgpack_unpacked_destroy(&x);
    msgpack_unpacked_destroy(&y);
    return same;
}

typedef struct {
    zc_node_t *beta;
    zc_rpc_t *rpc;
    zsock_t *router, *pub, *dealer; //  alpha's sockets
    zc_rpc_call_t *call;            //  beta's call in progress
} s_play_t;

//  Runs beta until alpha's ROUTER has a message, then checks it: from
//  beta, and the vector's bytes (for `ok shape`, the vector's shape).
static void s_expect_from_beta(s_play_t *p, const zt_vector_t *v)
{
    int64_t deadline = zt_now_ms() + 5000;
    while (!(zsock_events(p->router) & ZMQ_POLLIN) && zt_now_ms() < deadline)
        zc_node_recv(p->beta, 10); //  beta has no application messages here
    zmsg_t *msg = zsock_events(p->router) & ZMQ_POLLIN ? zmsg_recv(p->router) : NULL;
    if (!ZT_CHECK(msg != NULL && zmsg_size(msg) == 2)) {
        fprintf(stderr, "  %s: beta sent nothing (or not two frames)\n", v->name);
        zmsg_destroy(&msg);
        return;
    }
    zframe_t *id = zmsg_first(msg), *frame = zmsg_next(msg);
    ZT_CHECK(zframe_streq(id, "beta"));
    const zt_frame_t *f = &v->frame[0];
    const uint8_t *got = zframe_data(frame);
    size_t size = zframe_size(frame), header = f->mark[0];
    int same;
    if (strcmp(v->rpc, "ok shape") == 0)
        same = size > header && memcmp(got, f->data, header) == 0 &&
               s_shape_matches(got + header, size - header, f->data + header, f->size - header);
    else
        same = size == f->size && memcmp(got, f->data, size) == 0;
    if (!ZT_CHECK(same)) {
        fprintf(stderr, "  %s: beta sent", v->name);
        for (size_t i = 0; i < size; i++)
            fprintf(stderr, " %02x", got[i]);
        fprintf(stderr, "\n");
    }
    zmsg_destroy(&msg);
}

//  Runs beta until its call completes, then checks how it read alpha's
//  reply against the vector's rpc line.
static void s_expect_reading(s_play_t *p, const zt_vector_t *v)
{
    if (!ZT_CHECK(p->call != NULL)) return;
    zc_rpc_wait(p->rpc, p->call);
    const zc_rpc_reply_t *reply = zc_rpc_call_reply(p->call, 0);
    char text[1024] = "(no reply)", value[900];
    if (reply && reply->status == ZC_OK) {
        s_print((const uint8_t *)reply->data, reply->size, value, sizeof value);
        snprintf(text, sizeof text, "ok %s", value);
    } else if (reply)
        snprintf(text, sizeof text, "error status=%d code=%d message=%s",
                 s_wire_status(reply->status), reply->error_code, reply->error);
    if (!ZT_CHECK(strcmp(text, v->rpc) == 0))
        fprintf(stderr, "  %s: beta read '%s'\n", v->name, text);
    zc_rpc_call_destroy(&p->call);
}

//  Plays one vector of the conversation.
static void s_play(s_play_t *p, const zt_vector_t *v)
{
    char sender[64], kind[8], type[64];
    s_decoded(v, "sender", sender, sizeof sender);
    s_decoded(v, "kind", kind, sizeof kind);
    s_decoded(v, "type", type, sizeof type);
    const zt_frame_t *f = &v->frame[0];
    if (!ZT_CHECK(strcmp(v->via, "router") == 0 && f->marks == 1)) return;
    const uint8_t *payload = f->data + f->mark[0];
    size_t payload_size = f->size - f->mark[0];
    s_check_rpc_line(v, payload, payload_size);
    if (strcmp(sender, "alpha") == 0) {
        zframe_t *frame = zframe_new(f->data, f->size);
        zframe_send(&frame, p->dealer, 0);
        if (strcmp(kind, "5") == 0) s_expect_reading(p, v);
        return;
    }
    if (strcmp(kind, "4") == 0) {
        ZT_CHECK(p->call == NULL);
        p->call = zc_rpc_start(p->rpc, ZC_RPC_NODE, "alpha", type, payload, payload_size, 5000,
                               NULL, NULL);
    } else if (strcmp(type, "zc.kill") == 0)
        ZT_EQ(zc_node_kill(p->beta, "alpha", atoi(v->rpc + 5)), 0);
    s_expect_from_beta(p, v);
}

int main(void)
{
    zt_section("docs/PROTOCOL.md 14.8: alpha's frames to a C node, and the C node's to alpha");
    int count = zt_vectors_load(s_vectors, ZT_VECTOR_MAX);
    if (!ZT_CHECK(count > 0)) return zt_done();
    zt_redis_t *redis = zt_redis_start();
    if (!ZT_CHECK(redis != NULL)) return zt_done();

    s_play_t p = {0};
    p.beta = zc_node_new("beta");
    zc_node_set_redis(p.beta, zt_redis_url(redis));
    zc_node_set_cluster(p.beta, "rpcwire");
    zc_node_set_election(p.beta, 0);
    ZT_EQ(zc_node_start(p.beta), 0);
    p.rpc = zc_rpc_new(p.beta);
    ZT_EQ(zc_rpc_set_threads(p.rpc, 0), 0); //  replies in the order of the requests
    ZT_EQ(zc_rpc_register(p.rpc, "rpc.echo", s_echo, NULL), 0);

    //  alpha: bare sockets, known to beta's mesh directly (no registry).
    p.router = zsock_new_router("tcp://127.0.0.1:*");
    p.pub = zsock_new_pub("tcp://127.0.0.1:*");
    p.dealer = zsock_new(ZMQ_DEALER);
    zsock_set_identity(p.dealer, "alpha");
    zc_mesh_t *mesh = zc_node_mesh(p.beta);
    ZT_EQ(zsock_connect(p.dealer, "%s", zc_mesh_router_endpoint(mesh)), 0);
    char *router_ep = zsock_last_endpoint(p.router), *pub_ep = zsock_last_endpoint(p.pub);
    ZT_EQ(zc_mesh_peer_add(mesh, "alpha", pub_ep, router_ep, NULL), 0);
    zstr_free(&router_ep);
    zstr_free(&pub_ep);

    int played = 0;
    for (int i = 0; i < count; i++)
        if (*s_vectors[i].rpc) {
            s_play(&p, &s_vectors[i]);
            played++;
        }
    //  The conversation covers both statuses a server sends, ok, the
    //  built-ins, the readings of foreign replies, and kill.
    ZT_CHECK(played >= 23);
    const char *needed[] = {"rpc-handler-error",
                            "rpc-no-result",
                            "rpc-unknown-method",
                            "rpc-ping-ok",
                            "rpc-methods-ok",
                            "rpc-info-ok",
                            "rpc-unknown-status",
                            "rpc-malformed-error",
                            "rpc-relayed-status",
                            "rpc-call-ok",
                            "kill"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        if (!ZT_CHECK(zt_vector_find(s_vectors, count, needed[i]) != NULL))
            fprintf(stderr, "  vector %s missing\n", needed[i]);

    zc_rpc_call_destroy(&p.call);
    zc_rpc_destroy(&p.rpc);
    zc_node_destroy(&p.beta);
    zsock_destroy(&p.dealer);
    zsock_destroy(&p.pub);
    zsock_destroy(&p.router);
    zt_redis_destroy(&redis);
    return zt_done();
}
