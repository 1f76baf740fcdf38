/*  fuzz_wire — libFuzzer target for the wire codec.

    Every input is tried as a frame on each path: a header at its start (a
    DEALER's frame), and a topic at its start followed by a header (a PUB's
    frame). Beyond not crashing (the sanitizers watch reads past the frame),
    whatever the decoder accepts must be something the encoder can write
    back, in no more bytes, and the decoder read again unchanged; a header
    must end exactly where the decoder said (its bytes alone decode the
    same, one byte fewer does not), and an accepted topic must be the one
    encoding of its kind and group. zc_wire_header_decode_next, with its
    header and memo kept from input to input, must agree with it. A batch
    frame (docs/PROTOCOL.md 8.1) that the reader accepts must be its entries
    exactly, end to end, and each entry is decoded as a header too. Build
    with clang:

        clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -Iinclude tests/fuzz_wire.c broker-free/zc_wire.c broker-free/zc_msgpack_check.c \
            -o fuzz_wire
        ./fuzz_wire -max_len=4096 -max_total_time=60 CORPUS_DIR

    or configure with -DZC_FUZZ=ON -DCMAKE_C_COMPILER=clang. The frames of
    docs/PROTOCOL.md's vectors make a good seed corpus.
*/
#include "zc_wire.h"

#include <stdlib.h>
#include <string.h>

static void s_check(int ok)
{
    if (!ok) abort();
}

//  Decodes a header at the start of data and checks what was accepted.
static void s_header(const uint8_t *data, size_t size)
{
    zc_header_t header, again;
    size_t used = 0, again_used = 0;
    int rc = zc_wire_header_decode(data, size, &header, &used);
    s_check(rc == ZC_WIRE_OK || rc == ZC_WIRE_MALFORMED || rc == ZC_WIRE_VERSION_BAD);
    if (rc == ZC_WIRE_OK) {
        s_check(used >= 1 && used <= size);
        s_check(header.version == ZC_WIRE_VERSION);
        s_check(header.kind >= ZC_KIND_PUBLIC && header.kind <= ZC_KIND_REPLY);
        s_check(zc_wire_name_valid(header.type) && zc_wire_name_valid(header.sender));
        uint8_t buf[ZC_WIRE_HEADER_MAX];
        int len = zc_wire_header_encode(&header, buf, sizeof buf);
        s_check(len > 0 && (size_t)len <= used);
        s_check(zc_wire_header_decode(buf, (size_t)len, &again, &again_used) == ZC_WIRE_OK);
        s_check(again_used == (size_t)len);
        s_check(again.version == header.version && again.kind == header.kind &&
                again.seq == header.seq && again.corr == header.corr &&
                strcmp(again.type, header.type) == 0 && strcmp(again.sender, header.sender) == 0);
        //  The header ends where the decoder said, whatever follows it.
        s_check(zc_wire_header_decode(data, used, &again, &again_used) == ZC_WIRE_OK);
        s_check(again_used == used && again.seq == header.seq && again.corr == header.corr);
        s_check(zc_wire_header_decode(data, used - 1, &again, &again_used) == ZC_WIRE_MALFORMED);
    } else if (rc == ZC_WIRE_VERSION_BAD)
        s_check(header.version != ZC_WIRE_VERSION &&
                (!*header.sender || zc_wire_name_valid(header.sender)));
    //  The receive path's decoder, its header and memo kept from input to
    //  input (as a mesh keeps them from frame to frame), says the same.
    static zc_header_t kept;
    static zc_wire_memo_t memo;
    size_t kept_used = 0;
    s_check(zc_wire_header_decode_next(data, size, &kept, &memo, &kept_used) == rc);
    if (rc == ZC_WIRE_OK)
        s_check(kept_used == used && kept.version == header.version && kept.kind == header.kind &&
                kept.seq == header.seq && kept.corr == header.corr &&
                strcmp(kept.type, header.type) == 0 && strcmp(kept.sender, header.sender) == 0);
}

//  Reads a batch frame at the start of data and checks what was accepted.
static void s_batch(const uint8_t *data, size_t size)
{
    zc_wire_batch_t batch;
    int rc = zc_wire_batch_open(&batch, data, size);
    s_check(rc == ZC_WIRE_OK || rc == ZC_WIRE_MALFORMED || rc == ZC_WIRE_VERSION_BAD);
    if (rc != ZC_WIRE_OK) {
        s_check(batch.left == 0); //  a refused frame has nothing to take
        return;
    }
    s_check(batch.left >= 1 && zc_wire_name_valid(batch.sender));
    uint64_t count = batch.left, taken = 0;
    const uint8_t *message, *end = batch.next;
    size_t len;
    while (zc_wire_batch_next(&batch, &message, &len)) {
        s_check(message > end && message + len <= data + size);
        end = message + len;
        taken++;
        s_header(message, len);
    }
    s_check(taken == count && end == data + size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_header(data, size);
    s_batch(data, size);

    int kind;
    char group[ZC_NAME_MAX + 1];
    size_t used = 0;
    if (zc_wire_topic_decode(data, size, &kind, group, &used) == ZC_WIRE_OK) {
        s_check(used >= 1 && used <= size && used <= ZC_WIRE_TOPIC_MAX);
        uint8_t topic[ZC_WIRE_TOPIC_MAX];
        int len = zc_wire_topic_encode(kind, group, topic, sizeof topic);
        s_check(len == (int)used && memcmp(topic, data, used) == 0);
        s_header(data + used, size - used);
        s_batch(data + used, size - used);
    }
    return 0;
}
