/*  zc_wire — the zcluster wire codec (protocol versions 1 and 2).

    A message is one ZeroMQ frame (the ROUTER adds the sender's routing id
    as a frame before it):

        PUB/SUB (public, group):   topic + header + payload
        DEALER->ROUTER (private):  header + payload

    One frame, not three, because libzmq's cost is per frame: a receiver
    that reads one frame per message goes about three times as fast. The
    topic prefix makes SUB filtering exact: public is "P", group G is
    "G" + G + NUL, so a subscription to group "a" ("Ga\0") never matches
    group "ab" ("Gab\0"). The header is a msgpack array, self-delimiting,
    and the payload is every byte after it:

        [version, kind, type, sender, seq, corr]

    A batch frame (protocol version 2) carries several such messages, of
    one sender and one stream, in one frame: the topic (PUB path), a batch
    header [2, 6, "zc.batch", sender, count], then count msgpack bins, each
    a whole version-1 message without its topic (header + payload). A
    version-1 receiver refuses it as a foreign version; senders send it
    only to peers that read version 2.

    docs/PROTOCOL.md is the normative description with hex test vectors.
    The codec never allocates; decoding validates every byte of untrusted
    input and never reads past the frame.
*/
#ifndef ZC_WIRE_H_INCLUDED
#define ZC_WIRE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZC_WIRE_VERSION 1
//  Longest node id, message type or group name, in bytes.
#define ZC_NAME_MAX 255
//  Largest encoded header and topic; a buffer this size always suffices.
#define ZC_WIRE_HEADER_MAX (1 + 1 + 1 + 2 * (2 + ZC_NAME_MAX) + 2 * 9)
#define ZC_WIRE_TOPIC_MAX  (1 + ZC_NAME_MAX + 1)

//  Batch frames: the version, kind and type their header carries, and its
//  longest encoding (array, version, kind, type, sender, a uint32 count).
#define ZC_WIRE_BATCH_VERSION    2
#define ZC_WIRE_BATCH_KIND       6
#define ZC_WIRE_BATCH_TYPE       "zc.batch"
#define ZC_WIRE_BATCH_HEADER_MAX (1 + 1 + 1 + 9 + 2 + ZC_NAME_MAX + 5)
//  Most bytes in front of one entry of a batch (a bin32's tag and length).
#define ZC_WIRE_BATCH_ENTRY_PREFIX_MAX 5

typedef enum {
    ZC_KIND_PUBLIC = 1,  //  to every node (PUB/SUB)
    ZC_KIND_GROUP = 2,   //  to the members of a group (PUB/SUB)
    ZC_KIND_PRIVATE = 3, //  to one node (DEALER/ROUTER)
    ZC_KIND_REQUEST = 4, //  RPC request to one node (DEALER/ROUTER)
    ZC_KIND_REPLY = 5    //  RPC reply (DEALER/ROUTER)
} zc_kind_t;

typedef enum {
    ZC_WIRE_OK = 0,
    ZC_WIRE_MALFORMED = -1,  //  not a valid frame for this protocol
    ZC_WIRE_VERSION_BAD = -2 //  well formed, but a protocol version we do not speak
} zc_wire_result_t;

//  A decoded header. Strings are NUL-terminated copies.
typedef struct {
    uint8_t version;
    uint8_t kind;
    char type[ZC_NAME_MAX + 1];
    char sender[ZC_NAME_MAX + 1];
    uint64_t seq;
    uint64_t corr;
} zc_header_t;

//  Returns 1 if name is a valid node id, type or group name: 1..ZC_NAME_MAX
//  bytes, no NUL (it is a C string) and no ASCII control characters or space.
int zc_wire_name_valid(const char *name);

//  The length of name if it is valid (as zc_wire_name_valid), else 0: one
//  pass for a sender that needs both.
size_t zc_wire_name_length(const char *name);

//  Encodes the topic (the start of a PUB frame) for a kind (PUBLIC or GROUP;
//  group is ignored for PUBLIC) into buf. Returns its length, or -1 if the
//  group name is invalid or buf is smaller than needed.
int zc_wire_topic_encode(int kind, const char *group, uint8_t *buf, size_t cap);

//  Decodes the topic at the start of a frame. On success sets *kind, copies
//  the group name (empty for PUBLIC) into group, sets *consumed to the
//  topic's length, and returns ZC_WIRE_OK.
int zc_wire_topic_decode(const uint8_t *data, size_t size, int *kind, char group[ZC_NAME_MAX + 1],
                         size_t *consumed);

//  Encodes a header into buf (cap >= ZC_WIRE_HEADER_MAX always suffices).
//  Returns its length, or -1 if a field is invalid or buf is too small.
int zc_wire_header_encode(const zc_header_t *header, uint8_t *buf, size_t cap);

//  The send path's encoder: the same bytes as zc_wire_header_encode, from
//  the fields themselves, with no zc_header_t to fill. type and sender
//  (type_len and sender_len bytes) must be valid names (the caller checked,
//  e.g. with zc_wire_name_length); cap must hold the longest header for
//  these names (ZC_WIRE_HEADER_MAX always does). Returns the length, or -1
//  for a bad kind or too small a buffer.
int zc_wire_header_write(uint8_t *buf, size_t cap, uint8_t version, int kind, const char *type,
                         size_t type_len, const char *sender, size_t sender_len, uint64_t seq,
                         uint64_t corr);

//  Longest header tail: seq and corr.
#define ZC_WIRE_TAIL_MAX (2 * 9)

//  The tail of a header, seq then corr, as zc_wire_header_write ends it,
//  into buf (ZC_WIRE_TAIL_MAX bytes). Returns its length. A sender that
//  keeps the head of a run of headers (all of zc_wire_header_write's bytes
//  up to seq; with seq and corr 0 that is all but the last two) writes only
//  this after it.
size_t zc_wire_header_tail_write(uint8_t *buf, uint64_t seq, uint64_t corr);

//  Decodes the header at the start of data; the bytes after it (size -
//  *consumed) are the payload. Returns ZC_WIRE_OK, ZC_WIRE_MALFORMED or
//  ZC_WIRE_VERSION_BAD (header->version and, if readable, header->sender
//  are then set so the caller can report it). Arrays longer than six
//  elements are accepted and the extra elements skipped: later minor
//  revisions may append fields.
int zc_wire_header_decode(const uint8_t *data, size_t size, zc_header_t *header, size_t *consumed);

//  What zc_wire_header_decode_next remembers of the last header it decoded:
//  its head, the bytes up to seq (array, version, kind, type, sender).
typedef struct {
    uint8_t head[ZC_WIRE_HEADER_MAX];
    size_t len; //  0: nothing remembered (initialise so)
    uint64_t count;
    int repeated; //  the last header decoded began with the remembered head
} zc_wire_memo_t;

//  The receive path's decoder: zc_wire_header_decode, for a run of headers
//  decoded into the same header, with memo kept between calls. Messages of
//  a stream (one sender, one type) begin with the same head; when this one
//  does, the type and sender that header already holds are not read,
//  checked and copied again, and only seq, corr and any extra elements
//  are (memo->repeated says so: a caller may keep more per stream). Same results as
//  zc_wire_header_decode, which is this with an empty memo; header must not change between calls
//  otherwise.
int zc_wire_header_decode_next(const uint8_t *data, size_t size, zc_header_t *header,
                               zc_wire_memo_t *memo, size_t *consumed);

//  A batch frame being read: zc_wire_batch_open checks it whole, then
//  zc_wire_batch_next hands out its messages one by one.
typedef struct {
    const uint8_t *next; //  the next entry
    const uint8_t *end;  //  the end of the frame
    uint64_t left;       //  entries not yet handed out
    char sender[ZC_NAME_MAX + 1];
} zc_wire_batch_t;

//  Writes a batch header for count (>= 1) messages of sender (sender_len
//  bytes, a valid name) into buf (cap >= ZC_WIRE_BATCH_HEADER_MAX). Returns
//  its length, or -1.
int zc_wire_batch_header_write(uint8_t *buf, size_t cap, const char *sender, size_t sender_len,
                               uint32_t count);

//  Writes the bytes in front of one entry of len bytes (a msgpack bin's tag
//  and length, in its shortest form) into buf, which has room for
//  ZC_WIRE_BATCH_ENTRY_PREFIX_MAX. Returns how many it wrote.
int zc_wire_batch_entry_prefix(uint8_t *buf, size_t len);

//  Reads the batch header at the start of data (after the topic on the PUB
//  path) and checks that exactly its count of entries fills the rest of the
//  frame. Returns ZC_WIRE_OK (batch ready for zc_wire_batch_next, its
//  sender set), ZC_WIRE_MALFORMED, or ZC_WIRE_VERSION_BAD if the frame does
//  not begin with an array whose version is ZC_WIRE_BATCH_VERSION (it is
//  not a batch: judge it with zc_wire_header_decode); on either, batch has
//  nothing to take. Allocates nothing.
int zc_wire_batch_open(zc_wire_batch_t *batch, const uint8_t *data, size_t size);

//  Takes the next message of an open batch: *message points at its bytes
//  in the frame (a version-1 header, then its payload), *size is their
//  length. Returns 1, or 0 when every message was taken. Each message is
//  untrusted still: decode it with zc_wire_header_decode.
int zc_wire_batch_next(zc_wire_batch_t *batch, const uint8_t **message, size_t *size);

#ifdef __cplusplus
}
#endif

#endif
