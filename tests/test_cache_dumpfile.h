/*  What the cache dump tests share: building a dump file from its header
    line and msgpack body exactly as docs/CACHE.md describes it, with a
    CRC-32 of their own (independent of the library's). */
#ifndef ZC_TEST_CACHE_DUMPFILE_H_INCLUDED
#define ZC_TEST_CACHE_DUMPFILE_H_INCLUDED

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  CRC-32 as docs/CACHE.md specifies it (zlib's), table-driven.
static inline uint32_t zt_crc32(const uint8_t *data, size_t size)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t c = n;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
            table[n] = c;
        }
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++)
        crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

//  Returns header + body + the checksum trailer (malloc'd) and its size.
static inline uint8_t *zt_dump_seal(const char *header, const void *body, size_t body_size,
                                    size_t *size)
{
    size_t header_len = strlen(header);
    uint8_t *file = (uint8_t *)malloc(header_len + body_size + 16);
    memcpy(file, header, header_len);
    if (body_size) memcpy(file + header_len, body, body_size);
    *size = header_len + body_size;
    snprintf((char *)file + *size, 16, "crc32 %08x\n", zt_crc32(file, *size));
    *size += 15;
    return file;
}

#endif
