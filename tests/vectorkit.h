/*  vectorkit — the test vectors of docs/PROTOCOL.md, read out of the
    document itself (the fenced blocks marked `vector`, format in its
    section 14), so that the document and the code that the tests check
    against it cannot drift apart. test_wire checks every vector against
    the wire codec (test_wire_batch the batch frames); test_rpc_wire plays
    section 14.8's conversation against a C node.
*/
#ifndef ZC_VECTORKIT_H_INCLUDED
#define ZC_VECTORKIT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define ZT_VECTOR_MAX    128
#define ZT_VECTOR_BYTES  1024
#define ZT_VECTOR_FRAMES 4  //  frames of one message, for the wrong-count vectors
#define ZT_MARK_MAX      16 //  a batch frame marks each of its entries
#define ZT_ENTRY_MAX     8  //  messages in one batch vector

typedef struct {
    uint8_t data[ZT_VECTOR_BYTES];
    size_t size;
    size_t mark[ZT_MARK_MAX]; //  offsets of the document's `|` marks
    int marks;
} zt_frame_t;

typedef struct {
    char name[64];
    char via[16];
    zt_frame_t frame[ZT_VECTOR_FRAMES];
    int frames;
    zt_frame_t routing_id;
    int has_routing_id;
    char result[16];
    int canonical;
    char decoded[512];
    char rpc[512];                 //  "" unless the vector has an `rpc` line
    int batch;                     //  a batch frame (`batch: yes`, section 14.9)
    char entry[ZT_ENTRY_MAX][512]; //  its `entry` lines, in order
    int entries;
    int line; //  where its block starts in the document
} zt_vector_t;

//  Reads the vectors of docs/PROTOCOL.md ($ZC_SOURCE_DIR/docs, else found
//  next to this source file) into vectors, in the document's order, at most
//  max. A malformed block fails a check (ZT_CHECK) and is kept as far as it
//  was read. Returns the number read, or -1 if the document cannot be read.
int zt_vectors_load(zt_vector_t *vectors, int max);

//  The vector called name, or NULL.
zt_vector_t *zt_vector_find(zt_vector_t *vectors, int count, const char *name);

#endif
