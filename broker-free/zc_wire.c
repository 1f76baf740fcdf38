/*  zc_wire — encode and decode the zcluster wire protocol.

    Encoding writes the msgpack bytes directly into a caller-provided
    buffer, in the forms msgpack-c's packer would choose.
    Decoding is a strict reader written for exactly the header's shape:
    msgpack-c's generic unpacker allocates for whatever element count a frame
    declares before it has read the elements, so a five-byte hostile frame
    could ask for gigabytes. This reader allocates nothing, checks every
    length against the bytes actually present, and skips unknown trailing
    fields without recursion. The batch frame (protocol version 2: many
    messages in one frame) is read by the same reader: its header is laid
    out like a version-1 header so that a version-1 receiver names the
    sender when it refuses it, and its entries are msgpack bins, each
    walked and checked before any is handed out.
*/
#include "zc_wire.h"
#include "zc_msgpack_check.h"

#include <string.h>

size_t zc_wire_name_length(const char *name)
{
    if (!name) return 0;
    size_t len = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++, len++)
        if (*p <= 0x20 || *p == 0x7f || len >= ZC_NAME_MAX) return 0;
    return len;
}

int zc_wire_name_valid(const char *name)
{
    return zc_wire_name_length(name) > 0;
}

int zc_wire_topic_encode(int kind, const char *group, uint8_t *buf, size_t cap)
{
    if (kind == ZC_KIND_PUBLIC) {
        if (cap < 1) return -1;
        buf[0] = 'P';
        return 1;
    }
    if (kind != ZC_KIND_GROUP || !zc_wire_name_valid(group)) return -1;
    size_t len = strlen(group);
    if (cap < len + 2) return -1;
    buf[0] = 'G';
    memcpy(buf + 1, group, len);
    buf[len + 1] = 0;
    return (int)len + 2;
}

int zc_wire_topic_decode(const uint8_t *data, size_t size, int *kind, char group[ZC_NAME_MAX + 1],
                         size_t *consumed)
{
    group[0] = 0;
    if (size >= 1 && data[0] == 'P') {
        *kind = ZC_KIND_PUBLIC;
        *consumed = 1;
        return ZC_WIRE_OK;
    }
    if (size < 3 || data[0] != 'G') return ZC_WIRE_MALFORMED;
    size_t limit = size < ZC_WIRE_TOPIC_MAX ? size : ZC_WIRE_TOPIC_MAX;
    const uint8_t *end = (const uint8_t *)memchr(data + 1, 0, limit - 1);
    if (!end || end == data + 1) return ZC_WIRE_MALFORMED;
    size_t len = (size_t)(end - data) - 1;
    memcpy(group, data + 1, len);
    group[len] = 0;
    if (!zc_wire_name_valid(group)) return ZC_WIRE_MALFORMED;
    *kind = ZC_KIND_GROUP;
    *consumed = len + 2;
    return ZC_WIRE_OK;
}

//  --------------------------------------------------------------------------
//  Encoding

//  The header is written byte by byte, in the shortest msgpack forms (what
//  msgpack-c's packer writes, so the bytes are the spec's vectors): this
//  runs for every message sent, and a packer with a write callback per
//  element cost more than the rest of the send path.

//  A msgpack str of len bytes (len <= ZC_NAME_MAX: fixstr or str8).
static uint8_t *s_put_str(uint8_t *p, const char *s, size_t len)
{
    if (len < 32)
        *p++ = (uint8_t)(0xa0 | len);
    else {
        *p++ = 0xd9;
        *p++ = (uint8_t)len;
    }
    memcpy(p, s, len);
    return p + len;
}

//  A msgpack unsigned integer, in its shortest form.
static uint8_t *s_put_uint(uint8_t *p, uint64_t v)
{
    int bytes;
    if (v < 0x80) {
        *p++ = (uint8_t)v;
        return p;
    }
    if (v <= 0xff) {
        *p++ = 0xcc;
        bytes = 1;
    } else if (v <= 0xffff) {
        *p++ = 0xcd;
        bytes = 2;
    } else if (v <= 0xffffffffu) {
        *p++ = 0xce;
        bytes = 4;
    } else {
        *p++ = 0xcf;
        bytes = 8;
    }
    for (int i = bytes - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

int zc_wire_header_write(uint8_t *buf, size_t cap, uint8_t version, int kind, const char *type,
                         size_t type_len, const char *sender, size_t sender_len, uint64_t seq,
                         uint64_t corr)
{
    //  the array, version and kind, the two strs, two integers at their longest
    size_t need = 1 + (version < 0x80 ? 1 : 2) + 1 + (type_len < 32 ? 1 : 2) + type_len +
                  (sender_len < 32 ? 1 : 2) + sender_len + 2 * 9;
    if (kind < ZC_KIND_PUBLIC || kind > ZC_KIND_REPLY || type_len > ZC_NAME_MAX ||
        sender_len > ZC_NAME_MAX || cap < need)
        return -1;
    uint8_t *p = buf;
    *p++ = 0x96; //  fixarray of 6
    p = s_put_uint(p, version);
    p = s_put_uint(p, (uint64_t)kind);
    p = s_put_str(p, type, type_len);
    p = s_put_str(p, sender, sender_len);
    p = s_put_uint(p, seq);
    p = s_put_uint(p, corr);
    return (int)(p - buf);
}

size_t zc_wire_header_tail_write(uint8_t *buf, uint64_t seq, uint64_t corr)
{
    return (size_t)(s_put_uint(s_put_uint(buf, seq), corr) - buf);
}

int zc_wire_header_encode(const zc_header_t *h, uint8_t *buf, size_t cap)
{
    size_t type_len = zc_wire_name_length(h->type), sender_len = zc_wire_name_length(h->sender);
    if (!type_len || !sender_len) return -1;
    //  zc_wire_header_write asks for room for the longest integers; an
    //  exact fit is checked here, as a caller with a tight buffer expects.
    uint8_t full[ZC_WIRE_HEADER_MAX];
    int len = zc_wire_header_write(full, sizeof full, h->version, h->kind, h->type, type_len,
                                   h->sender, sender_len, h->seq, h->corr);
    if (len < 0 || (size_t)len > cap) return -1;
    memcpy(buf, full, (size_t)len);
    return len;
}

//  --------------------------------------------------------------------------
//  Decoding: a cursor over untrusted bytes

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} s_reader_t;

static int s_take(s_reader_t *r, size_t n, const uint8_t **out)
{
    if ((size_t)(r->end - r->p) < n) return -1;
    *out = r->p;
    r->p += n;
    return 0;
}

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

//  Reads a big-endian length of n bytes.
static int s_len(s_reader_t *r, int n, uint64_t *len)
{
    const uint8_t *p;
    if (s_take(r, (size_t)n, &p)) return -1;
    *len = s_be(p, n);
    return 0;
}

static int s_read_array(s_reader_t *r, uint64_t *count)
{
    const uint8_t *t;
    if (s_take(r, 1, &t)) return -1;
    if (*t >= 0x90 && *t <= 0x9f) {
        *count = *t & 0x0f;
        return 0;
    }
    if (*t == 0xdc) return s_len(r, 2, count);
    if (*t == 0xdd) return s_len(r, 4, count);
    return -1;
}

static int s_read_uint(s_reader_t *r, uint64_t *value)
{
    const uint8_t *t, *p;
    if (s_take(r, 1, &t)) return -1;
    if (*t <= 0x7f) {
        *value = *t;
        return 0;
    }
    int n = *t == 0xcc ? 1 : *t == 0xcd ? 2 : *t == 0xce ? 4 : *t == 0xcf ? 8 : 0;
    if (!n || s_take(r, (size_t)n, &p)) return -1;
    *value = s_be(p, n);
    return 0;
}

//  Reads a str into out (NUL-terminated) and checks it is a valid name.
static int s_read_name(s_reader_t *r, char out[ZC_NAME_MAX + 1])
{
    const uint8_t *t, *p;
    uint64_t len;
    if (s_take(r, 1, &t)) return -1;
    if (*t >= 0xa0 && *t <= 0xbf)
        len = *t & 0x1f;
    else if (*t == 0xd9 || *t == 0xda || *t == 0xdb) {
        if (s_len(r, *t == 0xd9 ? 1 : *t == 0xda ? 2 : 4, &len)) return -1;
    } else
        return -1;
    if (len == 0 || len > ZC_NAME_MAX || s_take(r, (size_t)len, &p)) return -1;
    //  One pass: the rule of zc_wire_name_valid, which also refuses NUL.
    for (size_t i = 0; i < len; i++) {
        if (p[i] <= 0x20 || p[i] == 0x7f) return -1;
        out[i] = (char)p[i];
    }
    out[len] = 0;
    return 0;
}

//  Skips `pending` complete msgpack objects of any type. Since every object
//  takes at least one byte, a count above the bytes left is malformed and
//  refused at once.
static int s_skip(s_reader_t *r, uint64_t pending)
{
    if (pending > (uint64_t)(r->end - r->p)) return -1;
    for (; pending > 0; pending--) {
        size_t size = zc_msgpack_object_size(r->p, (size_t)(r->end - r->p));
        if (size == 0) return -1;
        r->p += size;
    }
    return 0;
}

//  Reads the header's head: the array's count, version, kind, type and
//  sender (into h, cleared first). Returns ZC_WIRE_OK, ZC_WIRE_MALFORMED
//  or ZC_WIRE_VERSION_BAD.
static int s_read_head(s_reader_t *r, zc_header_t *h, uint64_t *count)
{
    uint64_t version, kind;
    h->version = 0;
    h->kind = 0;
    h->type[0] = 0;
    h->sender[0] = 0;
    h->seq = h->corr = 0;
    if (s_read_array(r, count) || *count < 1 || s_read_uint(r, &version)) return ZC_WIRE_MALFORMED;
    h->version = version > 255 ? 255 : (uint8_t)version;
    if (version != ZC_WIRE_VERSION) {
        //  Best effort: name the sender in the report if the shape allows.
        zc_header_t probe;
        s_reader_t again = *r;
        if (*count >= 4 && !s_read_uint(&again, &kind) && !s_read_name(&again, probe.type) &&
            !s_read_name(&again, probe.sender))
            memcpy(h->sender, probe.sender, sizeof h->sender);
        return ZC_WIRE_VERSION_BAD;
    }
    if (*count < 6 || s_read_uint(r, &kind) || kind < ZC_KIND_PUBLIC || kind > ZC_KIND_REPLY ||
        s_read_name(r, h->type) || s_read_name(r, h->sender)) {
        h->type[0] = h->sender[0] = 0;
        return ZC_WIRE_MALFORMED;
    }
    h->kind = (uint8_t)kind;
    return ZC_WIRE_OK;
}

//  Reads the rest: seq, corr and the extra elements of an array of count.
static int s_read_tail(s_reader_t *r, zc_header_t *h, uint64_t count)
{
    return s_read_uint(r, &h->seq) || s_read_uint(r, &h->corr) || s_skip(r, count - 6);
}

//  Decodes a whole header; *head gets the length of its head, *count its
//  array's count.
static int s_decode(const uint8_t *data, size_t size, zc_header_t *h, size_t *consumed,
                    size_t *head, uint64_t *count)
{
    s_reader_t r = {data, data + size};
    int rc = s_read_head(&r, h, count);
    if (rc != ZC_WIRE_OK) return rc;
    *head = (size_t)(r.p - data);
    if (s_read_tail(&r, h, *count)) {
        h->kind = 0;
        h->type[0] = h->sender[0] = 0;
        h->seq = h->corr = 0;
        return ZC_WIRE_MALFORMED;
    }
    *consumed = (size_t)(r.p - data);
    return ZC_WIRE_OK;
}

int zc_wire_header_decode(const uint8_t *data, size_t size, zc_header_t *h, size_t *consumed)
{
    size_t head;
    uint64_t count;
    return s_decode(data, size, h, consumed, &head, &count);
}

int zc_wire_header_decode_next(const uint8_t *data, size_t size, zc_header_t *h,
                               zc_wire_memo_t *memo, size_t *consumed)
{
    size_t known = memo->len;
    if (known && size >= known && memcmp(data, memo->head, known) == 0) {
        //  The head of the last header decoded, which h still holds.
        s_reader_t r = {data + known, data + size};
        if (!s_read_tail(&r, h, memo->count)) {
            *consumed = (size_t)(r.p - data);
            memo->repeated = 1;
            return ZC_WIRE_OK;
        }
    }
    memo->len = 0;
    memo->repeated = 0;
    size_t head;
    uint64_t count;
    int rc = s_decode(data, size, h, consumed, &head, &count);
    if (rc == ZC_WIRE_OK && head <= sizeof memo->head) {
        memcpy(memo->head, data, head);
        memo->len = head;
        memo->count = count;
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Batch frames (protocol version 2)

int zc_wire_batch_header_write(uint8_t *buf, size_t cap, const char *sender, size_t sender_len,
                               uint32_t count)
{
    static const char type[] = ZC_WIRE_BATCH_TYPE;
    if (count == 0 || sender_len == 0 || sender_len > ZC_NAME_MAX || cap < ZC_WIRE_BATCH_HEADER_MAX)
        return -1;
    uint8_t *p = buf;
    *p++ = 0x95; //  fixarray of 5
    *p++ = ZC_WIRE_BATCH_VERSION;
    *p++ = ZC_WIRE_BATCH_KIND;
    p = s_put_str(p, type, sizeof type - 1);
    p = s_put_str(p, sender, sender_len);
    p = s_put_uint(p, count);
    return (int)(p - buf);
}

int zc_wire_batch_entry_prefix(uint8_t *buf, size_t len)
{
    if (len <= 0xff) {
        buf[0] = 0xc4;
        buf[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        buf[0] = 0xc5;
        buf[1] = (uint8_t)(len >> 8);
        buf[2] = (uint8_t)len;
        return 3;
    }
    buf[0] = 0xc6;
    for (int i = 0; i < 4; i++)
        buf[1 + i] = (uint8_t)(len >> (8 * (3 - i)));
    return 5;
}

//  Reads a msgpack bin's length: the bytes follow.
static int s_read_bin(s_reader_t *r, uint64_t *len)
{
    const uint8_t *t;
    if (s_take(r, 1, &t)) return -1;
    if (*t < 0xc4 || *t > 0xc6) return -1;
    return s_len(r, *t == 0xc4 ? 1 : *t == 0xc5 ? 2 : 4, len);
}

//  Reads the batch header after its version: kind, type, sender (into
//  sender), count and any extra elements. Returns 0 or -1.
static int s_batch_fields(s_reader_t *r, uint64_t elements, char sender[ZC_NAME_MAX + 1],
                          uint64_t *count)
{
    uint64_t kind;
    char type[ZC_NAME_MAX + 1];
    if (elements < 5 || s_read_uint(r, &kind) || kind != ZC_WIRE_BATCH_KIND ||
        s_read_name(r, type) || strcmp(type, ZC_WIRE_BATCH_TYPE) != 0 || s_read_name(r, sender) ||
        s_read_uint(r, count) || s_skip(r, elements - 5))
        return -1;
    return 0;
}

int zc_wire_batch_open(zc_wire_batch_t *batch, const uint8_t *data, size_t size)
{
    s_reader_t r = {data, data + size};
    uint64_t elements, version, count;
    //  Nothing to take unless the whole frame is good.
    batch->sender[0] = 0;
    batch->left = 0;
    batch->next = batch->end = data + size;
    if (s_read_array(&r, &elements) || elements < 1 || s_read_uint(&r, &version))
        return ZC_WIRE_MALFORMED;
    if (version != ZC_WIRE_BATCH_VERSION) return ZC_WIRE_VERSION_BAD;
    //  Every entry takes at least two bytes (a bin8 of nothing): a count
    //  beyond that is refused before anything is walked.
    char sender[ZC_NAME_MAX + 1];
    if (s_batch_fields(&r, elements, sender, &count) || count == 0 ||
        count > (uint64_t)(r.end - r.p) / 2)
        return ZC_WIRE_MALFORMED;
    //  Each entry is walked now, so that a frame is taken whole or not at all.
    s_reader_t walk = r;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *skipped;
        uint64_t len;
        if (s_read_bin(&walk, &len) || s_take(&walk, (size_t)len, &skipped))
            return ZC_WIRE_MALFORMED;
    }
    if (walk.p != walk.end) return ZC_WIRE_MALFORMED; //  bytes after the last entry
    memcpy(batch->sender, sender, sizeof batch->sender);
    batch->left = count;
    batch->next = r.p;
    return ZC_WIRE_OK;
}

int zc_wire_batch_next(zc_wire_batch_t *batch, const uint8_t **message, size_t *size)
{
    if (batch->left == 0) return 0;
    s_reader_t r = {batch->next, batch->end};
    uint64_t len;
    const uint8_t *bytes;
    //  zc_wire_batch_open checked every entry: these reads cannot fail.
    if (s_read_bin(&r, &len) || s_take(&r, (size_t)len, &bytes)) {
        batch->left = 0;
        return 0;
    }
    batch->left--;
    batch->next = r.p;
    *message = bytes;
    *size = (size_t)len;
    return 1;
}
