/*  zc_batch — messages held for one destination and sent as one batch
    frame (docs/PROTOCOL.md section 8.1); private to the messaging plane.

    A destination is a socket and the topic in front of every frame sent
    there (PUB: "P" or a group's topic; a DEALER: none). The mesh holds a
    message here only while it is sending in a burst, and sends what is
    held before anything else goes to that socket, so order is kept.
    Messages are copied in as they will travel (a version-1 header, then
    the payload, as one bin entry), so a send is one frame built from one
    buffer.
*/
#ifndef ZC_BATCH_H_INCLUDED
#define ZC_BATCH_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct _zc_batch_t zc_batch_t;

//  Largest batch frame the mesh builds, and most messages in one.
#define ZC_BATCH_BYTES_DEFAULT (16 * 1024)
#define ZC_BATCH_COUNT_MAX     1024

//  Creates an empty batch for messages of sender (a valid name) of at most
//  max_bytes entries in all. Returns NULL if sender is invalid.
zc_batch_t *zc_batch_new(const char *sender, size_t max_bytes);

//  Destroys a batch (dropping what it holds) and sets *self_p to NULL;
//  idempotent.
void zc_batch_destroy(zc_batch_t **self_p);

//  Returns the number of messages held.
size_t zc_batch_count(zc_batch_t *self);

//  Returns 1 if a message of this many bytes (header and payload) can ever
//  be held: one that cannot goes alone.
int zc_batch_takes(zc_batch_t *self, size_t message_len);

//  Returns 1 if the held messages go to socket with this topic in front
//  (prefix_len 0: none), or nothing is held.
int zc_batch_bound_for(zc_batch_t *self, void *socket, const uint8_t *prefix, size_t prefix_len);

//  Holds one message (its header bytes, then its payload) for socket and
//  prefix; the batch must be bound for them (zc_batch_bound_for). Returns
//  0, or -1 if it does not fit beside what is held (send the batch first).
int zc_batch_add(zc_batch_t *self, void *socket, const uint8_t *prefix, size_t prefix_len,
                 const uint8_t *header, size_t header_len, const void *payload, size_t size);

//  Sends what is held as one frame with zmq flags: a batch frame, or a
//  plain version-1 frame for a lone message. Returns 0 (nothing is held
//  any more, also when nothing was), or -1 with errno (EAGAIN: the queue is
//  full; everything stays held for the next try).
int zc_batch_send(zc_batch_t *self, int flags);

//  Drops what is held (its socket is going away).
void zc_batch_discard(zc_batch_t *self);

//  Sends count parts (sizes[i] bytes at parts[i], a size may be 0) as one
//  frame with zmq flags, built in the message libzmq will own, so that
//  each part is copied once. Returns 0, or -1 with errno.
int zc_batch_frame_send(void *socket, const void *const *parts, const size_t *sizes, int count,
                        int flags);

#endif
