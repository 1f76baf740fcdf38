/*  zc_mesh_send — a mesh's sending half: public, group and private-plane
    messages, and batching. See zc_mesh.h; the state is zc_mesh_internal.h.

    Batching (docs/PROTOCOL.md section 8.1), when zc_mesh_set_batch turned
    it on. libzmq's cost is per frame, so small messages bound for one
    socket in a burst are held and sent as one batch frame. The rules keep
    latency where there is no burst: a send that does not follow another
    within BATCH_BURST_US goes out at once (with whatever was held), and
    nothing is held longer than BATCH_HOLD_US while sends go on. Held
    messages also go when the batch is full, when the next message for the
    PUB has another topic, before a message too large to batch, and
    whenever the owner's thread comes back to receive or poll
    (zc_mesh_recv, zc_mesh_pollitems) or calls zc_mesh_flush. No timer
    sends them: libzmq sockets belong to one thread, so no other thread
    may. PUB messages are batched only while every peer reads version 2
    (a PUB frame reaches every subscriber); a DEALER's only to a peer that
    does (zc_mesh_peer_set_wire). Each peer has a batch of its own, so a
    full queue to one peer never holds back another.
*/
#include "zc_mesh_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A send this soon after the previous one is part of a burst and may be
//  held; held messages go out once the first of them is this old.
#define BATCH_BURST_US 20
#define BATCH_HOLD_US  50

void zc_mesh_set_batch(zc_mesh_t *self, int on)
{
    assert(self);
    if (!on) zc_mesh_flush(self);
    self->batch = on != 0;
}

int zc_mesh_peer_set_wire(zc_mesh_t *self, const char *id, int version)
{
    assert(self);
    mesh_peer_t *peer = id ? (mesh_peer_t *)zhashx_lookup(self->peers, id) : NULL;
    if (!peer || version < 1) {
        errno = EINVAL;
        return -1;
    }
    int before = peer->wire >= ZC_WIRE_BATCH_VERSION, after = version >= ZC_WIRE_BATCH_VERSION;
    if (before && !after) {
        //  What was held for it in a batch goes now, while it still reads them.
        zc_mesh_flush(self);
        self->peers_v1++;
    } else if (!before && after)
        self->peers_v1--;
    peer->wire = version;
    return 0;
}

void zc_mesh_send_forget(zc_mesh_t *self, mesh_peer_t *peer)
{
    if (peer->wire < ZC_WIRE_BATCH_VERSION) self->peers_v1--;
    if (peer->batch) zc_batch_discard(peer->batch);
}

int zc_mesh_flush(zc_mesh_t *self)
{
    assert(self);
    int rc = 0;
    if (self->pub_batch && zc_batch_send(self->pub_batch, 0)) rc = -1;
    if (self->dealer_held) {
        self->dealer_held = 0;
        for (mesh_peer_t *peer = (mesh_peer_t *)zhashx_first(self->peers); peer;
             peer = (mesh_peer_t *)zhashx_next(self->peers))
            if (peer->batch && zc_batch_send(peer->batch, ZMQ_DONTWAIT)) {
                self->dealer_held = 1; //  its queue is full: still held
                rc = -1;
            }
    }
    return rc;
}

//  The start of the frame a message is sent in, up to seq: its topic and
//  its header's head. A run of messages of one kind and type (to one group)
//  repeats it, so it is kept per path, and each send writes only seq and
//  corr after it: no name to check, measure and encode again. Returns the
//  frame's prefix (topic and header) with seq and corr written, its
//  lengths in *topic_len and *header_len, or NULL for an invalid type or
//  group.
static const uint8_t *s_start(zc_mesh_t *self, mesh_start_t *kept, int kind, const char *group,
                              const char *type, uint64_t seq, uint64_t corr, size_t *topic_len,
                              size_t *header_len)
{
    if (kept->kind != kind || !type || strcmp(kept->type, type) != 0 ||
        (group ? strcmp(kept->group, group) != 0 : kept->group[0] != 0)) {
        kept->kind = 0;
        size_t type_len = zc_wire_name_length(type);
        int topic = kind <= ZC_KIND_GROUP
                        ? zc_wire_topic_encode(kind, group, kept->bytes, ZC_WIRE_TOPIC_MAX)
                        : 0;
        if (!type_len || topic < 0) return NULL;
        //  seq and corr 0 take a byte each: the head is all but the last two.
        int len = zc_wire_header_write(kept->bytes + topic, ZC_WIRE_HEADER_MAX, ZC_WIRE_VERSION,
                                       kind, type, type_len, self->id, self->id_len, 0, 0);
        if (len < 0) return NULL;
        kept->topic_len = (size_t)topic;
        kept->len = (size_t)(topic + len - 2);
        kept->kind = kind;
        memcpy(kept->type, type, type_len + 1);
        snprintf(kept->group, sizeof kept->group, "%s", group ? group : "");
    }
    *topic_len = kept->topic_len;
    *header_len =
        kept->len - kept->topic_len + zc_wire_header_tail_write(kept->bytes + kept->len, seq, corr);
    return kept->bytes;
}

//  Sends prefix + payload as one frame; the payload is copied once.
static int s_send_frame(void *socket, const uint8_t *prefix, size_t prefix_len, const void *data,
                        size_t size, int flags)
{
    const void *parts[2] = {prefix, data};
    size_t sizes[2] = {prefix_len, size};
    return zc_batch_frame_send(socket, parts, sizes, 2, flags);
}

//  Holds a message (topic_len bytes of topic, then header_len of header at
//  prefix, then the payload) in batch for socket, and sends the batch if
//  the burst is over (burst 0), or it is full or old. Returns 0 (sent or
//  held), or -1 if the batch was full and the socket refused it (errno
//  EAGAIN: this message is not taken).
static int s_hold(zc_mesh_t *self, zc_batch_t *batch, int64_t *since, int burst, void *socket,
                  const uint8_t *prefix, size_t topic_len, size_t header_len, const void *data,
                  size_t size, int flags)
{
    int64_t now = self->last_send_us;
    if (!zc_batch_bound_for(batch, socket, prefix, topic_len) && zc_batch_send(batch, flags))
        return -1;
    const uint8_t *header = prefix + topic_len;
    if (zc_batch_add(batch, socket, prefix, topic_len, header, header_len, data, size)) {
        if (zc_batch_send(batch, flags)) return -1;
        zc_batch_add(batch, socket, prefix, topic_len, header, header_len, data, size);
    }
    if (zc_batch_count(batch) == 1) *since = now;
    //  A send the socket refuses here leaves the messages held for the next.
    if (!burst || now - *since >= BATCH_HOLD_US) zc_batch_send(batch, flags);
    return 0;
}

//  Sends a message (topic, header, payload) on socket: held in batch if
//  hold says it may be and it fits, else at once, after whatever batch
//  (NULL: none) holds, so that order is kept. Returns 0 or -1.
static int s_send(zc_mesh_t *self, zc_batch_t *batch, int hold, int64_t *since, void *socket,
                  const uint8_t *prefix, size_t topic_len, size_t header_len, const void *data,
                  size_t size, int flags)
{
    if (hold && zc_batch_takes(batch, header_len + size)) {
        int64_t now = zclock_usecs();
        int burst = now - self->last_send_us < BATCH_BURST_US;
        self->last_send_us = now;
        //  Out of a burst with nothing held: the plain send, no copy into the batch.
        if (burst || zc_batch_count(batch))
            return s_hold(self, batch, since, burst, socket, prefix, topic_len, header_len, data,
                          size, flags);
    } else if (batch && zc_batch_send(batch, flags))
        return -1;
    return s_send_frame(socket, prefix, topic_len + header_len, data, size, flags);
}

//  Sends topic + header + payload on the PUB socket.
static int s_send_pub(zc_mesh_t *self, int kind, const char *group, const char *type, uint64_t seq,
                      const void *data, size_t size)
{
    size_t topic_len, header_len;
    const uint8_t *prefix =
        s_start(self, &self->pub_start, kind, group, type, seq, 0, &topic_len, &header_len);
    if (!prefix) {
        errno = EINVAL;
        return -1;
    }
    //  A PUB frame reaches every subscriber: batches only if all read them.
    int hold = self->batch && self->peers_v1 == 0;
    if (hold && !self->pub_batch) self->pub_batch = zc_batch_new(self->id, ZC_BATCH_BYTES_DEFAULT);
    if (s_send(self, self->pub_batch, hold, &self->pub_held_since, self->pub_handle, prefix,
               topic_len, header_len, data, size, 0))
        return -1;
    self->stats.bytes_sent += size;
    return 0;
}

int zc_mesh_publish(zc_mesh_t *self, const char *type, const void *data, size_t size)
{
    assert(self && self->started);
    if (size > self->max_msg_size) {
        errno = EMSGSIZE;
        return -1;
    }
    if (s_send_pub(self, ZC_KIND_PUBLIC, NULL, type, self->public_seq + 1, data, size)) return -1;
    self->public_seq++;
    self->stats.sent_public++;
    return 0;
}

int zc_mesh_shout(zc_mesh_t *self, const char *group, const char *type, const void *data,
                  size_t size)
{
    assert(self && self->started);
    if (size > self->max_msg_size) {
        errno = EMSGSIZE;
        return -1;
    }
    if (!zc_wire_name_valid(group)) {
        errno = EINVAL;
        return -1;
    }
    uint64_t *seq = (uint64_t *)zhashx_lookup(self->group_seq, group);
    if (!seq) {
        seq = (uint64_t *)calloc(1, sizeof(uint64_t));
        assert(seq);
        zhashx_insert(self->group_seq, group, seq);
    }
    if (s_send_pub(self, ZC_KIND_GROUP, group, type, *seq + 1, data, size)) return -1;
    (*seq)++;
    self->stats.sent_group++;
    return 0;
}

int zc_mesh_send_to(zc_mesh_t *self, const char *peer_id, int kind, const char *type, uint64_t corr,
                    const void *data, size_t size)
{
    assert(self && self->started);
    if (kind != ZC_KIND_PRIVATE && kind != ZC_KIND_REQUEST && kind != ZC_KIND_REPLY) {
        errno = EINVAL;
        return -1;
    }
    if (size > self->max_msg_size) {
        errno = EMSGSIZE;
        return -1;
    }
    mesh_peer_t *peer = self->last_peer;
    if (!peer || !peer_id || strcmp(peer->id, peer_id) != 0) {
        peer = peer_id ? (mesh_peer_t *)zhashx_lookup(self->peers, peer_id) : NULL;
        self->last_peer = peer;
    }
    if (!peer) {
        self->stats.no_route++;
        errno = EHOSTUNREACH;
        return -1;
    }
    size_t topic_len, header_len;
    const uint8_t *header = s_start(self, &self->dealer_start, kind, NULL, type,
                                    peer->private_seq + 1, corr, &topic_len, &header_len);
    if (!header) {
        errno = EINVAL;
        return -1;
    }
    int hold = self->batch && peer->wire >= ZC_WIRE_BATCH_VERSION;
    if (hold && !peer->batch) peer->batch = zc_batch_new(self->id, ZC_BATCH_BYTES_DEFAULT);
    if (s_send(self, peer->batch, hold, &peer->held_since, peer->dealer_handle, header, topic_len,
               header_len, data, size, ZMQ_DONTWAIT)) {
        if (errno == EAGAIN) self->stats.send_dropped++;
        return -1;
    }
    if (peer->batch && zc_batch_count(peer->batch)) self->dealer_held = 1;
    peer->private_seq++;
    self->stats.bytes_sent += size;
    if (kind == ZC_KIND_PRIVATE)
        self->stats.sent_private++;
    else if (kind == ZC_KIND_REQUEST)
        self->stats.sent_request++;
    else
        self->stats.sent_reply++;
    return 0;
}

int zc_mesh_whisper(zc_mesh_t *self, const char *peer, const char *type, const void *data,
                    size_t size)
{
    return zc_mesh_send_to(self, peer, ZC_KIND_PRIVATE, type, 0, data, size);
}
