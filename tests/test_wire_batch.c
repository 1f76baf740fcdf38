/*  test_wire_batch — batch frames (docs/PROTOCOL.md section 8.1) against
    their specification, and the batch that builds them (zc_batch).

    The vectors of section 14.9 are read out of the document and run
    through a reference receiver written from section 8.1: the frame is
    checked whole, then each entry judged alone as a message on its path.
    The document's `entry` lines give each entry's result and fields, its
    marks where the batch header and each entry end, and every canonical
    vector must come out of the encoder byte for byte.

    Then batches built by zc_batch and sent over inproc sockets are read
    back message for message (a lone message as a plain version-1 frame),
    the caps are checked, a full queue keeps what is held, and a mutation
    loop damages good frames: whatever the reader accepts must account
    for every byte, from a heap block of exactly the frame's size so that
    AddressSanitizer sees any read past it.
*/
#include "testkit.h"
#include "vectorkit.h"
#include "zc_batch.h"
#include "zc_wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static zt_vector_t s_vectors[ZT_VECTOR_MAX];
static int s_vector_count;

//  What the receiver found in one entry.
typedef struct {
    char result[16];
    zc_header_t header;
    const uint8_t *payload;
    size_t size;
} s_entry_t;

//  What the receiver found in a vector's frame.
typedef struct {
    char group[ZC_NAME_MAX + 1];
    char sender[ZC_NAME_MAX + 1];
    s_entry_t entry[ZT_ENTRY_MAX + 1];
    int entries;
    size_t mark[ZT_MARK_MAX + 1];
    int marks;
} s_seen_t;

//  Judges one entry of a batch as the message it holds (section 8.1).
static void s_judge(const uint8_t *bytes, size_t size, int router, int topic_kind,
                    const char *sender, s_entry_t *entry)
{
    size_t used;
    int rc = zc_wire_header_decode(bytes, size, &entry->header, &used);
    const zc_header_t *h = &entry->header;
    const char *result = "ok";
    if (rc == ZC_WIRE_VERSION_BAD)
        result = "bad_version";
    else if (rc != ZC_WIRE_OK || strcmp(h->sender, sender) != 0 ||
             (router ? h->kind < ZC_KIND_PRIVATE : h->kind != topic_kind))
        result = "malformed";
    snprintf(entry->result, sizeof entry->result, "%s", result);
    entry->payload = rc == ZC_WIRE_OK ? bytes + used : NULL;
    entry->size = rc == ZC_WIRE_OK ? size - used : 0;
}

//  The receiver of section 8.1 for one batch frame, from a heap copy of
//  exactly its size. Returns "ok" or "malformed" for the frame as a whole.
static const char *s_receive(const zt_vector_t *v, const uint8_t *data, size_t size, s_seen_t *seen)
{
    memset(seen, 0, sizeof *seen);
    int router = strcmp(v->via, "router") == 0, topic_kind = 0;
    size_t at = 0;
    if (!router && zc_wire_topic_decode(data, size, &topic_kind, seen->group, &at))
        return "malformed";
    if (!router) seen->mark[seen->marks++] = at;
    zc_wire_batch_t batch;
    if (zc_wire_batch_open(&batch, data + at, size - at) != ZC_WIRE_OK) return "malformed";
    snprintf(seen->sender, sizeof seen->sender, "%s", batch.sender);
    if (router && (v->routing_id.size != strlen(batch.sender) ||
                   memcmp(v->routing_id.data, batch.sender, v->routing_id.size) != 0))
        return "malformed";
    seen->mark[seen->marks++] = (size_t)(batch.next - data);
    const uint8_t *bytes;
    size_t len;
    while (zc_wire_batch_next(&batch, &bytes, &len)) {
        if (!ZT_CHECK(seen->entries <= ZT_ENTRY_MAX)) break;
        s_judge(bytes, len, router, topic_kind, batch.sender, &seen->entry[seen->entries++]);
        if (batch.left > 0 && seen->marks < ZT_MARK_MAX)
            seen->mark[seen->marks++] = (size_t)(batch.next - data);
    }
    return "ok";
}

//  Checks one entry against its `entry` line: "RESULT key=value ...".
static void s_check_entry(const zt_vector_t *v, const s_entry_t *e, const char *line,
                          const char *group)
{
    char copy[512], *save = NULL;
    snprintf(copy, sizeof copy, "%s", line);
    const char *result = strtok_r(copy, " ", &save);
    if (!ZT_CHECK(result && strcmp(result, e->result) == 0)) {
        fprintf(stderr, "  vector %s: entry is %s, document says %s\n", v->name, e->result, line);
        return;
    }
    const zc_header_t *h = &e->header;
    for (char *pair = strtok_r(NULL, " ", &save); pair; pair = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(pair, '=');
        if (!ZT_CHECK(eq != NULL)) continue;
        *eq = 0;
        const char *key = pair, *value = eq + 1;
        char hex[2 * ZT_VECTOR_BYTES + 1] = "";
        for (size_t i = 0; i < e->size && i < ZT_VECTOR_BYTES; i++)
            snprintf(hex + 2 * i, 3, "%02x", e->payload[i]);
        int ok = strcmp(key, "version") == 0   ? h->version == strtoull(value, NULL, 10)
                 : strcmp(key, "kind") == 0    ? h->kind == strtoull(value, NULL, 10)
                 : strcmp(key, "seq") == 0     ? h->seq == strtoull(value, NULL, 10)
                 : strcmp(key, "corr") == 0    ? h->corr == strtoull(value, NULL, 10)
                 : strcmp(key, "type") == 0    ? strcmp(h->type, value) == 0
                 : strcmp(key, "sender") == 0  ? strcmp(h->sender, value) == 0
                 : strcmp(key, "group") == 0   ? strcmp(group, value) == 0
                 : strcmp(key, "payload") == 0 ? strcmp(hex, value) == 0
                                               : 0;
        if (!ZT_CHECK(ok)) fprintf(stderr, "  vector %s: %s is not %s\n", v->name, key, value);
    }
}

//  Encodes what was read (topic, batch header, each entry's header and
//  payload) and compares the frame byte for byte.
static void s_check_canonical(const zt_vector_t *v, const s_seen_t *seen)
{
    const zt_frame_t *f = &v->frame[0];
    uint8_t frame[2 * ZT_VECTOR_BYTES];
    size_t size = 0;
    if (strcmp(v->via, "pub") == 0) {
        int kind = *seen->group ? ZC_KIND_GROUP : ZC_KIND_PUBLIC;
        size += (size_t)zc_wire_topic_encode(kind, seen->group, frame, ZC_WIRE_TOPIC_MAX);
    }
    size += (size_t)zc_wire_batch_header_write(frame + size, ZC_WIRE_BATCH_HEADER_MAX, seen->sender,
                                               strlen(seen->sender), (uint32_t)seen->entries);
    for (int i = 0; i < seen->entries; i++) {
        uint8_t header[ZC_WIRE_HEADER_MAX];
        int len = zc_wire_header_encode(&seen->entry[i].header, header, sizeof header);
        if (!ZT_CHECK(len > 0)) return;
        size_t message = (size_t)len + seen->entry[i].size;
        size += (size_t)zc_wire_batch_entry_prefix(frame + size, message);
        memcpy(frame + size, header, (size_t)len);
        memcpy(frame + size + (size_t)len, seen->entry[i].payload, seen->entry[i].size);
        size += message;
    }
    if (!ZT_CHECK(size == f->size && memcmp(frame, f->data, size) == 0))
        fprintf(stderr, "  vector %s: the encoder writes another frame\n", v->name);
}

static void s_check_vector(const zt_vector_t *v)
{
    const zt_frame_t *f = &v->frame[0];
    uint8_t *data = (uint8_t *)malloc(f->size ? f->size : 1);
    memcpy(data, f->data, f->size);
    s_seen_t seen;
    const char *result = v->frames == 1 ? s_receive(v, data, f->size, &seen) : "malformed";
    if (!ZT_CHECK(strcmp(result, v->result) == 0))
        fprintf(stderr, "  vector %s (line %d): receiver says %s, document says %s\n", v->name,
                v->line, result, v->result);
    int ok = strcmp(result, "ok") == 0;
    if (ok && ZT_CHECK(seen.entries == v->entries)) {
        for (int i = 0; i < seen.entries; i++)
            s_check_entry(v, &seen.entry[i], v->entry[i], seen.group);
        int same = f->marks == seen.marks;
        for (int i = 0; same && i < seen.marks; i++)
            same = f->mark[i] == seen.mark[i];
        if (!ZT_CHECK(same)) fprintf(stderr, "  vector %s: marks differ\n", v->name);
    }
    if (!ok) ZT_CHECK(v->entries == 0);
    if (v->canonical && ZT_CHECK(ok)) s_check_canonical(v, &seen);
    free(data);
}

static void s_test_vectors(void)
{
    zt_section("batch vectors in docs/PROTOCOL.md");
    s_vector_count = zt_vectors_load(s_vectors, ZT_VECTOR_MAX);
    if (!ZT_CHECK(s_vector_count >= 0)) return;
    const char *required[] = {"batch-public",        "batch-group",        "batch-router",
                              "batch-one",           "batch-bad-entries",  "batch-spoofed",
                              "batch-count-zero",    "batch-count-short",  "batch-trailing-bytes",
                              "batch-hostile-count", "batch-hostile-entry"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        zt_vector_t *v = zt_vector_find(s_vectors, s_vector_count, required[i]);
        if (!ZT_CHECK(v != NULL && v->batch)) fprintf(stderr, "  vector %s missing\n", required[i]);
    }
    int batches = 0;
    for (int i = 0; i < s_vector_count; i++) {
        zt_vector_t *v = &s_vectors[i];
        if (!v->batch) continue;
        batches++;
        ZT_CHECK(strcmp(v->via, "pub") == 0 || strcmp(v->via, "router") == 0);
        ZT_CHECK(v->has_routing_id == (strcmp(v->via, "router") == 0));
        s_check_vector(v);
    }
    ZT_CHECK(batches >= 19);
    //  What a version-1 receiver makes of a batch: a foreign version, named.
    zt_vector_t *v1 = zt_vector_find(s_vectors, s_vector_count, "batch-seen-by-version-1");
    if (ZT_CHECK(v1 != NULL && !v1->batch)) {
        zc_header_t h;
        size_t used;
        ZT_EQ(zc_wire_header_decode(v1->frame[0].data, v1->frame[0].size, &h, &used),
              ZC_WIRE_VERSION_BAD);
        ZT_CHECK(h.version == 2 && strcmp(h.sender, "alpha") == 0);
    }
}

//  --------------------------------------------------------------------------
//  zc_batch over real sockets

static uint64_t s_rng = 0x2545f4914f6cdd1dULL;

static uint64_t s_random(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

//  Holds message i (type "t", seq i + 1, a payload of i % 300 bytes of i).
static int s_hold(zc_batch_t *batch, void *socket, const uint8_t *topic, size_t topic_len, int kind,
                  uint64_t i)
{
    uint8_t header[ZC_WIRE_HEADER_MAX], payload[300];
    int len = zc_wire_header_write(header, sizeof header, 1, kind, "t", 1, "alpha", 5, i + 1, i);
    memset(payload, (int)(i & 0xff), sizeof payload);
    return zc_batch_add(batch, socket, topic, topic_len, header, (size_t)len, payload, i % 300);
}

//  Reads one frame from socket and checks it holds messages first..first+n-1
//  of s_hold, batched or (n == 1) alone. Returns the number found.
static uint64_t s_read_back(void *socket, const uint8_t *topic, size_t topic_len, int kind,
                            uint64_t first, uint64_t n)
{
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (!ZT_CHECK(zmq_msg_recv(&frame, socket, 0) >= 0)) return 0;
    const uint8_t *data = (const uint8_t *)zmq_msg_data(&frame);
    size_t size = zmq_msg_size(&frame);
    uint64_t found = 0;
    if (ZT_CHECK(size >= topic_len && memcmp(data, topic, topic_len) == 0)) {
        zc_wire_batch_t batch;
        int rc = zc_wire_batch_open(&batch, data + topic_len, size - topic_len);
        ZT_CHECK(n == 1 ? rc == ZC_WIRE_VERSION_BAD : rc == ZC_WIRE_OK && batch.left == n);
        const uint8_t *bytes = data + topic_len;
        size_t len = size - topic_len;
        while (n == 1 ? found == 0 : zc_wire_batch_next(&batch, &bytes, &len)) {
            zc_header_t h;
            size_t used;
            uint64_t i = first + found;
            int good = zc_wire_header_decode(bytes, len, &h, &used) == ZC_WIRE_OK &&
                       h.kind == kind && h.seq == i + 1 && h.corr == i && len - used == i % 300 &&
                       strcmp(h.sender, "alpha") == 0;
            for (size_t b = used; good && b < len; b++)
                good = bytes[b] == (uint8_t)(i & 0xff);
            if (!ZT_CHECK(good)) break;
            found++;
        }
    }
    zmq_msg_close(&frame);
    return found;
}

static void s_test_batch_sockets(void)
{
    zt_section("batches sent over sockets read back message for message");
    void *ctx = zmq_ctx_new();
    void *out = zmq_socket(ctx, ZMQ_PAIR), *in = zmq_socket(ctx, ZMQ_PAIR);
    ZT_EQ(zmq_bind(in, "inproc://batch"), 0);
    ZT_EQ(zmq_connect(out, "inproc://batch"), 0);
    zc_batch_t *batch = zc_batch_new("alpha", ZC_BATCH_BYTES_DEFAULT);
    ZT_CHECK(batch && !zc_batch_new("bad name", 100));
    const uint8_t group[] = "Gg1";
    uint64_t next = 0, sent = 0, read = 0;
    for (int round = 0; round < 200; round++) {
        int public_round = round % 2;
        const uint8_t *topic = public_round ? (const uint8_t *)"P" : group;
        size_t topic_len = public_round ? 1 : sizeof group; //  the group's NUL too
        int kind = public_round ? ZC_KIND_PUBLIC : ZC_KIND_GROUP;
        uint64_t want = 1 + s_random() % 80, held = 0;
        ZT_CHECK(zc_batch_bound_for(batch, out, topic, topic_len));
        while (held < want && s_hold(batch, out, topic, topic_len, kind, next + held) == 0)
            held++;
        ZT_EQ(zc_batch_count(batch), held);
        //  Another destination is not this one while something is held.
        ZT_CHECK(!zc_batch_bound_for(batch, out, (const uint8_t *)"Gg2", 4));
        ZT_CHECK(!zc_batch_bound_for(batch, in, topic, topic_len));
        ZT_EQ(zc_batch_send(batch, 0), 0);
        ZT_EQ(zc_batch_count(batch), 0);
        ZT_EQ(zc_batch_send(batch, 0), 0); //  nothing held: nothing sent
        read += s_read_back(in, topic, topic_len, kind, next, held);
        next += held;
        sent += held;
    }
    ZT_EQ(read, sent);

    zt_section("caps: bytes, count, what goes alone");
    ZT_CHECK(zc_batch_takes(batch, ZC_BATCH_BYTES_DEFAULT - ZC_WIRE_BATCH_ENTRY_PREFIX_MAX));
    ZT_CHECK(!zc_batch_takes(batch, ZC_BATCH_BYTES_DEFAULT));
    zc_batch_t *tiny = zc_batch_new("alpha", 100000);
    uint8_t header[ZC_WIRE_HEADER_MAX];
    int len = zc_wire_header_write(header, sizeof header, 1, 1, "t", 1, "alpha", 5, 1, 0);
    size_t held = 0;
    while (zc_batch_add(tiny, out, (const uint8_t *)"P", 1, header, (size_t)len, NULL, 0) == 0)
        held++;
    ZT_EQ(held, ZC_BATCH_COUNT_MAX);
    ZT_EQ(zc_batch_send(tiny, 0), 0);
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    ZT_CHECK(zmq_msg_recv(&frame, in, 0) > 0);
    zc_wire_batch_t reader;
    ZT_CHECK(zc_wire_batch_open(&reader, (uint8_t *)zmq_msg_data(&frame) + 1,
                                zmq_msg_size(&frame) - 1) == ZC_WIRE_OK &&
             reader.left == ZC_BATCH_COUNT_MAX);
    zmq_msg_close(&frame);
    zc_batch_destroy(&tiny);
    zc_batch_destroy(&tiny);

    zt_section("a full queue keeps what is held");
    void *dealer = zmq_socket(ctx, ZMQ_DEALER); //  connected to nothing: EAGAIN
    ZT_EQ(s_hold(batch, dealer, NULL, 0, ZC_KIND_PRIVATE, 0), 0);
    ZT_EQ(s_hold(batch, dealer, NULL, 0, ZC_KIND_PRIVATE, 1), 0);
    ZT_EQ(zc_batch_send(batch, ZMQ_DONTWAIT), -1);
    ZT_EQ(errno, EAGAIN);
    ZT_EQ(zc_batch_count(batch), 2);
    zc_batch_discard(batch);
    ZT_EQ(zc_batch_count(batch), 0);
    zmq_close(dealer);
    zc_batch_destroy(&batch);
    ZT_CHECK(batch == NULL);
    zmq_close(out);
    zmq_close(in);
    zmq_ctx_term(ctx);
}

//  --------------------------------------------------------------------------
//  Damaged frames

//  Builds a good batch frame of n messages (no topic) into frame; returns its size.
static size_t s_good_frame(uint8_t *frame, size_t cap, int n)
{
    uint8_t entries[8192];
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        uint8_t header[ZC_WIRE_HEADER_MAX];
        int len = zc_wire_header_write(header, sizeof header, 1, 3, "type", 4, "alpha", 5,
                                       s_random() >> (s_random() % 64), (uint64_t)i);
        size_t payload = s_random() % 40;
        used += (size_t)zc_wire_batch_entry_prefix(entries + used, (size_t)len + payload);
        memcpy(entries + used, header, (size_t)len);
        memset(entries + used + len, 'x', payload);
        used += (size_t)len + payload;
    }
    int head = zc_wire_batch_header_write(frame, cap, "alpha", 5, (uint32_t)n);
    memcpy(frame + head, entries, used);
    return (size_t)head + used;
}

static void s_test_mutations(void)
{
    zt_section("damaged batch frames: every accepted byte accounted for");
    long accepted = 0, refused = 0, entries = 0;
    for (int round = 0; round < 100000; round++) {
        uint8_t good[8192 + ZC_WIRE_BATCH_HEADER_MAX];
        size_t size = s_good_frame(good, sizeof good, 1 + (int)(s_random() % 6));
        int damage = 1 + (int)(s_random() % 4);
        for (int d = 0; d < damage; d++) {
            uint64_t r = s_random();
            if (r % 5 == 0 && size > 1)
                size = 1 + (size_t)(s_random() % (size - 1)); //  cut short
            else if (r % 5 == 1 && size < sizeof good)
                good[size++] = (uint8_t)s_random(); //  one more byte
            else
                good[s_random() % size] = (uint8_t)s_random();
        }
        uint8_t *frame = (uint8_t *)malloc(size);
        memcpy(frame, good, size);
        zc_wire_batch_t batch;
        int rc = zc_wire_batch_open(&batch, frame, size);
        ZT_CHECK(rc == ZC_WIRE_OK || rc == ZC_WIRE_MALFORMED || rc == ZC_WIRE_VERSION_BAD);
        if (rc == ZC_WIRE_OK) {
            accepted++;
            uint64_t count = batch.left, taken = 0;
            const uint8_t *bytes, *last_end = batch.next;
            size_t len;
            ZT_CHECK(count >= 1 && zc_wire_name_valid(batch.sender));
            while (zc_wire_batch_next(&batch, &bytes, &len)) {
                taken++;
                ZT_CHECK(bytes > last_end && bytes + len <= frame + size);
                last_end = bytes + len;
                zc_header_t h;
                size_t used;
                zc_wire_header_decode(bytes, len, &h, &used); //  untrusted still
            }
            ZT_CHECK(taken == count && last_end == frame + size);
            entries += (long)taken;
        } else {
            refused++;
            const uint8_t *bytes;
            size_t len;
            ZT_CHECK(batch.left == 0 && !zc_wire_batch_next(&batch, &bytes, &len));
        }
        free(frame);
    }
    printf("   accepted %ld (%ld messages), refused %ld\n", accepted, entries, refused);
    ZT_CHECK(accepted > 1000 && refused > 1000);
}

int main(void)
{
    s_test_vectors();
    s_test_batch_sockets();
    s_test_mutations();
    return zt_done();
}
