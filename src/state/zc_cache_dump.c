/*  zc_cache_dump — the dump file: dump writes it, restore reads and checks
    it (zc_cache_restore.c then writes it into Redis).

    Dumps are written to a temporary file and renamed into place, and carry a
    CRC-32 of everything before the trailer. A restore reads the whole file,
    checks magic, version, checksum, count and every record (each value and
    list item being one well-formed msgpack object) before it sends
    anything: a damaged file changes nothing. The format is in
    docs/CACHE.md.
*/
#include "zc_cache_internal.h"
#include "zc_msgpack_check.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAGIC      "ZCCACHE"
#define S_VERSION    1
#define S_TRAILER    15 //  "crc32 xxxxxxxx\n"
#define S_HEADER_MAX 80

//  Continues crc (0 to start) over size bytes of data: CRC-32 (IEEE 802.3,
//  as zlib's crc32 and Python's zlib.crc32).
static uint32_t s_crc32(uint32_t crc, const uint8_t *data, size_t size)
{
    static const uint32_t table[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
                                       0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
                                       0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                       0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
    crc = ~crc;
    for (size_t i = 0; i < size; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ table[crc & 15];
        crc = (crc >> 4) ^ table[crc & 15];
    }
    return ~crc;
}

//  --------------------------------------------------------------------------
//  Dump

typedef struct {
    msgpack_sbuffer body;
    msgpack_packer packer;
    size_t count;
} s_dump_t;

//  Checks the items of a dumped key (a value is one item): each must be msgpack.
static zc_error_t s_check_items(zc_cache_t *self, const char *key, const redisReply *const *items,
                                size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (items[i]->type != REDIS_REPLY_STRING || !zc_msgpack_valid(items[i]->str, items[i]->len))
            return cache_fail(self, ZC_ERR_CORRUPT,
                              "key '%.100s' holds bytes that are not msgpack; nothing was dumped",
                              key);
    return ZC_OK;
}

//  Appends one record [key, kind, ttl, data] to the dump.
static void s_pack_record(s_dump_t *dump, const char *key, int is_list, int64_t ttl,
                          const redisReply *const *items, size_t n)
{
    msgpack_packer *pk = &dump->packer;
    size_t key_len = strlen(key);
    msgpack_pack_array(pk, 4);
    msgpack_pack_str(pk, key_len);
    msgpack_pack_str_body(pk, key, key_len);
    msgpack_pack_str(pk, is_list ? 4 : 5);
    msgpack_pack_str_body(pk, is_list ? "list" : "value", is_list ? 4 : 5);
    msgpack_pack_int64(pk, ttl);
    if (is_list) msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_sbuffer_write(&dump->body, items[i]->str, items[i]->len);
    dump->count++;
}

//  Appends one dumped key's record; entry is the script's {type, pttl, data}.
static zc_error_t s_dump_record(zc_cache_t *self, s_dump_t *dump, const char *key,
                                const redisReply *entry)
{
    const char *type = entry->elements >= 1 && entry->element[0]->type == REDIS_REPLY_STRING
                           ? entry->element[0]->str
                           : "?";
    if (strcmp(type, "none") == 0) return ZC_OK; //  expired or removed since SCAN saw it
    if (strcmp(type, "string") != 0 && strcmp(type, "list") != 0)
        return cache_fail(self, ZC_ERR_TYPE,
                          "key '%.100s' holds a %.20s; only values and lists can be dumped", key,
                          type);
    if (entry->elements != 3 || entry->element[1]->type != REDIS_REPLY_INTEGER)
        return cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to dump");
    int is_list = strcmp(type, "list") == 0;
    const redisReply *data = entry->element[2];
    if ((is_list && data->type != REDIS_REPLY_ARRAY) ||
        (!is_list && data->type != REDIS_REPLY_STRING))
        return cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to dump");
    const redisReply *const *items = is_list ? (const redisReply *const *)data->element : &data;
    size_t n = is_list ? data->elements : 1;
    if (n == 0) return ZC_OK;
    zc_error_t rc = s_check_items(self, key, items, n);
    if (rc) return rc;
    int64_t ttl = entry->element[1]->integer;
    s_pack_record(dump, key, is_list, ttl < 0 ? -1 : ttl == 0 ? 1 : ttl, items, n);
    return ZC_OK;
}

//  Reads one SCAN batch of keys with their types, TTLs and data (one script
//  call) and appends their records.
static zc_error_t s_dump_batch(zc_cache_t *self, const redisReply **names, size_t count, void *arg)
{
    zc_redis_args_eval(&self->args, cache_script(CACHE_DUMP), (int)count);
    for (size_t i = 0; i < count; i++)
        zc_redis_args_add(&self->args, names[i]->str, names[i]->len);
    redisReply *reply = NULL;
    zc_error_t rc = cache_call(self, &self->args, "*", "dump", &reply);
    if (!rc && (reply->type != REDIS_REPLY_ARRAY || reply->elements != count))
        rc = cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to dump");
    for (size_t i = 0; !rc && i < count; i++) {
        if (reply->element[i]->type != REDIS_REPLY_ARRAY)
            rc = cache_fail(self, ZC_ERR_REDIS, "unexpected reply from Redis to dump");
        else
            rc = s_dump_record(self, (s_dump_t *)arg, names[i]->str + self->names_prefix_len,
                               reply->element[i]);
    }
    if (reply) freeReplyObject(reply);
    return rc;
}

//  Writes header, body and trailer to file; returns 1, or 0 with errno set.
static int s_write_all(FILE *file, const char *header, size_t header_len, const s_dump_t *dump,
                       const char *trailer)
{
    return fwrite(header, 1, header_len, file) == header_len &&
           (dump->body.size == 0 ||
            fwrite(dump->body.data, 1, dump->body.size, file) == dump->body.size) &&
           fwrite(trailer, 1, S_TRAILER, file) == S_TRAILER && fflush(file) == 0 &&
           fsync(fileno(file)) == 0;
}

//  Writes the dump to path through a temporary file renamed into place.
static zc_error_t s_dump_write(zc_cache_t *self, const char *path, s_dump_t *dump)
{
    char header[S_HEADER_MAX];
    int header_len = snprintf(header, sizeof header, "%s %d %zu %" PRId64 "\n", S_MAGIC, S_VERSION,
                              dump->count, zclock_time());
    uint32_t crc = s_crc32(0, (const uint8_t *)header, (size_t)header_len);
    crc = s_crc32(crc, (const uint8_t *)dump->body.data, dump->body.size);
    char trailer[S_TRAILER + 1];
    snprintf(trailer, sizeof trailer, "crc32 %08x\n", crc);

    char *tmp = (char *)malloc(strlen(path) + 32);
    assert(tmp);
    sprintf(tmp, "%s.tmp.%d", path, (int)getpid());
    zc_error_t rc = ZC_OK;
    FILE *file = fopen(tmp, "wb");
    if (!file)
        rc = cache_fail(self, ZC_ERR_IO, "cannot create %.200s: %s", tmp, strerror(errno));
    else {
        int ok = s_write_all(file, header, (size_t)header_len, dump, trailer);
        int saved = errno;
        if (fclose(file) != 0 && ok) {
            ok = 0;
            saved = errno;
        }
        if (ok && rename(tmp, path) != 0) {
            ok = 0;
            saved = errno;
        }
        if (!ok) {
            unlink(tmp);
            rc = cache_fail(self, ZC_ERR_IO, "cannot write %.200s: %s", path, strerror(saved));
        }
    }
    free(tmp);
    return rc;
}

int zc_cache_dump(zc_cache_t *self, const char *path, size_t *count_p)
{
    assert(self);
    assert(path);
    if (count_p) *count_p = 0;
    s_dump_t dump;
    memset(&dump, 0, sizeof dump);
    msgpack_sbuffer_init(&dump.body);
    msgpack_packer_init(&dump.packer, &dump.body, msgpack_sbuffer_write);
    zc_error_t rc = cache_walk(self, NULL, s_dump_batch, &dump);
    if (!rc) rc = s_dump_write(self, path, &dump);
    if (!rc && count_p) *count_p = dump.count;
    msgpack_sbuffer_destroy(&dump.body);
    return cache_done(self, rc);
}

//  --------------------------------------------------------------------------
//  Restore: read and check the whole file (cache_restore_apply writes it)

void cache_dump_file_free(cache_dump_file_t *dump)
{
    for (size_t i = 0; i < dump->record_count; i++)
        free(dump->records[i].key);
    free(dump->records);
    free(dump->items);
    free(dump->item_sizes);
    free(dump->file);
    memset(dump, 0, sizeof *dump);
}

static zc_error_t s_read_file(zc_cache_t *self, const char *path, cache_dump_file_t *dump)
{
    FILE *file = fopen(path, "rb");
    if (!file) return cache_fail(self, ZC_ERR_IO, "cannot open %.200s: %s", path, strerror(errno));
    struct stat st;
    zc_error_t rc = ZC_OK;
    if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode))
        rc = cache_fail(self, ZC_ERR_IO, "%.200s is not a regular file", path);
    else {
        dump->size = (size_t)st.st_size;
        dump->file = (uint8_t *)malloc(dump->size + 1);
        assert(dump->file);
        if (fread(dump->file, 1, dump->size, file) != dump->size)
            rc = cache_fail(self, ZC_ERR_IO, "cannot read %.200s: %s", path,
                            ferror(file) ? strerror(errno) : "file shrank while read");
    }
    fclose(file);
    return rc;
}

//  Parses the header line; sets *count and *body_start.
static zc_error_t s_parse_header(zc_cache_t *self, const cache_dump_file_t *dump, uint64_t *count,
                                 size_t *body_start)
{
    const char *text = (const char *)dump->file;
    size_t magic_len = strlen(S_MAGIC);
    if (dump->size < magic_len + 1 || memcmp(text, S_MAGIC " ", magic_len + 1) != 0)
        return cache_fail(self, ZC_ERR_CORRUPT, "not a zcluster cache dump (bad magic)");
    const char *eol =
        (const char *)memchr(text, '\n', dump->size < S_HEADER_MAX ? dump->size : S_HEADER_MAX);
    if (!eol) return cache_fail(self, ZC_ERR_CORRUPT, "dump header line is truncated or too long");
    uint64_t fields[3];
    const char *p = text + magic_len + 1;
    for (int i = 0; i < 3; i++) {
        if (p >= eol || *p < '0' || *p > '9')
            return cache_fail(self, ZC_ERR_CORRUPT, "dump header is malformed");
        fields[i] = 0;
        for (; p < eol && *p >= '0' && *p <= '9'; p++) {
            uint64_t digit = (uint64_t)(*p - '0');
            if (fields[i] > (UINT64_MAX - digit) / 10)
                return cache_fail(self, ZC_ERR_CORRUPT, "dump header is malformed");
            fields[i] = fields[i] * 10 + digit;
        }
        if (i == 0 && fields[0] != S_VERSION)
            return cache_fail(self, ZC_ERR_CORRUPT,
                              "unsupported dump version %" PRIu64 " (this build reads version %d)",
                              fields[0], S_VERSION);
        //  Fields are separated by one space; the last one ends the line.
        if (i < 2 ? *p++ != ' ' : p != eol)
            return cache_fail(self, ZC_ERR_CORRUPT, "dump header is malformed");
    }
    *count = fields[1];
    *body_start = (size_t)(eol - text) + 1;
    return ZC_OK;
}

//  Checks the trailer's CRC-32 over everything before it.
static zc_error_t s_check_trailer(zc_cache_t *self, const cache_dump_file_t *dump,
                                  size_t body_start)
{
    if (dump->size < body_start + S_TRAILER)
        return cache_fail(self, ZC_ERR_CORRUPT, "dump has no checksum trailer (truncated?)");
    const char *trailer = (const char *)dump->file + dump->size - S_TRAILER;
    if (memcmp(trailer, "crc32 ", 6) != 0 || trailer[S_TRAILER - 1] != '\n')
        return cache_fail(self, ZC_ERR_CORRUPT, "dump has no checksum trailer (truncated?)");
    uint32_t stored = 0;
    for (int i = 6; i < 14; i++) {
        char c = trailer[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (digit < 0)
            return cache_fail(self, ZC_ERR_CORRUPT, "dump checksum trailer is malformed");
        stored = (stored << 4) | (uint32_t)digit;
    }
    uint32_t actual = s_crc32(0, dump->file, dump->size - S_TRAILER);
    if (stored != actual)
        return cache_fail(self, ZC_ERR_CORRUPT,
                          "dump checksum mismatch (file says %08x, contents give %08x)", stored,
                          actual);
    return ZC_OK;
}

static void s_add_item(cache_dump_file_t *dump, const uint8_t *data, size_t size)
{
    if (dump->item_count == dump->item_alloc) {
        dump->item_alloc = dump->item_alloc ? dump->item_alloc * 2 : 64;
        dump->items = (const uint8_t **)realloc(dump->items, dump->item_alloc * sizeof(uint8_t *));
        dump->item_sizes = (size_t *)realloc(dump->item_sizes, dump->item_alloc * sizeof(size_t));
        assert(dump->items && dump->item_sizes);
    }
    dump->items[dump->item_count] = data;
    dump->item_sizes[dump->item_count++] = size;
}

//  Checks a record's fields (its key, kind and TTL); n is its record number.
static zc_error_t s_check_record(zc_cache_t *self, zhash_t *seen, const cache_record_t *record,
                                 size_t key_len, const char *kind, size_t kind_len, uint64_t n)
{
    if (key_len == 0 || key_len > ZC_CACHE_KEY_MAX || strlen(record->key) != key_len)
        return cache_fail(self, ZC_ERR_CORRUPT, "dump record %" PRIu64 " has an invalid key", n);
    if (!record->is_list && !(kind_len == 5 && memcmp(kind, "value", 5) == 0))
        return cache_fail(self, ZC_ERR_CORRUPT, "dump record %" PRIu64 " has an unknown type", n);
    if (record->ttl != -1 && (record->ttl < 1 || record->ttl > CACHE_TTL_MAX))
        return cache_fail(self, ZC_ERR_CORRUPT, "dump record %" PRIu64 " has an invalid TTL", n);
    if (zhash_insert(seen, record->key, (void *)1) != 0)
        return cache_fail(self, ZC_ERR_CORRUPT, "dump holds key '%.100s' twice", record->key);
    return ZC_OK;
}

//  Parses and checks record n (counted from 1) at the reader.
static zc_error_t s_parse_record(zc_cache_t *self, cache_dump_file_t *dump, zhash_t *seen,
                                 zc_msgpack_reader_t *r, uint64_t n)
{
    uint64_t fields, items = 1;
    const char *key, *kind;
    size_t key_len, kind_len;
    int64_t ttl;
    if (zc_msgpack_read_array(r, &fields) || fields != 4 ||
        zc_msgpack_read_str(r, &key, &key_len) || zc_msgpack_read_str(r, &kind, &kind_len) ||
        zc_msgpack_read_int(r, &ttl))
        return cache_fail(self, ZC_ERR_CORRUPT, "dump record %" PRIu64 " is malformed", n);
    cache_record_t *record = &dump->records[dump->record_count++];
    record->key = (char *)malloc(key_len + 1);
    assert(record->key);
    memcpy(record->key, key, key_len);
    record->key[key_len] = 0;
    record->is_list = kind_len == 4 && memcmp(kind, "list", 4) == 0;
    record->ttl = ttl;
    record->first = dump->item_count;
    zc_error_t rc = s_check_record(self, seen, record, key_len, kind, kind_len, n);
    if (rc) return rc;
    if (record->is_list && (zc_msgpack_read_array(r, &items) || items == 0 || items > r->left))
        return cache_fail(self, ZC_ERR_CORRUPT, "dump record %" PRIu64 " has a malformed list", n);
    for (uint64_t j = 0; j < items; j++) {
        const uint8_t *data;
        size_t size;
        if (zc_msgpack_read_object(r, &data, &size))
            return cache_fail(self, ZC_ERR_CORRUPT,
                              "dump record %" PRIu64 " holds a value that is not msgpack", n);
        s_add_item(dump, data, size);
    }
    record->count = (size_t)items;
    return ZC_OK;
}

//  Parses and checks count records in the body.
static zc_error_t s_parse_records(zc_cache_t *self, cache_dump_file_t *dump, uint64_t count,
                                  size_t body_start)
{
    zc_msgpack_reader_t r = {dump->file + body_start, dump->size - S_TRAILER - body_start};
    if (count > r.left) //  a record takes more than one byte
        return cache_fail(self, ZC_ERR_CORRUPT, "dump header counts more records than it holds");
    dump->records = (cache_record_t *)calloc(count ? count : 1, sizeof(cache_record_t));
    assert(dump->records);
    zhash_t *seen = zhash_new(); //  keys read so far
    zc_error_t rc = ZC_OK;
    for (uint64_t i = 0; i < count && !rc; i++)
        rc = s_parse_record(self, dump, seen, &r, i + 1);
    zhash_destroy(&seen);
    if (!rc && r.left)
        rc = cache_fail(self, ZC_ERR_CORRUPT, "dump has bytes after its last record");
    return rc;
}

//  Checks the whole file held in dump->file: header, checksum, records.
static zc_error_t s_check_file(zc_cache_t *self, cache_dump_file_t *dump)
{
    uint64_t count = 0;
    size_t body_start = 0;
    zc_error_t rc = s_parse_header(self, dump, &count, &body_start);
    if (!rc) rc = s_check_trailer(self, dump, body_start);
    if (!rc) rc = s_parse_records(self, dump, count, body_start);
    return rc;
}

zc_error_t cache_dump_read(zc_cache_t *self, const char *path, cache_dump_file_t *dump)
{
    memset(dump, 0, sizeof *dump);
    zc_error_t rc = s_read_file(self, path, dump);
    return rc ? rc : s_check_file(self, dump);
}

int zc_cache_restore(zc_cache_t *self, const char *path, size_t *count_p)
{
    assert(self);
    assert(path);
    if (count_p) *count_p = 0;
    cache_dump_file_t dump;
    size_t restored = 0;
    zc_error_t rc = cache_dump_read(self, path, &dump);
    if (rc)
        cache_note(self, "; nothing was restored");
    else
        rc = cache_restore_apply(self, &dump, &restored);
    if (count_p) *count_p = restored;
    cache_dump_file_free(&dump);
    return cache_done(self, rc);
}

zc_error_t cache_dump_parse(zc_cache_t *self, const uint8_t *data, size_t size,
                            cache_dump_record_fn *fn, void *arg)
{
    cache_dump_file_t dump;
    memset(&dump, 0, sizeof dump);
    dump.size = size;
    dump.file = (uint8_t *)malloc(size + 1);
    assert(dump.file);
    if (size) memcpy(dump.file, data, size);
    zc_error_t rc = s_check_file(self, &dump);
    for (size_t i = 0; !rc && i < dump.record_count; i++) {
        const cache_record_t *record = &dump.records[i];
        fn(record->key, record->is_list, record->ttl, dump.items + record->first,
           dump.item_sizes + record->first, record->count, arg);
    }
    cache_dump_file_free(&dump);
    return rc;
}
