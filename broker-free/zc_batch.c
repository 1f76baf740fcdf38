/*  zc_batch — messages held for one destination, sent as one batch frame.
    See zc_batch.h; the frame is docs/PROTOCOL.md section 8.1.

    Why a frame of many messages: libzmq's cost is per frame (a trip
    through the socket's pipe, a wake-up of its I/O thread, a receive call
    at the other end), not per byte, so a hundred 64-byte messages in one
    frame cost the sockets about what one message does. The entries are
    written here as they travel; the batch header, whose count is known only
    at the end, is written in front of them when the frame is built.
*/
#include "zc_batch.h"
#include "zc_wire.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct _zc_batch_t {
    char sender[ZC_NAME_MAX + 1];
    size_t sender_len;
    size_t max_bytes;
    void *socket; //  where the held messages go (NULL: none held)
    uint8_t prefix[ZC_WIRE_TOPIC_MAX];
    size_t prefix_len;
    size_t count;
    size_t used;      //  bytes of entries held
    uint8_t *entries; //  max_bytes of them
};

zc_batch_t *zc_batch_new(const char *sender, size_t max_bytes)
{
    size_t len = zc_wire_name_length(sender);
    if (!len) return NULL;
    zc_batch_t *self = (zc_batch_t *)calloc(1, sizeof(zc_batch_t));
    assert(self);
    memcpy(self->sender, sender, len + 1);
    self->sender_len = len;
    self->max_bytes = max_bytes;
    self->entries = (uint8_t *)malloc(max_bytes ? max_bytes : 1);
    assert(self->entries);
    return self;
}

void zc_batch_destroy(zc_batch_t **self_p)
{
    assert(self_p);
    zc_batch_t *self = *self_p;
    if (!self) return;
    free(self->entries);
    free(self);
    *self_p = NULL;
}

size_t zc_batch_count(zc_batch_t *self)
{
    assert(self);
    return self->count;
}

int zc_batch_takes(zc_batch_t *self, size_t message_len)
{
    assert(self);
    return message_len + ZC_WIRE_BATCH_ENTRY_PREFIX_MAX <= self->max_bytes;
}

int zc_batch_bound_for(zc_batch_t *self, void *socket, const uint8_t *prefix, size_t prefix_len)
{
    assert(self);
    return self->count == 0 || (self->socket == socket && self->prefix_len == prefix_len &&
                                (prefix_len == 0 || memcmp(self->prefix, prefix, prefix_len) == 0));
}

int zc_batch_add(zc_batch_t *self, void *socket, const uint8_t *prefix, size_t prefix_len,
                 const uint8_t *header, size_t header_len, const void *payload, size_t size)
{
    assert(self && zc_batch_bound_for(self, socket, prefix, prefix_len));
    assert(prefix_len <= sizeof self->prefix);
    size_t len = header_len + size;
    if (self->count == ZC_BATCH_COUNT_MAX ||
        self->used + ZC_WIRE_BATCH_ENTRY_PREFIX_MAX + len > self->max_bytes)
        return -1;
    if (self->count == 0) {
        self->socket = socket;
        if (prefix_len) memcpy(self->prefix, prefix, prefix_len);
        self->prefix_len = prefix_len;
    }
    uint8_t *p = self->entries + self->used;
    p += zc_wire_batch_entry_prefix(p, len);
    memcpy(p, header, header_len);
    if (size) memcpy(p + header_len, payload, size);
    self->used = (size_t)(p + len - self->entries);
    self->count++;
    return 0;
}

int zc_batch_frame_send(void *socket, const void *const *parts, const size_t *sizes, int count,
                        int flags)
{
    size_t total = 0;
    for (int i = 0; i < count; i++)
        total += sizes[i];
    zmq_msg_t frame;
    if (zmq_msg_init_size(&frame, total)) return -1;
    uint8_t *p = (uint8_t *)zmq_msg_data(&frame);
    for (int i = 0; i < count; i++) {
        if (sizes[i]) memcpy(p, parts[i], sizes[i]);
        p += sizes[i];
    }
    if (zmq_msg_send(&frame, socket, flags) < 0) {
        zmq_msg_close(&frame);
        return -1;
    }
    return 0;
}

int zc_batch_send(zc_batch_t *self, int flags)
{
    assert(self);
    if (self->count == 0) return 0;
    uint8_t header[ZC_WIRE_BATCH_HEADER_MAX];
    const void *parts[3] = {self->prefix, header, self->entries};
    size_t sizes[3] = {self->prefix_len, 0, self->used};
    if (self->count == 1) {
        //  A lone message goes as the version-1 frame it would have been.
        size_t skip = self->entries[0] == 0xc4 ? 2 : self->entries[0] == 0xc5 ? 3 : 5;
        parts[2] = self->entries + skip;
        sizes[2] = self->used - skip;
    } else {
        int len = zc_wire_batch_header_write(header, sizeof header, self->sender, self->sender_len,
                                             (uint32_t)self->count);
        assert(len > 0);
        sizes[1] = (size_t)len;
    }
    if (zc_batch_frame_send(self->socket, parts, sizes, 3, flags)) return -1;
    zc_batch_discard(self);
    return 0;
}

void zc_batch_discard(zc_batch_t *self)
{
    assert(self);
    self->count = 0;
    self->used = 0;
    self->socket = NULL;
    self->prefix_len = 0;
}
