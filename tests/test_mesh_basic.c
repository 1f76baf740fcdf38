/*  In-process checks of zc_mesh: two meshes in one process over tcp loopback. */
#include "testkit.h"
#include "zcluster.h"

#include <errno.h>
#include <string.h>

//  Receives the next message or fails after timeout_ms.
static zc_msg_t *s_recv(zc_mesh_t *mesh, int timeout_ms)
{
    return zc_mesh_recv(mesh, timeout_ms);
}

static int s_handled;
static void s_on_ping(zc_mesh_t *mesh, const zc_msg_t *msg, void *arg)
{
    s_handled++;
    ZT_CHECK(strcmp(zc_msg_type(msg), "ping") == 0);
    ZT_CHECK(arg == (void *)mesh);
}

//  Receives one frame (the last of a message) from a raw socket into buf;
//  returns its size, or -1.
static int s_raw_frame(void *socket, uint8_t *buf, size_t cap)
{
    int size, more = 1;
    int timeout = 2000;
    zmq_setsockopt(socket, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    while (more) {
        size = zmq_recv(socket, buf, cap, 0);
        if (size < 0 || (size_t)size > cap) return -1;
        more = 0;
        size_t len = sizeof more;
        zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &len);
    }
    return size;
}

//  Checks that frame is topic (topic_len bytes, may be 0), then the
//  encoder's header for these fields, then payload.
static void s_check_frame(const uint8_t *frame, int size, const char *topic, size_t topic_len,
                          int kind, const char *type, uint64_t seq, uint64_t corr,
                          const char *payload)
{
    zc_header_t h = {.version = ZC_WIRE_VERSION, .kind = (uint8_t)kind, .seq = seq, .corr = corr};
    snprintf(h.type, sizeof h.type, "%s", type);
    snprintf(h.sender, sizeof h.sender, "alpha");
    uint8_t want[ZC_WIRE_TOPIC_MAX + ZC_WIRE_HEADER_MAX + 64];
    memcpy(want, topic, topic_len);
    int len = zc_wire_header_encode(&h, want + topic_len, ZC_WIRE_HEADER_MAX);
    ZT_CHECK(len > 0);
    memcpy(want + topic_len + len, payload, strlen(payload));
    size_t want_size = topic_len + (size_t)len + strlen(payload);
    ZT_CHECK(size == (int)want_size && memcmp(frame, want, want_size) == 0);
}

int main(void)
{
    zt_section("names and construction");
    ZT_CHECK(zc_mesh_new("bad id") == NULL);
    ZT_CHECK(zc_mesh_new("") == NULL);
    zc_mesh_t *generated = zc_mesh_new(NULL);
    ZT_CHECK(generated && strlen(zc_mesh_id(generated)) > 0);
    zc_mesh_destroy(&generated);
    zc_mesh_destroy(&generated);
    ZT_CHECK(generated == NULL);

    zc_mesh_t *a = zc_mesh_new("alpha");
    zc_mesh_t *b = zc_mesh_new("beta");
    zc_mesh_set_max_msg_size(b, 1000);
    ZT_EQ(zc_mesh_start(a), 0);
    ZT_EQ(zc_mesh_start(b), 0);
    ZT_CHECK(strncmp(zc_mesh_pub_endpoint(a), "tcp://127.0.0.1:", 16) == 0);
    ZT_EQ(zc_mesh_peer_add(a, "alpha", "tcp://x:1", "tcp://x:2", NULL), -1);
    ZT_EQ(zc_mesh_peer_add(a, "beta", "nonsense", "tcp://x:2", NULL), -1);
    ZT_EQ(zc_mesh_peer_add(a, "beta", zc_mesh_pub_endpoint(b), zc_mesh_router_endpoint(b), NULL),
          0);
    ZT_EQ(zc_mesh_peer_add(b, "alpha", zc_mesh_pub_endpoint(a), zc_mesh_router_endpoint(a), NULL),
          0);
    ZT_EQ(zc_mesh_peer_count(a), 1);
    ZT_CHECK(zc_mesh_peer_exists(a, "beta"));
    ZT_EQ(zc_mesh_join(b, "g1"), 0);
    ZT_EQ(zc_mesh_join(b, "bad group"), -1);
    zc_mesh_recv(b, 300); //  let subscriptions reach alpha's PUB

    zt_section("public, group, private between two meshes");
    ZT_EQ(zc_mesh_publish(a, "greet", "hello", 5), 0);
    zc_msg_t *msg = s_recv(b, 2000);
    ZT_CHECK(msg != NULL);
    if (msg) {
        ZT_EQ(zc_msg_kind(msg), ZC_KIND_PUBLIC);
        ZT_CHECK(strcmp(zc_msg_sender(msg), "alpha") == 0);
        ZT_CHECK(strcmp(zc_msg_type(msg), "greet") == 0);
        ZT_CHECK(zc_msg_group(msg) == NULL);
        ZT_EQ(zc_msg_seq(msg), 1);
        ZT_EQ(zc_msg_size(msg), 5);
        ZT_CHECK(memcmp(zc_msg_data(msg), "hello", 5) == 0);
    }
    ZT_EQ(zc_mesh_shout(a, "g1", "news", "n", 1), 0);
    msg = s_recv(b, 2000);
    ZT_CHECK(msg && zc_msg_kind(msg) == ZC_KIND_GROUP && strcmp(zc_msg_group(msg), "g1") == 0);
    ZT_EQ(zc_mesh_whisper(a, "beta", "secret", "s", 1), 0);
    msg = s_recv(b, 2000);
    ZT_CHECK(msg && zc_msg_kind(msg) == ZC_KIND_PRIVATE &&
             strcmp(zc_msg_sender(msg), "alpha") == 0);
    ZT_EQ(zc_mesh_whisper(a, "nobody", "secret", "s", 1), -1);
    ZT_EQ(errno, EHOSTUNREACH);

    zt_section("limits on the sending side");
    ZT_EQ(zc_mesh_publish(a, "bad type", "x", 1), -1);
    ZT_EQ(errno, EINVAL);

    zt_section("handlers consume messages of their type");
    ZT_EQ(zc_mesh_on(b, "ping", s_on_ping, b), 0);
    ZT_EQ(zc_mesh_publish(a, "ping", "", 0), 0);
    ZT_EQ(zc_mesh_publish(a, "after", "", 0), 0);
    msg = s_recv(b, 2000);
    ZT_CHECK(msg && strcmp(zc_msg_type(msg), "after") == 0);
    ZT_EQ(s_handled, 1);

    zt_section("leave stops delivery, even of queued messages");
    ZT_EQ(zc_mesh_shout(a, "g1", "news", "1", 1), 0);
    zc_mesh_recv(a, 200); //  let it arrive in beta's queue
    ZT_EQ(zc_mesh_leave(b, "g1"), 0);
    ZT_EQ(zc_mesh_leave(b, "g1"), -1);
    msg = s_recv(b, 300);
    ZT_CHECK(msg == NULL);

    zc_mesh_stats_t sa, sb;
    zc_mesh_stats(a, &sa);
    zc_mesh_stats(b, &sb);
    ZT_EQ(sa.sent_public, 3);
    ZT_EQ(sa.sent_group, 2);
    ZT_EQ(sa.sent_private, 1);
    ZT_EQ(sa.no_route, 1);
    ZT_EQ(sb.recv_public, 3);
    ZT_EQ(sb.recv_group, 1);
    ZT_EQ(sb.recv_private, 1);
    ZT_EQ(sb.lost, 0);

    zt_section("the bytes a mesh sends are the encoder's, type after type");
    {
        void *ctx = zmq_ctx_new();
        void *sub = zmq_socket(ctx, ZMQ_SUB), *router = zmq_socket(ctx, ZMQ_ROUTER);
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
        zmq_connect(sub, zc_mesh_pub_endpoint(a));
        zmq_bind(router, "tcp://127.0.0.1:*");
        char endpoint[256];
        size_t len = sizeof endpoint;
        zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &len);
        ZT_EQ(zc_mesh_peer_add(a, "raw", "tcp://127.0.0.1:9", endpoint, NULL), 0);
        uint8_t frame[1024];
        //  The raw SUB is subscribed once it hears a publish.
        int size = -1;
        for (int i = 0; i < 50 && size < 0; i++) {
            zc_mesh_publish(a, "warm", "", 0);
            zmq_setsockopt(sub, ZMQ_RCVTIMEO, &(int){100}, sizeof(int));
            size = zmq_recv(sub, frame, sizeof frame, 0);
        }
        ZT_CHECK(size > 0);
        while (zmq_recv(sub, frame, sizeof frame, ZMQ_DONTWAIT) >= 0)
            ;
        zc_mesh_stats_t sent;
        zc_mesh_stats(a, &sent);
        uint64_t seq = sent.sent_public;
        //  Types and kinds alternate, and seq grows past one byte.
        for (int i = 0; i < 300; i++) {
            const char *type = i % 3 ? "tick" : "a-much-longer-type-name-than-31-bytes";
            ZT_EQ(zc_mesh_publish(a, type, "pp", 2), 0);
            size = s_raw_frame(sub, frame, sizeof frame);
            s_check_frame(frame, size, "P", 1, ZC_KIND_PUBLIC, type, ++seq, 0, "pp");
            if (i % 50 == 0) {
                ZT_EQ(zc_mesh_shout(a, "g9", type, "gg", 2), 0);
                size = s_raw_frame(sub, frame, sizeof frame);
                s_check_frame(frame, size, "Gg9", 4, ZC_KIND_GROUP, type, (uint64_t)(i / 50 + 1), 0,
                              "gg");
            }
            //  Requests carry a correlation id that grows past one byte too.
            uint64_t corr = i % 2 ? 0 : (uint64_t)i * 1000;
            ZT_EQ(zc_mesh_send_to(a, "raw", i % 2 ? ZC_KIND_PRIVATE : ZC_KIND_REQUEST, type, corr,
                                  "dd", 2),
                  0);
            size = s_raw_frame(router, frame, sizeof frame);
            s_check_frame(frame, size, "", 0, i % 2 ? ZC_KIND_PRIVATE : ZC_KIND_REQUEST, type,
                          (uint64_t)i + 1, corr, "dd");
        }
        ZT_EQ(zc_mesh_publish(a, "bad type", "x", 1), -1);
        ZT_EQ(errno, EINVAL);
        ZT_EQ(zc_mesh_peer_remove(a, "raw"), 0);
        zmq_close(sub);
        zmq_close(router);
        zmq_ctx_term(ctx);
        while (zc_mesh_recv(b, 300)) //  what beta heard of it
            ;
    }

    zt_section("an outside zmq_poll loop, one receive per poll, gets every message");
    for (int i = 0; i < 500; i++) {
        ZT_EQ(zc_mesh_publish(a, "bulk", "x", 1), 0);
        ZT_EQ(zc_mesh_whisper(a, "beta", "bulk", "y", 1), 0);
    }
    uint64_t before = zc_mesh_received(b);
    int got = 0;
    int64_t since = zt_now_ms();
    while (got < 1000 && zt_now_ms() - since < 10000) {
        zmq_pollitem_t items[ZC_MESH_POLLITEMS_MAX];
        int n = zc_mesh_pollitems(b, items);
        ZT_CHECK(n >= 3 && n <= ZC_MESH_POLLITEMS_MAX);
        if (zmq_poll(items, n, 1000) > 0 && zc_mesh_recv(b, 0)) got++;
    }
    ZT_EQ(got, 1000);
    ZT_EQ(zc_mesh_received(b) - before, 1000);
    //  Read empty, every socket is polled by its descriptor, and a message
    //  that comes later makes it readable.
    ZT_CHECK(zc_mesh_recv(b, 0) == NULL);
    zmq_pollitem_t items[ZC_MESH_POLLITEMS_MAX];
    int n = zc_mesh_pollitems(b, items);
    for (int i = 0; i < n; i++)
        ZT_CHECK(items[i].socket == NULL && items[i].fd >= 0);
    ZT_EQ(zc_mesh_whisper(a, "beta", "bulk", "z", 1), 0);
    ZT_CHECK(zmq_poll(items, n, 5000) >= 1);
    msg = zc_mesh_recv(b, 0);
    ZT_CHECK(msg && zc_msg_size(msg) == 1 && memcmp(zc_msg_data(msg), "z", 1) == 0);

    zt_section("an outside poll loop that reports what it saw (zc_mesh_polled)");
    for (int i = 0; i < 500; i++) {
        ZT_EQ(zc_mesh_publish(a, "bulk", "x", 1), 0);
        ZT_EQ(zc_mesh_whisper(a, "beta", "bulk", "y", 1), 0);
    }
    got = 0;
    since = zt_now_ms();
    while (got < 1000 && zt_now_ms() - since < 10000) {
        n = zc_mesh_pollitems(b, items);
        if (zmq_poll(items, n, 1000) <= 0) continue;
        zc_mesh_polled(b, items, n);
        while (zc_mesh_recv(b, 0))
            got++;
    }
    ZT_EQ(got, 1000);
    //  The report held for that receive only: a caller that then receives
    //  without polling (a paced sender's zero-timeout receives) still gets
    //  what comes later.
    ZT_EQ(zc_mesh_whisper(a, "beta", "bulk", "w", 1), 0);
    msg = NULL;
    for (since = zt_now_ms(); !msg && zt_now_ms() - since < 5000; usleep(1000))
        msg = zc_mesh_recv(b, 0);
    ZT_CHECK(msg && zc_msg_size(msg) == 1 && memcmp(zc_msg_data(msg), "w", 1) == 0);

    zt_section("peer lost when the other side closes");
    ZT_EQ(zc_mesh_peer_remove(a, "beta"), 0);
    ZT_EQ(zc_mesh_peer_remove(a, "beta"), -1);
    zc_mesh_destroy(&a);
    int64_t start = zt_now_ms();
    while (zt_now_ms() - start < 3000) {
        zc_mesh_recv(b, 50);
        zc_mesh_stats(b, &sb);
        if (sb.peers_lost) break;
    }
    ZT_EQ(sb.peers_lost, 1);
    zc_mesh_destroy(&b);
    return zt_done();
}
