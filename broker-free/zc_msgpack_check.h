/*  zc_msgpack_check — reading msgpack that nobody vouches for (private to
    libzcluster; in the messaging plane, the lowest layer that reads it).

    Wire headers come from the network; cache values come from callers,
    from other programs writing under the cluster's prefix, and from dump
    files; all of it is untrusted. These
    functions walk the encoding in place, without allocating and without
    recursion, and refuse a declared length longer than the bytes left at
    once, so a hostile header cannot make us allocate gigabytes or overflow
    the stack.
*/
#ifndef ZC_MSGPACK_CHECK_H_INCLUDED
#define ZC_MSGPACK_CHECK_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Returns the length of the msgpack object at the start of data, or 0 if
//  data does not start with one complete, well-formed object.
size_t zc_msgpack_object_size(const void *data, size_t size);

//  Returns 1 if data (size bytes) is exactly one well-formed msgpack object.
int zc_msgpack_valid(const void *data, size_t size);

//  A cursor over untrusted msgpack bytes: each read checks the bytes left,
//  moves past what it read and returns 0, or returns -1 and moves nothing.
typedef struct {
    const uint8_t *p;
    size_t left;
} zc_msgpack_reader_t;

//  Reads an array header into *count.
int zc_msgpack_read_array(zc_msgpack_reader_t *self, uint64_t *count);

//  Reads a str: *str points into the bytes (not NUL-terminated), *len its length.
int zc_msgpack_read_str(zc_msgpack_reader_t *self, const char **str, size_t *len);

//  Reads an integer (any encoding) that fits an int64_t.
int zc_msgpack_read_int(zc_msgpack_reader_t *self, int64_t *value);

//  Reads one whole object as raw bytes: *data points into the bytes.
int zc_msgpack_read_object(zc_msgpack_reader_t *self, const uint8_t **data, size_t *size);

#endif
