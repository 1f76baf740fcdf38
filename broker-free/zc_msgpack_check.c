/*  zc_msgpack_check — reading msgpack that nobody vouches for. See
    zc_msgpack_check.h.

    The object-size walk keeps a count of objects still owed instead of
    recursing: an array or a map adds its children to the count, and every
    object takes at least one byte, so a count larger than the bytes left is
    refused before anything is read for it.
*/
#include "zc_msgpack_check.h"

//  Reads a big-endian unsigned integer of n bytes.
static uint64_t s_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

//  The first bytes 0xc0..0xdf: how each is followed. A length or count field
//  of `width` bytes (a count of `children` objects each, or of payload
//  bytes when children is 0), then `skip` fixed payload bytes.
typedef struct {
    uint8_t valid, width, skip, children;
} s_format_t;

static const s_format_t s_formats[32] = {
    {1, 0, 0, 0},  {0, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0}, //  nil, (never used), false, true
    {1, 1, 0, 0},  {1, 2, 0, 0}, {1, 4, 0, 0},               //  bin 8/16/32
    {1, 1, 1, 0},  {1, 2, 1, 0}, {1, 4, 1, 0},               //  ext 8/16/32 (+ type byte)
    {1, 0, 4, 0},  {1, 0, 8, 0},                             //  float 32/64
    {1, 0, 1, 0},  {1, 0, 2, 0}, {1, 0, 4, 0}, {1, 0, 8, 0}, //  uint 8..64
    {1, 0, 1, 0},  {1, 0, 2, 0}, {1, 0, 4, 0}, {1, 0, 8, 0}, //  int 8..64
    {1, 0, 2, 0},  {1, 0, 3, 0}, {1, 0, 5, 0}, {1, 0, 9, 0}, //  fixext 1..16 (+ type byte)
    {1, 0, 17, 0}, {1, 1, 0, 0}, {1, 2, 0, 0}, {1, 4, 0, 0}, //  fixext 16, str 8/16/32
    {1, 2, 0, 1},  {1, 4, 0, 1},                             //  array 16/32
    {1, 2, 0, 2},  {1, 4, 0, 2},                             //  map 16/32
};

size_t zc_msgpack_object_size(const void *bytes, size_t size)
{
    const uint8_t *data = (const uint8_t *)bytes;
    size_t pos = 0;
    uint64_t owed = 1; //  objects still to read, counting nested ones
    while (owed > 0) {
        if (pos >= size) return 0;
        uint8_t b = data[pos++];
        owed--;
        uint64_t skip = 0;
        if (b <= 0x7f || b >= 0xe0)
            ; //  positive and negative fixint
        else if (b <= 0x8f)
            owed += 2 * (uint64_t)(b & 0x0f); //  fixmap
        else if (b <= 0x9f)
            owed += b & 0x0f; //  fixarray
        else if (b <= 0xbf)
            skip = b & 0x1f; //  fixstr
        else {
            s_format_t f = s_formats[b - 0xc0];
            if (!f.valid || size - pos < f.width) return 0;
            uint64_t n = s_be(data + pos, f.width);
            pos += f.width;
            if (f.children)
                owed += f.children * n;
            else
                skip = n + f.skip;
        }
        if (skip > size - pos) return 0;
        pos += (size_t)skip;
        if (owed > size - pos) //  every object takes at least one byte
            return 0;
    }
    return pos;
}

int zc_msgpack_valid(const void *data, size_t size)
{
    return data && size > 0 && zc_msgpack_object_size(data, size) == size;
}

//  Moves the cursor past n bytes (already checked to be there).
static void s_advance(zc_msgpack_reader_t *self, size_t n)
{
    self->p += n;
    self->left -= n;
}

int zc_msgpack_read_array(zc_msgpack_reader_t *self, uint64_t *count)
{
    if (self->left < 1) return -1;
    uint8_t b = self->p[0];
    size_t width = b == 0xdc ? 2 : b == 0xdd ? 4 : 0;
    if ((b & 0xf0) == 0x90)
        *count = b & 0x0f;
    else if (!width || self->left < 1 + width)
        return -1;
    else
        *count = s_be(self->p + 1, width);
    s_advance(self, 1 + width);
    return 0;
}

int zc_msgpack_read_str(zc_msgpack_reader_t *self, const char **str, size_t *len)
{
    if (self->left < 1) return -1;
    uint8_t b = self->p[0];
    size_t width = b == 0xd9 ? 1 : b == 0xda ? 2 : b == 0xdb ? 4 : 0;
    uint64_t n;
    if ((b & 0xe0) == 0xa0)
        n = b & 0x1f;
    else if (!width || self->left < 1 + width)
        return -1;
    else
        n = s_be(self->p + 1, width);
    if (n > self->left - 1 - width) return -1;
    *str = (const char *)self->p + 1 + width;
    *len = (size_t)n;
    s_advance(self, 1 + width + (size_t)n);
    return 0;
}

int zc_msgpack_read_int(zc_msgpack_reader_t *self, int64_t *value)
{
    if (self->left < 1) return -1;
    uint8_t b = self->p[0];
    if (b <= 0x7f || b >= 0xe0) {
        *value = (int8_t)b;
        s_advance(self, 1);
        return 0;
    }
    size_t width = b == 0xcc || b == 0xd0   ? 1
                   : b == 0xcd || b == 0xd1 ? 2
                   : b == 0xce || b == 0xd2 ? 4
                   : b == 0xcf || b == 0xd3 ? 8
                                            : 0;
    if (!width || self->left < 1 + width) return -1;
    uint64_t u = s_be(self->p + 1, width);
    if (b >= 0xd0) { //  signed: sign-extend
        if (width < 8 && (u >> (8 * width - 1))) u |= ~(uint64_t)0 << (8 * width);
        *value = (int64_t)u;
    } else if (u > INT64_MAX)
        return -1;
    else
        *value = (int64_t)u;
    s_advance(self, 1 + width);
    return 0;
}

int zc_msgpack_read_object(zc_msgpack_reader_t *self, const uint8_t **data, size_t *size)
{
    size_t n = zc_msgpack_object_size(self->p, self->left);
    if (!n) return -1;
    *data = self->p;
    *size = n;
    s_advance(self, n);
    return 0;
}
