/*  test_wire — the wire codec against its specification.

    The test vectors are read out of docs/PROTOCOL.md itself (the fenced
    blocks marked `vector`), so the document and the codec cannot drift
    apart: a changed byte in either fails here. ctest passes the source tree
    in ZC_SOURCE_DIR. Each vector is a message of one frame (or, to be
    refused, several) and is run through a reference receiver written from
    section 9 of the document: frame count, topic at the start of the frame,
    header after it, kind for the path, routing id against sender. The
    document's `|` marks say where the topic and the header end, and the
    lengths the decoders report must agree; every `canonical: yes` vector
    must also come out of the encoder byte for byte.

    The rest probes the decoder with what the network can send: every
    msgpack width, extra trailing elements of every msgpack type, names at
    the length boundary, lengths that claim gigabytes, headers with payloads
    after them that look like msgpack, random frames split back into topic,
    header and payload, and a deterministic mutation loop over a couple of
    hundred thousand damaged frames, each decoded on both paths. Each frame
    is decoded from a heap block of exactly its size, so AddressSanitizer
    reports any read past the end; allocations made during decoding are
    counted and must be zero.
*/
#include "testkit.h"
#include "vectorkit.h"
#include "zc_wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Counting allocations made while the decoder runs

#if defined(__SANITIZE_ADDRESS__)
#define ZT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ZT_ASAN 1
#endif
#endif

static volatile int s_counting;     //  1 while a decode call runs
static volatile long s_allocations; //  allocations seen while s_counting

#ifdef ZT_ASAN
//  AddressSanitizer owns malloc; it calls these hooks on every allocation.
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void s_malloc_hook(const volatile void *ptr, size_t size)
{
    if (s_counting) s_allocations++;
}

static void s_free_hook(const volatile void *ptr)
{
}

static void s_install_allocation_counter(void)
{
    //  Both hooks are required, or nothing is installed.
    __sanitizer_install_malloc_and_free_hooks(s_malloc_hook, s_free_hook);
}
#else
//  Without a sanitizer, glibc lets a program replace malloc and friends.
void *__libc_malloc(size_t size);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *ptr, size_t size);

void *malloc(size_t size)
{
    if (s_counting) s_allocations++;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    if (s_counting) s_allocations++;
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
    if (s_counting) s_allocations++;
    return __libc_realloc(ptr, size);
}

static void s_install_allocation_counter(void)
{
}
#endif

//  Decodes a header at the start of a heap copy of exactly size bytes, so
//  that AddressSanitizer sees any read past the frame. *consumed is set to
//  SIZE_MAX first: a decoder that succeeds must overwrite it.
static int s_header_decode(const uint8_t *data, size_t size, zc_header_t *header, size_t *consumed)
{
    uint8_t *copy = (uint8_t *)malloc(size ? size : 1);
    memcpy(copy, data, size);
    *consumed = SIZE_MAX;
    s_counting = 1;
    int rc = zc_wire_header_decode(copy, size, header, consumed);
    s_counting = 0;
    free(copy);
    if (rc == ZC_WIRE_OK && *consumed > size) {
        ZT_CHECK(*consumed <= size);
        fprintf(stderr, "  header decoder consumed %zu of %zu bytes\n", *consumed, size);
    }
    return rc;
}

//  The same for a topic.
static int s_topic_decode(const uint8_t *data, size_t size, int *kind, char *group,
                          size_t *consumed)
{
    uint8_t *copy = (uint8_t *)malloc(size ? size : 1);
    memcpy(copy, data, size);
    *consumed = SIZE_MAX;
    s_counting = 1;
    int rc = zc_wire_topic_decode(copy, size, kind, group, consumed);
    s_counting = 0;
    free(copy);
    if (rc == ZC_WIRE_OK && (*consumed < 1 || *consumed > size)) {
        ZT_CHECK(*consumed >= 1 && *consumed <= size);
        fprintf(stderr, "  topic decoder consumed %zu of %zu bytes\n", *consumed, size);
    }
    return rc;
}

static int s_same(const zc_header_t *a, const zc_header_t *b)
{
    return a->version == b->version && a->kind == b->kind && a->seq == b->seq &&
           a->corr == b->corr && strcmp(a->type, b->type) == 0 && strcmp(a->sender, b->sender) == 0;
}

//  Decodes a whole header, then the same header with a payload after it
//  (one that looks like msgpack): both must succeed, consume exactly the
//  header's bytes and agree. Returns 1 if so, with back filled.
static int s_decode_split(const uint8_t *data, size_t size, zc_header_t *back)
{
    static const uint8_t payload[] = {0x96, 0x01, 0x01, 0xa1, 0x74, 0xc0, 0x00};
    uint8_t *frame = (uint8_t *)malloc(size + sizeof payload);
    memcpy(frame, data, size);
    memcpy(frame + size, payload, sizeof payload);
    zc_header_t with;
    size_t used = 0, used_with = 0;
    int ok = s_header_decode(data, size, back, &used) == ZC_WIRE_OK && used == size &&
             s_header_decode(frame, size + sizeof payload, &with, &used_with) == ZC_WIRE_OK &&
             used_with == size && s_same(back, &with);
    free(frame);
    return ok;
}

//  --------------------------------------------------------------------------
//  A msgpack writer with explicit widths, to build what an encoder would not

typedef struct {
    uint8_t *buf;
    size_t len, cap;
} s_mp_t;

static void s_mp_bytes(s_mp_t *mp, const void *data, size_t len)
{
    if (mp->len + len > mp->cap) {
        mp->cap = (mp->len + len) * 2 + 64;
        mp->buf = (uint8_t *)realloc(mp->buf, mp->cap);
    }
    memcpy(mp->buf + mp->len, data, len);
    mp->len += len;
}

static void s_mp_byte(s_mp_t *mp, uint8_t b)
{
    s_mp_bytes(mp, &b, 1);
}

static void s_mp_be(s_mp_t *mp, uint64_t value, int n)
{
    for (int i = n - 1; i >= 0; i--)
        s_mp_byte(mp, (uint8_t)(value >> (8 * i)));
}

//  width 0 = positive fixint, else 1, 2, 4 or 8 bytes after cc/cd/ce/cf.
static void s_mp_uint(s_mp_t *mp, uint64_t value, int width)
{
    if (width == 0)
        s_mp_byte(mp, (uint8_t)value);
    else {
        s_mp_byte(mp, width == 1 ? 0xcc : width == 2 ? 0xcd : width == 4 ? 0xce : 0xcf);
        s_mp_be(mp, value, width);
    }
}

//  width 0 = fixstr, else 1, 2 or 4 length bytes after d9/da/db.
static void s_mp_str(s_mp_t *mp, const char *s, size_t len, int width)
{
    if (width == 0)
        s_mp_byte(mp, (uint8_t)(0xa0 | len));
    else {
        s_mp_byte(mp, width == 1 ? 0xd9 : width == 2 ? 0xda : 0xdb);
        s_mp_be(mp, len, width);
    }
    s_mp_bytes(mp, s, len);
}

//  width 0 = fixarray, else 2 or 4 count bytes after dc/dd.
static void s_mp_array(s_mp_t *mp, uint64_t count, int width)
{
    if (width == 0)
        s_mp_byte(mp, (uint8_t)(0x90 | count));
    else {
        s_mp_byte(mp, width == 2 ? 0xdc : 0xdd);
        s_mp_be(mp, count, width);
    }
}

static void s_mp_hex(s_mp_t *mp, const char *hex)
{
    unsigned int byte;
    int used;
    while (sscanf(hex, " %2x%n", &byte, &used) == 1) {
        s_mp_byte(mp, (uint8_t)byte);
        hex += used;
    }
}

static void s_mp_reset(s_mp_t *mp)
{
    mp->len = 0;
}

//  --------------------------------------------------------------------------
//  Test vectors out of docs/PROTOCOL.md (tests/vectorkit.h)

static zt_vector_t s_vectors[ZT_VECTOR_MAX];
static int s_vector_count;

static zt_vector_t *s_vector(const char *name)
{
    return zt_vector_find(s_vectors, s_vector_count, name);
}

//  What the receiver found in a vector's frame.
typedef struct {
    zc_header_t header;
    char group[ZC_NAME_MAX + 1];
    size_t found[2]; //  where the topic and the header end, as far as read
    int founds;
} s_seen_t;

//  The receiver of section 9, applied to one vector. Returns "ok",
//  "malformed" or "bad_version", and fills seen as far as it could read.
static const char *s_receive(const zt_vector_t *v, s_seen_t *seen)
{
    memset(seen, 0, sizeof *seen);
    if (v->frames != 1) return "malformed";
    int pub = strcmp(v->via, "pub") == 0, router = strcmp(v->via, "router") == 0,
        topic = strcmp(v->via, "topic") == 0;
    const zt_frame_t *f = &v->frame[0];
    int topic_kind = 0;
    size_t at = 0, used;
    if (pub || topic) {
        if (s_topic_decode(f->data, f->size, &topic_kind, seen->group, &used)) return "malformed";
        at = used;
        seen->found[seen->founds++] = at;
        if (topic) {
            seen->header.kind = (uint8_t)topic_kind;
            return "ok";
        }
    }
    int rc = s_header_decode(f->data + at, f->size - at, &seen->header, &used);
    if (rc == ZC_WIRE_VERSION_BAD) return "bad_version";
    if (rc != ZC_WIRE_OK) return "malformed";
    seen->found[seen->founds++] = at + used;
    const zc_header_t *h = &seen->header;
    if (pub && h->kind != topic_kind) return "malformed";
    if (router && (h->kind < ZC_KIND_PRIVATE || v->routing_id.size != strlen(h->sender) ||
                   memcmp(v->routing_id.data, h->sender, v->routing_id.size) != 0))
        return "malformed";
    return "ok";
}

//  Checks a decoded header and group against "key=value ..." from the vector.
static void s_check_decoded(const zt_vector_t *v, const zc_header_t *h, const char *group)
{
    char decoded[512];
    snprintf(decoded, sizeof decoded, "%s", v->decoded);
    char *save = NULL;
    for (char *pair = strtok_r(decoded, " ", &save); pair; pair = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(pair, '=');
        if (!ZT_CHECK(eq != NULL)) continue;
        *eq = 0;
        const char *key = pair, *value = eq + 1;
        int ok;
        if (strcmp(key, "version") == 0)
            ok = h->version == strtoull(value, NULL, 10);
        else if (strcmp(key, "kind") == 0)
            ok = h->kind == strtoull(value, NULL, 10);
        else if (strcmp(key, "seq") == 0)
            ok = h->seq == strtoull(value, NULL, 10);
        else if (strcmp(key, "corr") == 0)
            ok = h->corr == strtoull(value, NULL, 10);
        else if (strcmp(key, "type") == 0)
            ok = strcmp(h->type, value) == 0;
        else if (strcmp(key, "sender") == 0)
            ok = strcmp(h->sender, value) == 0;
        else if (strcmp(key, "group") == 0)
            ok = strcmp(group, value) == 0;
        else
            ok = 0;
        if (!ZT_CHECK(ok)) fprintf(stderr, "  vector %s: %s is not %s\n", v->name, key, value);
    }
}

//  The `|` marks must be where the receiver found the topic and header to
//  end: all of them, except that a `header` or `topic` vector need not mark
//  the end of the frame.
static void s_check_marks(const zt_vector_t *v, const s_seen_t *seen)
{
    const zt_frame_t *f = &v->frame[0];
    int founds = seen->founds;
    int partial = strcmp(v->via, "header") == 0 || strcmp(v->via, "topic") == 0;
    if (partial && founds > 0 && seen->found[founds - 1] == f->size && f->marks < founds) founds--;
    int same = f->marks == founds;
    for (int i = 0; same && i < founds; i++)
        same = f->mark[i] == seen->found[i];
    if (!ZT_CHECK(same)) {
        fprintf(stderr, "  vector %s (line %d): marks at", v->name, v->line);
        for (int i = 0; i < f->marks; i++)
            fprintf(stderr, " %zu", f->mark[i]);
        fprintf(stderr, ", the receiver found ends at");
        for (int i = 0; i < seen->founds; i++)
            fprintf(stderr, " %zu", seen->found[i]);
        fprintf(stderr, "\n");
    }
}

//  Encodes what was decoded, topic and header, followed by the vector's
//  payload, and compares the frame byte for byte.
static void s_check_canonical(const zt_vector_t *v, const s_seen_t *seen)
{
    const zt_frame_t *f = &v->frame[0];
    uint8_t frame[ZT_VECTOR_BYTES + ZC_WIRE_TOPIC_MAX + ZC_WIRE_HEADER_MAX];
    size_t size = 0;
    int len;
    if (strcmp(v->via, "pub") == 0 || strcmp(v->via, "topic") == 0) {
        len = zc_wire_topic_encode(seen->header.kind, seen->group, frame, ZC_WIRE_TOPIC_MAX);
        size = len > 0 ? (size_t)len : 0;
    }
    if (strcmp(v->via, "topic") != 0) {
        len = zc_wire_header_encode(&seen->header, frame + size, ZC_WIRE_HEADER_MAX);
        size += len > 0 ? (size_t)len : 0;
    }
    size_t end = seen->found[seen->founds - 1];
    memcpy(frame + size, f->data + end, f->size - end);
    size += f->size - end;
    if (!ZT_CHECK(size == f->size && memcmp(frame, f->data, size) == 0))
        fprintf(stderr, "  vector %s: the encoder writes another frame\n", v->name);
}

static void s_check_vector(const zt_vector_t *v)
{
    s_seen_t seen;
    const char *result = s_receive(v, &seen);
    if (!ZT_CHECK(strcmp(result, v->result) == 0))
        fprintf(stderr, "  vector %s (line %d): receiver says %s, document says %s\n", v->name,
                v->line, result, v->result);
    if (*v->decoded) s_check_decoded(v, &seen.header, seen.group);
    s_check_marks(v, &seen);
    int ok = strcmp(result, "ok") == 0;
    if (v->canonical && ZT_CHECK(ok)) s_check_canonical(v, &seen);
    //  A header decodes the same from its own bytes as with a payload after it.
    if (ok && strcmp(v->via, "topic") != 0) {
        size_t start = seen.founds == 2 ? seen.found[0] : 0, end = seen.found[seen.founds - 1];
        zc_header_t alone;
        size_t used;
        ZT_CHECK(s_header_decode(v->frame[0].data + start, end - start, &alone, &used) ==
                     ZC_WIRE_OK &&
                 used == end - start && s_same(&alone, &seen.header));
    }
}

static void s_test_vectors(void)
{
    zt_section("test vectors in docs/PROTOCOL.md");
    s_vector_count = zt_vectors_load(s_vectors, ZT_VECTOR_MAX);
    if (!ZT_CHECK(s_vector_count >= 0)) return;
    //  The vectors the document promises; losing one fails the test.
    const char *required[] = {"public",
                              "group",
                              "private",
                              "request",
                              "reply",
                              "public-empty-payload",
                              "payload-like-header",
                              "header-then-payload",
                              "extra-fields",
                              "any-width-1",
                              "bad-version",
                              "bad-version-router",
                              "truncated-header",
                              "truncated-header-router",
                              "too-few-fields",
                              "seq-as-string",
                              "hostile-array32",
                              "type-with-nul",
                              "public-topic-then-anything",
                              "group-topic-unterminated",
                              "group-topic-no-nul",
                              "group-topic-inner-nul",
                              "spoofed-sender",
                              "two-frames-on-sub",
                              "three-frames-on-sub",
                              "two-frames-on-router"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!ZT_CHECK(s_vector(required[i]) != NULL))
            fprintf(stderr, "  vector %s missing\n", required[i]);
    ZT_CHECK(s_vector_count >= 45);
    for (int i = 0; i < s_vector_count; i++) {
        zt_vector_t *v = &s_vectors[i];
        if (v->batch) continue; //  batch frames: test_wire_batch
        ZT_CHECK(*v->name);
        int pub = strcmp(v->via, "pub") == 0, router = strcmp(v->via, "router") == 0;
        ZT_CHECK(pub || router || strcmp(v->via, "header") == 0 || strcmp(v->via, "topic") == 0);
        //  Only whole messages have several frames, and those never pass.
        ZT_CHECK(v->frames == 1 ||
                 (v->frames > 1 && (pub || router) && strcmp(v->result, "malformed") == 0));
        ZT_CHECK(v->has_routing_id == router);
        ZT_CHECK(strcmp(v->result, "ok") == 0 || strcmp(v->result, "malformed") == 0 ||
                 strcmp(v->result, "bad_version") == 0);
        s_check_vector(v);
    }
    //  Each kind's vector really is of that kind.
    const char *kinds[] = {"public", "group", "private", "request", "reply"};
    for (int kind = 1; kind <= 5; kind++) {
        zt_vector_t *v = s_vector(kinds[kind - 1]);
        s_seen_t seen;
        ZT_CHECK(v && strcmp(s_receive(v, &seen), "ok") == 0 && seen.header.kind == kind);
    }
    //  The multipart layout of the wrong-count vectors holds the right bytes:
    //  only the framing is wrong.
    zt_vector_t *three = s_vector("three-frames-on-sub"), *one = s_vector("public");
    if (ZT_CHECK(three && one && three->frames == 3)) {
        uint8_t joined[3 * ZT_VECTOR_BYTES];
        size_t size = 0;
        for (int f = 0; f < 3; f++) {
            memcpy(joined + size, three->frame[f].data, three->frame[f].size);
            size += three->frame[f].size;
        }
        ZT_CHECK(size == one->frame[0].size && memcmp(joined, one->frame[0].data, size) == 0);
    }
}

//  --------------------------------------------------------------------------
//  Names and boundaries

static void s_fill(char *name, size_t len, char c)
{
    memset(name, c, len);
    name[len] = 0;
}

static void s_test_names(void)
{
    zt_section("names: 1..255 bytes, no controls, space or DEL");
    char name[300];
    ZT_CHECK(!zc_wire_name_valid(NULL));
    ZT_CHECK(!zc_wire_name_valid(""));
    ZT_CHECK(zc_wire_name_valid("a"));
    ZT_CHECK(zc_wire_name_valid("!~"));
    ZT_CHECK(zc_wire_name_valid("caf\xc3\xa9"));
    ZT_CHECK(!zc_wire_name_valid("a b"));
    ZT_CHECK(!zc_wire_name_valid("a\tb"));
    ZT_CHECK(!zc_wire_name_valid("a\x7f"));
    ZT_CHECK(!zc_wire_name_valid("\x1f"));
    s_fill(name, 255, 'n');
    ZT_CHECK(zc_wire_name_valid(name));
    s_fill(name, 256, 'n');
    ZT_CHECK(!zc_wire_name_valid(name));

    zt_section("headers at the name boundary");
    zc_header_t h = {.version = 1, .kind = ZC_KIND_REQUEST, .seq = UINT64_MAX, .corr = UINT64_MAX};
    s_fill(h.type, 255, 't');
    s_fill(h.sender, 255, 's');
    uint8_t buf[ZC_WIRE_HEADER_MAX + 16];
    int len = zc_wire_header_encode(&h, buf, sizeof buf);
    ZT_EQ(len, ZC_WIRE_HEADER_MAX); //  the largest header fills the advertised maximum
    zc_header_t back;
    size_t used;
    ZT_EQ(s_header_decode(buf, (size_t)len, &back, &used), ZC_WIRE_OK);
    ZT_EQ(used, len);
    ZT_CHECK(strcmp(back.type, h.type) == 0 && strcmp(back.sender, h.sender) == 0);
    ZT_CHECK(back.seq == UINT64_MAX && back.corr == UINT64_MAX);
    //  Any buffer one byte short is refused, never overrun.
    for (int cap = 0; cap < len; cap++) {
        uint8_t *small = (uint8_t *)malloc((size_t)cap + 1);
        if (zc_wire_header_encode(&h, small, (size_t)cap) != -1) ZT_CHECK(0);
        free(small);
    }
    ZT_CHECK(1);
    //  Invalid names and kinds are refused by the encoder too.
    zc_header_t other = h;
    h.type[0] = ' ';
    ZT_EQ(zc_wire_header_encode(&h, buf, sizeof buf), -1);
    h = other;
    h.kind = 0;
    ZT_EQ(zc_wire_header_encode(&h, buf, sizeof buf), -1);
    h.kind = 6;
    ZT_EQ(zc_wire_header_encode(&h, buf, sizeof buf), -1);
    h = other;
    h.sender[0] = 0;
    ZT_EQ(zc_wire_header_encode(&h, buf, sizeof buf), -1);

    //  On the wire a 256-byte name needs str16; the decoder refuses it.
    s_mp_t mp = {0};
    s_fill(name, 256, 'n');
    for (int width = 1; width <= 4; width *= 2) {
        for (size_t name_len = 255; name_len <= 256; name_len++) {
            for (int field = 0; field < 2; field++) {
                if (width == 1 && name_len == 256) continue; //  str8 cannot say 256
                s_mp_reset(&mp);
                s_mp_array(&mp, 6, 0);
                s_mp_uint(&mp, 1, 0);
                s_mp_uint(&mp, 1, 0);
                s_mp_str(&mp, field == 0 ? name : "t", field == 0 ? name_len : 1, width);
                s_mp_str(&mp, field == 1 ? name : "s", field == 1 ? name_len : 1, width);
                s_mp_uint(&mp, 1, 0);
                s_mp_uint(&mp, 0, 0);
                int rc = s_header_decode(mp.buf, mp.len, &back, &used);
                if (!ZT_EQ(rc, name_len == 255 ? ZC_WIRE_OK : ZC_WIRE_MALFORMED))
                    fprintf(stderr, "  width %d, name of %zu bytes in field %d\n", width, name_len,
                            field);
            }
        }
    }
    free(mp.buf);

    zt_section("topics at the name boundary");
    uint8_t topic[ZC_WIRE_TOPIC_MAX + 8] = {0};
    char group[ZC_NAME_MAX + 1];
    int kind;
    ZT_EQ(zc_wire_topic_encode(ZC_KIND_PUBLIC, NULL, topic, sizeof topic), 1);
    ZT_EQ(topic[0], 'P');
    ZT_EQ(zc_wire_topic_encode(ZC_KIND_PUBLIC, NULL, topic, 0), -1);
    ZT_EQ(zc_wire_topic_encode(ZC_KIND_PRIVATE, "g", topic, sizeof topic), -1);
    ZT_EQ(zc_wire_topic_encode(ZC_KIND_GROUP, NULL, topic, sizeof topic), -1);
    ZT_EQ(zc_wire_topic_encode(ZC_KIND_GROUP, "a b", topic, sizeof topic), -1);
    s_fill(name, 255, 'g');
    ZT_EQ(zc_wire_topic_encode(ZC_KIND_GROUP, name, topic, sizeof topic), ZC_WIRE_TOPIC_MAX);
    ZT_EQ(zc_wire_topic_encode(ZC_KIND_GROUP, name, topic, ZC_WIRE_TOPIC_MAX - 1), -1);
    ZT_EQ(s_topic_decode(topic, ZC_WIRE_TOPIC_MAX, &kind, group, &used), ZC_WIRE_OK);
    ZT_CHECK(kind == ZC_KIND_GROUP && strcmp(group, name) == 0);
    ZT_EQ(used, ZC_WIRE_TOPIC_MAX);
    //  The longest topic with a header after it: still found within bounds.
    topic[ZC_WIRE_TOPIC_MAX] = 0x96;
    ZT_EQ(s_topic_decode(topic, ZC_WIRE_TOPIC_MAX + 8, &kind, group, &used), ZC_WIRE_OK);
    ZT_EQ(used, ZC_WIRE_TOPIC_MAX);
    s_fill(name, 256, 'g');
    ZT_EQ(zc_wire_topic_encode(ZC_KIND_GROUP, name, topic, sizeof topic), -1);
    //  A hand-made topic for a 256-byte group: its 00 comes one byte too
    //  late, whether the frame ends there or goes on.
    topic[0] = 'G';
    memcpy(topic + 1, name, 256);
    topic[257] = 0;
    ZT_EQ(s_topic_decode(topic, 258, &kind, group, &used), ZC_WIRE_MALFORMED);
    ZT_EQ(s_topic_decode(topic, sizeof topic, &kind, group, &used), ZC_WIRE_MALFORMED);
    //  No 00 at all.
    ZT_EQ(s_topic_decode(topic, 257, &kind, group, &used), ZC_WIRE_MALFORMED);
    ZT_EQ(s_topic_decode(topic, 0, &kind, group, &used), ZC_WIRE_MALFORMED);
    ZT_EQ(s_topic_decode((const uint8_t *)"G", 1, &kind, group, &used), ZC_WIRE_MALFORMED);
    ZT_EQ(s_topic_decode((const uint8_t *)"G\0", 2, &kind, group, &used), ZC_WIRE_MALFORMED);
    ZT_EQ(s_topic_decode((const uint8_t *)"G\x7f", 3, &kind, group, &used), ZC_WIRE_MALFORMED);
    ZT_EQ(s_topic_decode((const uint8_t *)"g1\0", 3, &kind, group, &used), ZC_WIRE_MALFORMED);
    //  The name ends at the first 00: what follows is not the topic's.
    ZT_EQ(s_topic_decode((const uint8_t *)"Gg1\0x\0", 6, &kind, group, &used), ZC_WIRE_OK);
    ZT_CHECK(kind == ZC_KIND_GROUP && strcmp(group, "g1") == 0 && used == 4);
    //  A public topic is one byte, whatever follows; a group topic's name
    //  is its bytes up to the first 00, which the name may not hold anyway.
    const char *publics[] = {"P", "PP", "P\x96", "PGg1"};
    for (size_t i = 0; i < sizeof publics / sizeof publics[0]; i++) {
        ZT_EQ(s_topic_decode((const uint8_t *)publics[i], strlen(publics[i]), &kind, group, &used),
              ZC_WIRE_OK);
        ZT_CHECK(kind == ZC_KIND_PUBLIC && *group == 0 && used == 1);
    }
    //  Every single-byte group name: the forbidden bytes are refused.
    for (int c = 1; c < 256; c++) {
        uint8_t one[4] = {'G', (uint8_t)c, 0, 0x96};
        int valid = c > 0x20 && c != 0x7f;
        int rc = s_topic_decode(one, sizeof one, &kind, group, &used);
        if (!ZT_EQ(rc, valid ? ZC_WIRE_OK : ZC_WIRE_MALFORMED) || (valid && used != 3))
            fprintf(stderr, "  group name byte %02x\n", c);
    }
}

//  --------------------------------------------------------------------------
//  Every msgpack width the decoder must accept

//  Writes a header with chosen widths: uint_width[4] for version, kind, seq,
//  corr (-1 = smallest), str_width[2] for type, sender, array_width.
static void s_build(s_mp_t *mp, const zc_header_t *h, const int *uint_width, const int *str_width,
                    int array_width, uint64_t count)
{
    uint64_t values[4] = {h->version, h->kind, h->seq, h->corr};
    s_mp_reset(mp);
    s_mp_array(mp, count, array_width);
    for (int i = 0; i < 4; i++) {
        if (i == 2) {
            s_mp_str(mp, h->type, strlen(h->type), str_width[0]);
            s_mp_str(mp, h->sender, strlen(h->sender), str_width[1]);
        }
        s_mp_uint(mp, values[i], uint_width[i]);
    }
}

static int s_smallest_uint(uint64_t v)
{
    return v < 0x80 ? 0 : v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffff ? 4 : 8;
}

static void s_test_widths(void)
{
    zt_section("every uint, str and array width is accepted");
    const uint64_t values[] = {0,      1,       0x7f,          0x80,           0xff,      0x100,
                               0xffff, 0x10000, 0xffffffffULL, 0x100000000ULL, UINT64_MAX};
    const int widths[] = {0, 1, 2, 4, 8};
    s_mp_t mp = {0};
    zc_header_t h = {.version = 1, .kind = ZC_KIND_PUBLIC, .type = "type", .sender = "sender"};
    zc_header_t back;
    int tried = 0;
    //  seq and corr: every value in every width it fits in.
    for (int field = 2; field < 4; field++)
        for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
            for (size_t w = 0; w < 5; w++) {
                if (widths[w] < s_smallest_uint(values[v])) continue;
                int uint_width[4] = {0, 0, 0, 0};
                int str_width[2] = {0, 0};
                uint_width[field] = widths[w];
                zc_header_t want = h;
                if (field == 2)
                    want.seq = values[v];
                else
                    want.corr = values[v];
                s_build(&mp, &want, uint_width, str_width, 0, 6);
                tried++;
                if (!ZT_CHECK(s_decode_split(mp.buf, mp.len, &back) && s_same(&back, &want)))
                    fprintf(stderr, "  field %d value %" PRIu64 " width %d\n", field, values[v],
                            widths[w]);
            }
    //  version and kind: the value 1 in all five widths; array in all three.
    for (int field = 0; field < 2; field++)
        for (size_t w = 0; w < 5; w++)
            for (int array_width = 0; array_width <= 4; array_width += 2) {
                int uint_width[4] = {0, 0, 0, 0};
                int str_width[2] = {0, 0};
                uint_width[field] = widths[w];
                s_build(&mp, &h, uint_width, str_width, array_width, 6);
                tried++;
                ZT_CHECK(s_decode_split(mp.buf, mp.len, &back) && s_same(&back, &h));
            }
    //  strings: lengths 1, 31, 32 and 255 in every width they fit in.
    const size_t lengths[] = {1, 31, 32, 255};
    const int str_widths[] = {0, 1, 2, 4};
    for (int field = 0; field < 2; field++)
        for (size_t l = 0; l < 4; l++)
            for (size_t w = 0; w < 4; w++) {
                if (str_widths[w] == 0 && lengths[l] > 31) continue;
                zc_header_t want = h;
                s_fill(field == 0 ? want.type : want.sender, lengths[l], 'x');
                int uint_width[4] = {0, 0, 0, 0};
                int str_width[2] = {0, 0};
                str_width[field] = str_widths[w];
                s_build(&mp, &want, uint_width, str_width, 0, 6);
                tried++;
                ZT_CHECK(s_decode_split(mp.buf, mp.len, &back) && s_same(&back, &want));
            }
    ZT_CHECK(tried > 100);
    //  A version of 256 or more is another version, not a malformed header.
    int uint_width[4] = {2, 0, 0, 0};
    int str_width[2] = {0, 0};
    zc_header_t future = h;
    size_t used;
    s_build(&mp, &future, uint_width, str_width, 0, 6);
    mp.buf[2] = 0x01; //  version 0x0101 = 257
    ZT_EQ(s_header_decode(mp.buf, mp.len, &back, &used), ZC_WIRE_VERSION_BAD);
    ZT_CHECK(back.version != 1);
    ZT_CHECK(strcmp(back.sender, "sender") == 0);

    zt_section("the encoder writes the smallest encoding");
    zc_header_t small = {.version = 1, .kind = ZC_KIND_GROUP, .type = "t", .sender = "s"};
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
        small.seq = values[v];
        small.corr = values[sizeof values / sizeof values[0] - 1 - v];
        uint8_t buf[ZC_WIRE_HEADER_MAX];
        int len = zc_wire_header_encode(&small, buf, sizeof buf);
        int all_smallest[4] = {0, 0, s_smallest_uint(small.seq), s_smallest_uint(small.corr)};
        int smallest_str[2] = {0, 0};
        s_build(&mp, &small, all_smallest, smallest_str, 0, 6);
        ZT_CHECK(len == (int)mp.len && memcmp(buf, mp.buf, mp.len) == 0);
    }
    free(mp.buf);
}

//  --------------------------------------------------------------------------
//  Extra trailing elements

//  One msgpack object of every type, as hex; each is a complete object.
static const char *s_objects[] = {
    "c0", //  nil
    "c2",
    "c3", //  false, true
    "00",
    "7f",
    "e0",
    "ff", //  fixints
    "cc ff",
    "cd ff ff",
    "ce ff ff ff ff",
    "cf ff ff ff ff ff ff ff ff",
    "d0 80",
    "d1 80 00",
    "d2 80 00 00 00",
    "d3 80 00 00 00 00 00 00 00",
    "ca 3f 80 00 00",
    "cb 3f f0 00 00 00 00 00 00",
    "a0",
    "a3 61 62 63",
    "d9 02 61 62",
    "da 00 01 61",
    "db 00 00 00 01 61",
    "c4 00",
    "c4 02 00 ff",
    "c5 00 01 00",
    "c6 00 00 00 01 00",
    "d4 01 00",
    "d5 01 00 00",
    "d6 01 00 00 00 00",
    "d7 01 00 00 00 00 00 00 00 00",
    "d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
    "c7 00 01",
    "c7 02 01 aa bb",
    "c8 00 01 01 aa",
    "c9 00 00 00 01 01 aa",
    "90",
    "92 01 a1 78",
    "dc 00 01 c0",
    "dd 00 00 00 02 c0 c3",
    "80",
    "81 a1 6b 92 c3 c0",
    "de 00 01 01 02",
    "df 00 00 00 01 a1 6b 81 01 91 90",
};

static void s_test_extra_fields(void)
{
    zt_section("extra trailing elements of every type are skipped");
    zc_header_t h = {
        .version = 1, .kind = ZC_KIND_PRIVATE, .type = "t", .sender = "s", .seq = 9, .corr = 10};
    int uint_width[4] = {0, 0, 0, 0};
    int str_width[2] = {0, 0};
    s_mp_t mp = {0};
    zc_header_t back;
    size_t used;
    size_t count = sizeof s_objects / sizeof s_objects[0];
    for (size_t i = 0; i < count; i++) {
        s_build(&mp, &h, uint_width, str_width, 0, 7);
        s_mp_hex(&mp, s_objects[i]);
        if (!ZT_CHECK(s_decode_split(mp.buf, mp.len, &back) && s_same(&back, &h)))
            fprintf(stderr, "  extra element %s\n", s_objects[i]);
        //  The same, cut short anywhere inside the extra element, is malformed.
        size_t whole = mp.len, start = whole - (strlen(s_objects[i]) + 1) / 3;
        for (size_t cut = start; cut < whole; cut++)
            if (!ZT_EQ(s_header_decode(mp.buf, cut, &back, &used), ZC_WIRE_MALFORMED))
                fprintf(stderr, "  extra element %s cut at %zu\n", s_objects[i], cut - start);
        //  And an element fewer than the array declares is malformed too.
        s_build(&mp, &h, uint_width, str_width, 0, 8);
        s_mp_hex(&mp, s_objects[i]);
        ZT_EQ(s_header_decode(mp.buf, mp.len, &back, &used), ZC_WIRE_MALFORMED);
    }
    //  All of them at once, in an array16.
    s_build(&mp, &h, uint_width, str_width, 2, 6 + count);
    for (size_t i = 0; i < count; i++)
        s_mp_hex(&mp, s_objects[i]);
    ZT_CHECK(s_decode_split(mp.buf, mp.len, &back) && s_same(&back, &h));
    //  0xc1 is never used in msgpack.
    s_build(&mp, &h, uint_width, str_width, 0, 7);
    s_mp_byte(&mp, 0xc1);
    ZT_EQ(s_header_decode(mp.buf, mp.len, &back, &used), ZC_WIRE_MALFORMED);

    zt_section("deep nesting is skipped without recursion");
    const int depth = 200000;
    s_build(&mp, &h, uint_width, str_width, 0, 7);
    for (int i = 0; i < depth; i++)
        s_mp_byte(&mp, i % 2 ? 0x91 : 0x81); //  alternating [ and {key: ...}
    s_mp_byte(&mp, 0xc0);
    //  Maps need a value as well as the key: close each map level.
    for (int i = 0; i < depth / 2; i++)
        s_mp_byte(&mp, 0xc0);
    ZT_CHECK(s_decode_split(mp.buf, mp.len, &back) && s_same(&back, &h));
    ZT_EQ(s_header_decode(mp.buf, mp.len - 1, &back, &used), ZC_WIRE_MALFORMED);
    free(mp.buf);
}

//  --------------------------------------------------------------------------
//  Hostile lengths

static void s_test_hostile(void)
{
    zt_section("lengths claiming gigabytes are refused without allocating");
    //  Each is a header whose declared sizes far exceed its bytes.
    const char *hostile[] = {
        "dd ff ff ff ff 01 01 a1 74 a1 73 01 00",          //  array32 count
        "dc ff ff 01 01 a1 74 a1 73 01 00",                //  array16 count
        "96 01 01 db ff ff ff ff 74",                      //  str32 type
        "96 01 01 a1 74 db 7f ff ff ff 73",                //  str32 sender
        "96 01 01 da ff ff 74",                            //  str16 type
        "96 01 01 d9 ff 74",                               //  str8 type
        "97 01 01 a1 74 a1 73 01 00 df ff ff ff ff",       //  map32 extra
        "97 01 01 a1 74 a1 73 01 00 dd ff ff ff ff",       //  array32 extra
        "97 01 01 a1 74 a1 73 01 00 c6 ff ff ff ff 00",    //  bin32 extra
        "97 01 01 a1 74 a1 73 01 00 c9 ff ff ff ff 01 00", //  ext32 extra
        "97 01 01 a1 74 a1 73 01 00 db ff ff ff ff 61",    //  str32 extra
        "97 01 01 a1 74 a1 73 01 00 91 91 91 df ff ff ff ff c0",
        "dd ff ff ff ff 02", //  a foreign version too
        "dd 00 00 00 00",    //  zero elements
        "90",
    };
    s_mp_t mp = {0};
    size_t used;
    s_allocations = 0;
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        //  Alone, and followed by a kilobyte of payload: the payload is
        //  more bytes to look at, not enough to hold what is claimed.
        for (int payload = 0; payload < 2; payload++) {
            s_mp_reset(&mp);
            s_mp_hex(&mp, hostile[i]);
            for (int n = 0; payload && n < 1000; n++)
                s_mp_byte(&mp, 0x00);
            zc_header_t back;
            int rc = s_header_decode(mp.buf, mp.len, &back, &used);
            int want = i == 12 ? ZC_WIRE_VERSION_BAD : ZC_WIRE_MALFORMED;
            if (!ZT_EQ(rc, want))
                fprintf(stderr, "  hostile frame %s%s\n", hostile[i], payload ? " + payload" : "");
        }
    }
    ZT_EQ(s_allocations, 0);

    //  A long but honest header: 100000 extra nils, then one element short.
    zc_header_t h = {.version = 1, .kind = ZC_KIND_PUBLIC, .type = "t", .sender = "s"};
    int uint_width[4] = {0, 0, 0, 0};
    int str_width[2] = {0, 0};
    zc_header_t back;
    s_build(&mp, &h, uint_width, str_width, 4, 6 + 100000);
    for (int i = 0; i < 100000; i++)
        s_mp_byte(&mp, 0xc0);
    ZT_CHECK(s_decode_split(mp.buf, mp.len, &back) && s_same(&back, &h));
    s_build(&mp, &h, uint_width, str_width, 4, 6 + 100001);
    for (int i = 0; i < 100000; i++)
        s_mp_byte(&mp, 0xc0);
    ZT_EQ(s_header_decode(mp.buf, mp.len, &back, &used), ZC_WIRE_MALFORMED);
    ZT_EQ(s_allocations, 0);
    free(mp.buf);
}

//  --------------------------------------------------------------------------
//  Round trips and the mutation loop

static uint64_t s_rng = 0x9e3779b97f4a7c15ULL;

//  xorshift64*: deterministic, so a failure reproduces.
static uint64_t s_random(void)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 2685821657736338717ULL;
}

static uint64_t s_random_below(uint64_t n)
{
    return n ? s_random() % n : 0;
}

static void s_random_name(char *name)
{
    size_t len = 1 + (s_random_below(4) == 0 ? s_random_below(255) : s_random_below(12));
    for (size_t i = 0; i < len; i++) {
        uint8_t c;
        do
            c = (uint8_t)s_random();
        while (c <= 0x20 || c == 0x7f);
        name[i] = (char)c;
    }
    name[len] = 0;
}

static uint64_t s_random_value(void)
{
    //  Spread over every width, not just the uint64 range.
    int bits = (int)s_random_below(65);
    return bits == 64 ? s_random() : s_random() & ((1ULL << bits) - 1);
}

static void s_random_header(zc_header_t *h)
{
    h->version = ZC_WIRE_VERSION;
    h->kind = (uint8_t)(1 + s_random_below(5));
    s_random_name(h->type);
    s_random_name(h->sender);
    h->seq = s_random_value();
    h->corr = s_random_value();
}

static size_t s_uint_size(uint64_t v)
{
    return (size_t)(1 + s_smallest_uint(v));
}

static const uint8_t s_interesting[] = {
    0x00, 0x01, 0x06, 0x20, 0x7f, 0x80, 0x90, 0x96, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc7, 0xcc,
    0xcd, 0xce, 0xcf, 0xd0, 0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};

static void s_test_round_trips(void)
{
    zt_section("round trips of random frames: smallest encoding, payload split");
    int failures = 0;
    for (int i = 0; i < 20000 && failures < 10; i++) {
        zc_header_t h, back;
        s_random_header(&h);
        //  A frame as a sender builds it: topic (PUB path), header, payload.
        uint8_t frame[ZC_WIRE_TOPIC_MAX + ZC_WIRE_HEADER_MAX + 64];
        char group[ZC_NAME_MAX + 1], got_group[ZC_NAME_MAX + 1];
        s_random_name(group);
        int topic_len = 0;
        if (h.kind <= ZC_KIND_GROUP)
            topic_len = zc_wire_topic_encode(h.kind, group, frame, ZC_WIRE_TOPIC_MAX);
        int len = zc_wire_header_encode(&h, frame + topic_len, ZC_WIRE_HEADER_MAX);
        size_t type_len = strlen(h.type), sender_len = strlen(h.sender);
        size_t smallest = 1 + 1 + 1 + (type_len < 32 ? 1 : 2) + type_len +
                          (sender_len < 32 ? 1 : 2) + sender_len + s_uint_size(h.seq) +
                          s_uint_size(h.corr);
        int expected_topic = h.kind == ZC_KIND_PUBLIC  ? 1
                             : h.kind == ZC_KIND_GROUP ? (int)strlen(group) + 2
                                                       : 0;
        if (len != (int)smallest || topic_len != expected_topic) {
            failures++;
            continue;
        }
        //  The payload is random bytes, often starting like msgpack.
        size_t payload = s_random_below(65), at = (size_t)(topic_len + len);
        for (size_t b = 0; b < payload; b++)
            frame[at + b] = b == 0 && s_random_below(2)
                                ? s_interesting[s_random_below(sizeof s_interesting)]
                                : (uint8_t)s_random();
        size_t size = at + payload, used = 0;
        int kind = 0;
        if (topic_len && (s_topic_decode(frame, size, &kind, got_group, &used) != ZC_WIRE_OK ||
                          kind != h.kind || used != (size_t)topic_len ||
                          strcmp(got_group, h.kind == ZC_KIND_GROUP ? group : "") != 0))
            failures++;
        else if (s_header_decode(frame + topic_len, size - (size_t)topic_len, &back, &used) !=
                     ZC_WIRE_OK ||
                 used != (size_t)len || !s_same(&h, &back))
            failures++;
    }
    ZT_EQ(failures, 0);
}

#define FRAME_MAX 1200

//  Applies one random damage to frame; returns the new size.
static size_t s_mutate(uint8_t *frame, size_t size)
{
    size_t at = s_random_below(size ? size : 1);
    switch (s_random_below(9)) {
    case 0: //  flip a bit
        if (size) frame[at] ^= (uint8_t)(1u << s_random_below(8));
        break;
    case 1: //  any byte
        if (size) frame[at] = (uint8_t)s_random();
        break;
    case 2: //  a msgpack type byte
        if (size) frame[at] = s_interesting[s_random_below(sizeof s_interesting)];
        break;
    case 3: //  truncate
        size = s_random_below(size + 1);
        break;
    case 4: //  insert a byte
        if (size < FRAME_MAX) {
            memmove(frame + at + 1, frame + at, size - at);
            frame[at] = s_random_below(2) ? (uint8_t)s_random()
                                          : s_interesting[s_random_below(sizeof s_interesting)];
            size++;
        }
        break;
    case 5: //  delete a byte
        if (size) {
            memmove(frame + at, frame + at + 1, size - at - 1);
            size--;
        }
        break;
    case 6: //  a huge or zero 32-bit length
        if (size >= 4) {
            at = s_random_below(size - 3);
            memset(frame + at, s_random_below(2) ? 0xff : 0x00, 4);
        }
        break;
    case 7: //  append garbage
        for (int n = 1 + (int)s_random_below(8); n > 0 && size < FRAME_MAX; n--)
            frame[size++] = (uint8_t)s_random();
        break;
    default: //  duplicate a chunk in place
        if (size) {
            size_t len = 1 + s_random_below(size - at < 16 ? size - at : 16);
            if (size + len <= FRAME_MAX) {
                memmove(frame + at + len, frame + at, size - at);
                size += len;
            }
        }
        break;
    }
    return size;
}

//  Builds a random frame as a sender would (topic for the PUB path, header,
//  payload); returns its size.
static size_t s_random_frame(uint8_t *frame, size_t cap)
{
    zc_header_t h;
    s_random_header(&h);
    int topic_len = 0;
    if (h.kind <= ZC_KIND_GROUP) {
        char group[ZC_NAME_MAX + 1];
        s_random_name(group);
        topic_len = zc_wire_topic_encode(h.kind, group, frame, ZC_WIRE_TOPIC_MAX);
    }
    int len = zc_wire_header_encode(&h, frame + topic_len, cap - ZC_WIRE_TOPIC_MAX);
    size_t size = (size_t)(topic_len + len);
    for (size_t n = s_random_below(24); n > 0 && size < cap; n--)
        frame[size++] = (uint8_t)s_random();
    return size;
}

//  Decodes a damaged frame as a header at its start; returns the result and
//  counts a violation for anything the decoder must never do.
static int s_mutated_header(const uint8_t *frame, size_t size, long *violations)
{
    zc_header_t h, back;
    size_t used;
    int rc = s_header_decode(frame, size, &h, &used);
    if (rc == ZC_WIRE_OK) {
        //  Whatever was accepted is a header the encoder can write, in no
        //  more bytes than it was read from; and it ends exactly where the
        //  decoder said: the same bytes alone decode the same, one fewer
        //  does not decode.
        uint8_t again[ZC_WIRE_HEADER_MAX];
        size_t again_used = 0, alone_used = 0;
        int len = zc_wire_header_encode(&h, again, sizeof again);
        if (h.version != 1 || h.kind < 1 || h.kind > 5 || !zc_wire_name_valid(h.type) ||
            !zc_wire_name_valid(h.sender) || len < 0 || (size_t)len > used ||
            zc_wire_header_decode(again, (size_t)len, &back, &again_used) != ZC_WIRE_OK ||
            again_used != (size_t)len || !s_same(&h, &back))
            (*violations)++;
        if (s_header_decode(frame, used, &back, &alone_used) != ZC_WIRE_OK || alone_used != used ||
            !s_same(&h, &back) ||
            s_header_decode(frame, used - 1, &back, &alone_used) != ZC_WIRE_MALFORMED)
            (*violations)++;
    } else if (rc == ZC_WIRE_VERSION_BAD) {
        if (h.version == 1 || (*h.sender && !zc_wire_name_valid(h.sender))) (*violations)++;
    } else if (rc != ZC_WIRE_MALFORMED)
        (*violations)++;
    return rc;
}

static void s_test_mutations(void)
{
    zt_section("200000 damaged frames: never a crash, only valid results");
    //  Seeds: every frame of the document's vectors plus random frames.
    static uint8_t seeds[ZT_VECTOR_MAX * ZT_VECTOR_FRAMES + 64][FRAME_MAX];
    static size_t seed_size[ZT_VECTOR_MAX * ZT_VECTOR_FRAMES + 64];
    int seed_count = 0;
    for (int i = 0; i < s_vector_count; i++)
        for (int f = 0; f < s_vectors[i].frames; f++) {
            const zt_frame_t *frame = &s_vectors[i].frame[f];
            if (frame->size <= FRAME_MAX) {
                memcpy(seeds[seed_count], frame->data, frame->size);
                seed_size[seed_count++] = frame->size;
            }
        }
    for (int i = 0; i < 64; i++, seed_count++)
        seed_size[seed_count] = s_random_frame(seeds[seed_count], FRAME_MAX);
    long results[3] = {0, 0, 0}, topic_ok = 0, pub_ok = 0, violations = 0;
    s_allocations = 0;
    uint8_t frame[FRAME_MAX];
    for (int i = 0; i < 200000; i++) {
        int seed = (int)s_random_below((uint64_t)seed_count);
        size_t size = seed_size[seed];
        memcpy(frame, seeds[seed], size);
        for (int n = 1 + (int)s_random_below(4); n > 0; n--)
            size = s_mutate(frame, size);

        //  The DEALER path: a header at the start of the frame.
        int rc = s_mutated_header(frame, size, &violations);
        results[rc == ZC_WIRE_OK ? 0 : rc == ZC_WIRE_MALFORMED ? 1 : 2]++;

        //  The PUB path: a topic, then a header after it.
        int kind;
        char group[ZC_NAME_MAX + 1];
        size_t used;
        if (s_topic_decode(frame, size, &kind, group, &used) == ZC_WIRE_OK) {
            //  A topic has one encoding: accepted means re-encoded identically.
            uint8_t again[ZC_WIRE_TOPIC_MAX];
            int len = zc_wire_topic_encode(kind, group, again, sizeof again);
            topic_ok++;
            if (len != (int)used || memcmp(again, frame, used) != 0) violations++;
            if (s_mutated_header(frame + used, size - used, &violations) == ZC_WIRE_OK) pub_ok++;
        }
    }
    fprintf(stderr,
            "   headers ok %ld, malformed %ld, bad_version %ld; topics ok %ld, whole PUB frames "
            "ok %ld\n",
            results[0], results[1], results[2], topic_ok, pub_ok);
    ZT_EQ(violations, 0);
    ZT_EQ(s_allocations, 0);
    //  The loop reached every outcome, so it exercised more than the first byte.
    ZT_CHECK(results[0] > 1000 && results[1] > 1000 && results[2] > 100 && topic_ok > 1000 &&
             pub_ok > 1000);
}

//  Checks that zc_wire_header_decode_next (one header and memo kept over
//  the whole run) said what zc_wire_header_decode says of the frame alone.
static void s_check_next(const uint8_t *frame, size_t size, zc_header_t *kept, zc_wire_memo_t *memo,
                         long *violations)
{
    zc_header_t alone;
    size_t used_next = SIZE_MAX, used_alone = SIZE_MAX;
    s_counting = 1;
    int rc_next = zc_wire_header_decode_next(frame, size, kept, memo, &used_next);
    s_counting = 0;
    int rc = s_header_decode(frame, size, &alone, &used_alone);
    if (rc_next != rc || (rc == ZC_WIRE_OK && (used_next != used_alone || !s_same(kept, &alone))) ||
        (rc == ZC_WIRE_VERSION_BAD &&
         (kept->version != alone.version || strcmp(kept->sender, alone.sender) != 0)))
        (*violations)++;
}

static void s_test_decode_next(void)
{
    zt_section("decode_next over streams of related and damaged headers = decode alone");
    zc_header_t kept;
    zc_wire_memo_t memo = {.len = 0};
    long violations = 0, ok = 0;
    uint8_t frame[FRAME_MAX];
    s_allocations = 0;
    for (int stream = 0; stream < 2000; stream++) {
        //  A stream: one sender and type, seq and corr of every width, now
        //  and then a frame cut short, damaged, or with a payload.
        zc_header_t h;
        s_random_header(&h);
        for (int i = 0; i < 50; i++) {
            h.seq = s_random_value();
            h.corr = s_random_below(3) ? 0 : s_random_value();
            int len = zc_wire_header_encode(&h, frame, sizeof frame);
            ZT_CHECK(len > 0);
            size_t size = (size_t)len;
            switch (s_random_below(8)) {
            case 0:
                size = s_random_below(size);
                break;
            case 1:
                size = s_mutate(frame, size);
                break;
            case 2:
                for (size_t n = 1 + s_random_below(16); n > 0 && size < sizeof frame; n--)
                    frame[size++] = (uint8_t)s_random();
                break;
            default:
                break;
            }
            s_check_next(frame, size, &kept, &memo, &violations);
            ok += memo.len > 0;
        }
    }
    ZT_EQ(violations, 0);
    ZT_EQ(s_allocations, 0);
    ZT_CHECK(ok > 50000); //  the memo was there for most frames: it was exercised
}

//  The zero-allocation checks mean something only if the counter counts.
static void s_test_counter(void)
{
    zt_section("the allocation counter sees allocations");
    s_allocations = 0;
    s_counting = 1;
    void *volatile block = malloc(16);
    s_counting = 0;
    free(block);
    ZT_EQ(s_allocations, 1);
}

int main(void)
{
    s_install_allocation_counter();
    s_test_counter();
    s_test_vectors();
    s_test_names();
    s_test_widths();
    s_test_extra_fields();
    s_test_hostile();
    s_test_round_trips();
    s_test_mutations();
    s_test_decode_next();
    return zt_done();
}
