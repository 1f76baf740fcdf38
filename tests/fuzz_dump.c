/*  fuzz_dump — libFuzzer target for the cache dump reader: a dump file's
    bytes to its records, with every check a restore makes before it writes
    (cache_dump_parse, the checks of cache_dump_read; the format is docs/CACHE.md, section 6).

    The first byte is a mode; the rest is the file, except that with bit 0
    set the target appends the right checksum trailer, and with bit 1 set it
    puts a right header in front, counting as many records as the second
    byte says (so that mutations get past the checks of both ends).

    Checks, beyond not crashing:
    - a dump that is refused is refused as corrupt, with a message;
    - a dump that is accepted holds keys of 1 to 1024 bytes, each once, TTLs
      of -1 or 1 to 10^15 ms, a value as one item and a list as one or more,
      every item one whole msgpack object by msgpack-c's reading too (or
      nested deeper than msgpack-c goes);
    - its records, written again as a dump writer writes them, read back the
      same; and a change to any one byte before its trailer gets it refused.

        ./fuzz_dump -dict=tests/fuzz/dump.dict -max_total_time=60 tests/fuzz/corpus/dump
*/
#include "zc_cache_internal.h"
#include "zc_log.h"
#include "fuzzkit.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static zc_cache_t *s_cache; //  never connects: the reader writes nothing

//  The records of a dump, copied out of the reader.
typedef struct {
    char *key;
    int is_list;
    int64_t ttl;
    size_t count;
    msgpack_sbuffer items; //  the items back to back
    size_t *sizes;
} s_record_t;

typedef struct {
    s_record_t *records;
    size_t count, alloc;
} s_dump_t;

static void s_dump_free(s_dump_t *dump)
{
    for (size_t i = 0; i < dump->count; i++) {
        free(dump->records[i].key);
        free(dump->records[i].sizes);
        msgpack_sbuffer_destroy(&dump->records[i].items);
    }
    free(dump->records);
    memset(dump, 0, sizeof *dump);
}

static void s_collect(const char *key, int is_list, int64_t ttl, const uint8_t *const *items,
                      const size_t *sizes, size_t count, void *arg)
{
    s_dump_t *dump = (s_dump_t *)arg;
    if (dump->count == dump->alloc) {
        dump->alloc = dump->alloc ? 2 * dump->alloc : 16;
        dump->records = (s_record_t *)realloc(dump->records, dump->alloc * sizeof(s_record_t));
    }
    s_record_t *record = &dump->records[dump->count++];
    record->key = strdup(key);
    record->is_list = is_list;
    record->ttl = ttl;
    record->count = count;
    record->sizes = (size_t *)calloc(count ? count : 1, sizeof(size_t));
    msgpack_sbuffer_init(&record->items);
    for (size_t i = 0; i < count; i++) {
        record->sizes[i] = sizes[i];
        msgpack_sbuffer_write(&record->items, (const char *)items[i], sizes[i]);
    }
}

//  CRC-32 (IEEE 802.3), bit by bit: written apart from the reader's own.
static uint32_t s_crc32(const uint8_t *data, size_t size)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void s_append_trailer(msgpack_sbuffer *file)
{
    char trailer[16];
    snprintf(trailer, sizeof trailer, "crc32 %08x\n",
             s_crc32((const uint8_t *)file->data, file->size));
    msgpack_sbuffer_write(file, trailer, 15);
}

//  One item: a whole msgpack object for msgpack-c, unless nested deeper
//  than its fixed stack (which it reports as out of memory).
static void s_check_item(const char *item, size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t used = 0;
    msgpack_unpack_return rc = msgpack_unpack_next(&unpacked, item, size, &used);
    CHECK((rc == MSGPACK_UNPACK_SUCCESS && used == size) || rc == MSGPACK_UNPACK_NOMEM_ERROR);
    msgpack_unpacked_destroy(&unpacked);
}

static int s_by_key(const void *a, const void *b)
{
    return strcmp(((const s_record_t *)a)->key, ((const s_record_t *)b)->key);
}

static void s_check_records(s_dump_t *dump)
{
    for (size_t i = 0; i < dump->count; i++) {
        s_record_t *record = &dump->records[i];
        size_t len = strlen(record->key);
        CHECK(len >= 1 && len <= ZC_CACHE_KEY_MAX);
        CHECK(record->ttl == -1 || (record->ttl >= 1 && record->ttl <= 1000000000000000LL));
        CHECK(record->is_list ? record->count >= 1 : record->count == 1);
        size_t at = 0;
        for (size_t j = 0; j < record->count; j++) {
            s_check_item(record->items.data + at, record->sizes[j]);
            at += record->sizes[j];
        }
        CHECK(at == record->items.size);
    }
}

//  The records as a dump writer writes them (zc_cache_dump.c).
static void s_write(const s_dump_t *dump, msgpack_sbuffer *file)
{
    char header[80];
    int len = snprintf(header, sizeof header, "ZCCACHE 1 %zu 1700000000000\n", dump->count);
    msgpack_sbuffer_write(file, header, (size_t)len);
    msgpack_packer pk;
    msgpack_packer_init(&pk, file, msgpack_sbuffer_write);
    for (size_t i = 0; i < dump->count; i++) {
        const s_record_t *record = &dump->records[i];
        const char *kind = record->is_list ? "list" : "value";
        msgpack_pack_array(&pk, 4);
        msgpack_pack_str_with_body(&pk, record->key, strlen(record->key));
        msgpack_pack_str_with_body(&pk, kind, strlen(kind));
        msgpack_pack_int64(&pk, record->ttl);
        if (record->is_list) msgpack_pack_array(&pk, record->count);
        msgpack_sbuffer_write(file, record->items.data, record->items.size);
    }
    s_append_trailer(file);
}

static int s_same(const s_dump_t *a, const s_dump_t *b)
{
    if (a->count != b->count) return 0;
    for (size_t i = 0; i < a->count; i++) {
        const s_record_t *x = &a->records[i], *y = &b->records[i];
        if (strcmp(x->key, y->key) || x->is_list != y->is_list || x->ttl != y->ttl ||
            x->count != y->count || x->items.size != y->items.size ||
            memcmp(x->items.data, y->items.data, x->items.size) ||
            memcmp(x->sizes, y->sizes, x->count * sizeof(size_t)))
            return 0;
    }
    return 1;
}

//  An accepted dump: its records, the same dump rewritten, one byte changed.
static void s_accepted(s_dump_t *dump, const msgpack_sbuffer *file, uint8_t pick)
{
    s_check_records(dump);
    msgpack_sbuffer again;
    msgpack_sbuffer_init(&again);
    s_write(dump, &again);
    s_dump_t reread = {0};
    CHECK(cache_dump_parse(s_cache, (const uint8_t *)again.data, again.size, s_collect, &reread) ==
          ZC_OK);
    CHECK(s_same(dump, &reread));
    s_dump_free(&reread);
    msgpack_sbuffer_destroy(&again);
    //  Keys once each (sorted last: the checks above need the file's order).
    if (dump->count > 1) qsort(dump->records, dump->count, sizeof(s_record_t), s_by_key);
    for (size_t i = 1; i < dump->count; i++)
        CHECK(strcmp(dump->records[i - 1].key, dump->records[i].key) != 0);
    uint8_t *changed = (uint8_t *)malloc(file->size);
    memcpy(changed, file->data, file->size);
    changed[(pick * 2654435761u) % (file->size - 15)] ^= (uint8_t)(pick | 1);
    s_dump_t none = {0};
    CHECK(cache_dump_parse(s_cache, changed, file->size, s_collect, &none) == ZC_ERR_CORRUPT);
    CHECK(none.count == 0);
    free(changed);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    zc_log_set_level(ZC_LOG_ERROR);
    s_cache = zc_cache_new("redis://127.0.0.1:1", "fuzz", "fuzzer");
    return s_cache ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int fix_trailer = data[0] & 1, add_header = data[0] & 2;
    msgpack_sbuffer file;
    msgpack_sbuffer_init(&file);
    if (add_header) {
        char header[80];
        int len = snprintf(header, sizeof header, "ZCCACHE 1 %u 1700000000000\n", data[1]);
        msgpack_sbuffer_write(&file, header, (size_t)len);
    }
    size_t skip = add_header ? 2 : 1;
    if (size > skip) msgpack_sbuffer_write(&file, (const char *)data + skip, size - skip);
    if (fix_trailer) s_append_trailer(&file);
    s_dump_t dump = {0};
    zc_error_t rc =
        cache_dump_parse(s_cache, (const uint8_t *)file.data, file.size, s_collect, &dump);
    if (rc == ZC_OK)
        s_accepted(&dump, &file, data[size - 1]);
    else {
        CHECK(rc == ZC_ERR_CORRUPT && *s_cache->failure.text && dump.count == 0);
    }
    s_dump_free(&dump);
    msgpack_sbuffer_destroy(&file);
    return 0;
}
