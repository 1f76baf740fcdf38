/*  test_mesh_batch — batching in the mesh (docs/PROTOCOL.md section 8.1),
    two meshes in one process over tcp loopback, and a raw SUB beside the
    receiver that sees the frames as they travel.

    A peer reads version 1 until told otherwise, so no batch frame reaches
    it; once it reads version 2, a burst travels in batch frames, every
    message delivered once, in order, with its own sequence number and
    counters. Group and public streams keep their order when they alternate,
    and a message too large to batch does not overtake those held. A send
    after an idle moment goes out without any further call. On the
    receiving side, batch frames made by hand are counted message by
    message, and a half-read batch makes the caller's poll return.
    Nothing here asserts on timing.
*/
#include "testkit.h"
#include "zc_wire.h"
#include "zcluster.h"

#include <czmq.h>
#include <errno.h>
#include <string.h>

//  Reads the raw SUB's frames until none comes for 500 ms. Returns the
//  number of frames; *messages gets the messages in them, *batches the
//  number of batch frames.
static int s_spy(void *spy, long *messages, int *batches)
{
    int frames = 0;
    *messages = 0;
    *batches = 0;
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    zmq_pollitem_t item = {.socket = spy, .events = ZMQ_POLLIN};
    while (zmq_poll(&item, 1, 500) > 0 && zmq_msg_recv(&frame, spy, 0) >= 0) {
        const uint8_t *data = (const uint8_t *)zmq_msg_data(&frame);
        size_t size = zmq_msg_size(&frame), used = 0;
        int kind;
        char group[ZC_NAME_MAX + 1];
        frames++;
        if (!ZT_CHECK(zc_wire_topic_decode(data, size, &kind, group, &used) == ZC_WIRE_OK))
            continue;
        zc_wire_batch_t batch;
        if (zc_wire_batch_open(&batch, data + used, size - used) == ZC_WIRE_OK) {
            (*batches)++;
            *messages += (long)batch.left;
        } else
            (*messages)++;
    }
    zmq_msg_close(&frame);
    return frames;
}

//  Receives count messages on b and checks they are type's, numbered from
//  first_seq, each carrying its index from first_index (4 bytes) and of
//  its expected size. Returns the number received in order.
static long s_expect(zc_mesh_t *b, const char *type, long count, uint64_t first_seq,
                     uint32_t first_index)
{
    long got = 0;
    while (got < count) {
        zc_msg_t *msg = zc_mesh_recv(b, 5000);
        if (!ZT_CHECK(msg != NULL)) break;
        if (strcmp(zc_msg_type(msg), type) != 0) continue;
        uint32_t index = 0;
        if (zc_msg_size(msg) >= 4) memcpy(&index, zc_msg_data(msg), 4);
        if (!ZT_CHECK(zc_msg_seq(msg) == first_seq + (uint64_t)got &&
                      index == first_index + (uint32_t)got))
            break;
        got++;
    }
    return got;
}

//  Sends n public messages "burst" of 64 bytes, each carrying its index.
static void s_publish_burst(zc_mesh_t *a, long n, uint32_t first_index)
{
    char payload[64] = {0};
    for (long i = 0; i < n; i++) {
        uint32_t index = first_index + (uint32_t)i;
        memcpy(payload, &index, 4);
        ZT_EQ(zc_mesh_publish(a, "burst", payload, sizeof payload), 0);
    }
}

//  seq0: the public messages alpha sent before.
static void s_test_sending(zc_mesh_t *a, zc_mesh_t *b, void *spy, uint64_t seq0)
{
    long messages;
    int batches;
    zt_section("a peer reads version 1 until told: no batch frame reaches it");
    zc_mesh_set_batch(a, 1);
    s_publish_burst(a, 300, 0);
    ZT_EQ(zc_mesh_flush(a), 0);
    ZT_EQ(s_expect(b, "burst", 300, seq0 + 1, 0), 300);
    ZT_EQ(s_spy(spy, &messages, &batches), 300);
    ZT_EQ(batches, 0);

    zt_section("a peer that reads version 2: a burst travels in batch frames");
    ZT_EQ(zc_mesh_peer_set_wire(a, "nobody", 2), -1);
    ZT_EQ(zc_mesh_peer_set_wire(a, "beta", 0), -1);
    ZT_EQ(zc_mesh_peer_set_wire(a, "beta", 2), 0);
    zc_mesh_stats_t before, after;
    zc_mesh_stats(b, &before);
    s_publish_burst(a, 3000, 300);
    ZT_EQ(zc_mesh_flush(a), 0);
    ZT_EQ(s_expect(b, "burst", 3000, seq0 + 301, 300), 3000);
    int frames = s_spy(spy, &messages, &batches);
    ZT_EQ(messages, 3000);
    ZT_CHECK(batches > 0 && frames < 3000);
    zc_mesh_stats(b, &after);
    ZT_EQ(after.recv_public - before.recv_public, 3000);
    ZT_EQ(after.lost + after.malformed + after.bad_version, 0);
    printf("   3000 messages in %d frames, %d of them batches\n", frames, batches);

    zt_section("public and group streams alternate, each in order");
    char payload[64] = {0};
    for (uint32_t i = 0; i < 400; i++) {
        memcpy(payload, &i, 4);
        if ((i / 10) % 2)
            ZT_EQ(zc_mesh_shout(a, "g1", "alt", payload, sizeof payload), 0);
        else
            ZT_EQ(zc_mesh_publish(a, "alt", payload, sizeof payload), 0);
    }
    ZT_EQ(zc_mesh_flush(a), 0);
    uint64_t next_public = seq0 + 3301, next_group = 1;
    for (int got = 0; got < 400; got++) {
        zc_msg_t *msg = zc_mesh_recv(b, 5000);
        if (!ZT_CHECK(msg != NULL)) break;
        int group = zc_msg_group(msg) != NULL;
        uint64_t *next = group ? &next_group : &next_public;
        ZT_CHECK(zc_msg_seq(msg) == (*next)++);
    }
    s_spy(spy, &messages, &batches);
    ZT_EQ(messages, 400);

    zt_section("an idle send goes out at once, with no call after it");
    zclock_sleep(20);
    ZT_EQ(zc_mesh_publish(a, "idle", "x", 1), 0);
    zmq_pollitem_t item = {.socket = spy, .events = ZMQ_POLLIN};
    ZT_EQ(zmq_poll(&item, 1, 5000), 1);
    ZT_EQ(s_spy(spy, &messages, &batches), 1);
    ZT_CHECK(zc_mesh_recv(b, 5000) != NULL);
}

static void s_test_whisper(zc_mesh_t *a, zc_mesh_t *b)
{
    zt_section("whispers in batches, in order with messages too large to batch");
    static char large[20000];
    char small[64] = {0};
    zc_mesh_stats_t before, after;
    zc_mesh_stats(b, &before);
    for (uint32_t i = 0; i < 2000; i++) {
        char *payload = i % 250 == 0 ? large : small;
        memcpy(payload, &i, 4);
        ZT_EQ(zc_mesh_whisper(a, "beta", "w", payload, i % 250 == 0 ? sizeof large : sizeof small),
              0);
    }
    ZT_EQ(zc_mesh_flush(a), 0);
    long got = 0;
    while (got < 2000) {
        zc_msg_t *msg = zc_mesh_recv(b, 5000);
        if (!ZT_CHECK(msg != NULL)) break;
        uint32_t index;
        memcpy(&index, zc_msg_data(msg), 4);
        size_t want = index % 250 == 0 ? sizeof large : sizeof small;
        if (!ZT_CHECK(index == (uint32_t)got && zc_msg_size(msg) == want)) break;
        got++;
    }
    ZT_EQ(got, 2000);
    zc_mesh_stats(b, &after);
    ZT_EQ(after.recv_private - before.recv_private, 2000);
    ZT_EQ(after.lost, before.lost);
}

//  A batch frame of the messages (each a header for sender and a payload
//  "m"), with the entries given as raw bytes where bad is set.
static size_t s_batch(uint8_t *frame, const char *sender, int n, uint64_t first_seq,
                      const char *const *bad)
{
    size_t at = (size_t)zc_wire_batch_header_write(frame, ZC_WIRE_BATCH_HEADER_MAX, sender,
                                                   strlen(sender), (uint32_t)n);
    for (int i = 0; i < n; i++) {
        uint8_t message[ZC_WIRE_HEADER_MAX + 1];
        size_t len;
        if (bad && bad[i]) {
            len = strlen(bad[i]);
            memcpy(message, bad[i], len);
        } else {
            len =
                (size_t)zc_wire_header_write(message, sizeof message, 1, ZC_KIND_PRIVATE, "hand", 4,
                                             sender, strlen(sender), first_seq + (uint64_t)i, 0);
            message[len++] = 'm';
        }
        at += (size_t)zc_wire_batch_entry_prefix(frame + at, len);
        memcpy(frame + at, message, len);
        at += len;
    }
    return at;
}

static void s_test_receiving(zc_mesh_t *b, void *ctx)
{
    zt_section("batch frames made by hand: each message counted alone");
    void *evil = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(evil, ZMQ_ROUTING_ID, "evil", 4);
    ZT_EQ(zmq_connect(evil, zc_mesh_router_endpoint(b)), 0);
    zc_mesh_stats_t before, after;
    zc_mesh_stats(b, &before);
    uint8_t frame[4096];
    size_t size = s_batch(frame, "evil", 3, 1, NULL);
    ZT_EQ(zmq_send(evil, frame, size, 0), (int)size);
    const char *bad[4] = {NULL, "\x81\x01\x01", "\x91\x03", NULL}; //  a map, version 3
    size = s_batch(frame, "evil", 4, 4, bad);
    ZT_EQ(zmq_send(evil, frame, size, 0), (int)size);
    size = s_batch(frame, "alpha", 2, 1, NULL); //  another sender's batch: spoofed
    ZT_EQ(zmq_send(evil, frame, size, 0), (int)size);
    size = s_batch(frame, "evil", 2, 8, NULL);
    ZT_EQ(zmq_send(evil, frame, size - 1, 0), (int)size - 1); //  cut short: broken framing
    long got = 0;
    while (got < 5 && zc_mesh_recv(b, 5000))
        got++;
    ZT_EQ(got, 5);
    ZT_CHECK(zc_mesh_recv(b, 300) == NULL);
    zc_mesh_stats(b, &after);
    ZT_EQ(after.recv_private - before.recv_private, 5);
    ZT_EQ(after.malformed - before.malformed, 3); //  the map, the spoofed batch, the cut one
    ZT_EQ(after.bad_version - before.bad_version, 1);
    //  Messages 5 and 6 were dropped, but 7 came: the gap is theirs, not lost.
    ZT_EQ(after.lost - before.lost, 2);

    zt_section("a half-read batch makes the caller's own poll return");
    size = s_batch(frame, "evil", 5, 10, NULL);
    ZT_EQ(zmq_send(evil, frame, size, 0), (int)size);
    ZT_CHECK(zc_mesh_recv(b, 5000) != NULL);
    for (int i = 1; i < 5; i++) {
        zmq_pollitem_t items[ZC_MESH_POLLITEMS_MAX];
        int n = zc_mesh_pollitems(b, items);
        ZT_CHECK(zmq_poll(items, n, 5000) > 0);
        zc_msg_t *msg = zc_mesh_recv(b, 0);
        ZT_CHECK(msg != NULL && zc_msg_seq(msg) == 10 + (uint64_t)i);
    }
    zmq_close(evil);
}

int main(void)
{
    zc_mesh_t *a = zc_mesh_new("alpha"), *b = zc_mesh_new("beta");
    ZT_EQ(zc_mesh_start(a), 0);
    ZT_EQ(zc_mesh_start(b), 0);
    ZT_EQ(zc_mesh_peer_add(a, "beta", zc_mesh_pub_endpoint(b), zc_mesh_router_endpoint(b), NULL),
          0);
    ZT_EQ(zc_mesh_peer_add(b, "alpha", zc_mesh_pub_endpoint(a), zc_mesh_router_endpoint(a), NULL),
          0);
    ZT_EQ(zc_mesh_join(b, "g1"), 0);
    void *ctx = zmq_ctx_new();
    void *spy = zmq_socket(ctx, ZMQ_SUB);
    zmq_setsockopt(spy, ZMQ_SUBSCRIBE, "", 0);
    ZT_EQ(zmq_connect(spy, zc_mesh_pub_endpoint(a)), 0);
    //  Until both subscriptions reached alpha's PUB (slow joiner).
    long messages;
    int batches, seen = 0;
    for (int i = 0; i < 100 && !seen; i++) {
        zc_mesh_publish(a, "hello", "x", 1);
        seen = zc_mesh_recv(b, 100) != NULL;
    }
    ZT_CHECK(seen);
    while (zc_mesh_recv(b, 200))
        ;
    s_spy(spy, &messages, &batches);
    zc_mesh_stats_t stats;
    zc_mesh_stats(a, &stats);
    s_test_sending(a, b, spy, stats.sent_public); //  the stream goes on from the greetings
    s_test_whisper(a, b);
    s_test_receiving(b, ctx);
    zmq_close(spy);
    zmq_ctx_term(ctx);
    zc_mesh_destroy(&a);
    zc_mesh_destroy(&b);
    return zt_done();
}
