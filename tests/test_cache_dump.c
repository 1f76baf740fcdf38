/*  zc_cache dump files: every truncation and every single-bit flip of a real
    dump is refused, files built here from docs/CACHE.md alone restore, and
    well-checksummed files with bad records are refused — each refusal with
    Redis left exactly as it was. */
#include "test_cache_dumpfile.h"
#include "testkit.h"
#include "zc_redis.h"
#include "zc_cache.h"

#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static zt_redis_t *s_redis;
static redisContext *s_raw;
static char s_path[300];

static void s_write(const void *data, size_t size)
{
    FILE *file = fopen(s_path, "wb");
    ZT_CHECK(file != NULL);
    if (file) {
        if (size) ZT_EQ(fwrite(data, 1, size, file), size);
        fclose(file);
    }
}

//  Writes header + body + a correct trailer.
static void s_write_dump(const char *header, const msgpack_sbuffer *body)
{
    size_t size = 0;
    uint8_t *file = zt_dump_seal(header, body->data, body->size, &size);
    s_write(file, size);
    free(file);
}

//  Everything of cluster t in Redis, as one comparable string: each name,
//  whether it expires, and its DUMP serialization.
static char *s_state(void)
{
    redisReply *names = (redisReply *)redisCommand(s_raw, "KEYS zc:{t}:*");
    ZT_CHECK(names && names->type == REDIS_REPLY_ARRAY);
    //  Sort the names so two snapshots compare.
    for (size_t i = 0; names && i < names->elements; i++)
        for (size_t j = i + 1; j < names->elements; j++)
            if (strcmp(names->element[i]->str, names->element[j]->str) > 0) {
                redisReply *t = names->element[i];
                names->element[i] = names->element[j];
                names->element[j] = t;
            }
    char *state = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&state, &len);
    for (size_t i = 0; names && i < names->elements; i++) {
        const char *name = names->element[i]->str;
        redisReply *dump = (redisReply *)redisCommand(s_raw, "DUMP %s", name);
        redisReply *ttl = (redisReply *)redisCommand(s_raw, "PTTL %s", name);
        fprintf(out, "%s %d ", name, ttl && ttl->integer > 0);
        if (dump && dump->type == REDIS_REPLY_STRING)
            for (size_t k = 0; k < dump->len; k++)
                fprintf(out, "%02x", (unsigned char)dump->str[k]);
        fputc('\n', out);
        freeReplyObject(dump);
        freeReplyObject(ttl);
    }
    fclose(out);
    freeReplyObject(names);
    return state;
}

//  Packs one record [key, type, ttl, value-or-items] with raw msgpack items.
static void s_record(msgpack_packer *pk, const char *key, size_t key_len, const char *type,
                     int64_t ttl, int items, const char *item, size_t item_size)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_str_with_body(pk, key, key_len);
    msgpack_pack_str_with_body(pk, type, strlen(type));
    msgpack_pack_int64(pk, ttl);
    if (items >= 0) msgpack_pack_array(pk, (size_t)items);
    for (int i = 0; i < (items >= 0 ? items : 1); i++)
        msgpack_sbuffer_write(pk->data, item, item_size);
}

//  Restores s_path and checks it fails with kind, Redis unchanged.
static int s_refused(zc_cache_t *cache, zc_error_t kind, const char *message)
{
    char *before = s_state();
    int got = zc_cache_restore(cache, s_path, NULL);
    char *after = s_state();
    int ok = got == -1 && zc_cache_error(cache) == kind && strcmp(before, after) == 0 &&
             (!message || strstr(zc_cache_errstr(cache), message));
    if (!ok)
        fprintf(stderr, "  restore gave %d, %s (%s), wanted %s%s%s\n", got,
                zc_strerror(zc_cache_error(cache)), zc_cache_errstr(cache), zc_strerror(kind),
                message ? " with " : "", message ? message : "");
    free(before);
    free(after);
    return ok;
}

//  Restores s_path and returns 1 if it was refused as corrupt.
static int s_corrupt(zc_cache_t *cache)
{
    return zc_cache_restore(cache, s_path, NULL) == -1 && zc_cache_error(cache) == ZC_ERR_CORRUPT;
}

static void s_test_damaged(zc_cache_t *cache)
{
    zt_section("a real dump, damaged every way");
    ZT_EQ(zc_cache_save(cache, "forever", "\xa3one", 4, 0), 0);
    ZT_EQ(zc_cache_save(cache, "brief", "\x92\x01\xa3two", 6, 60000), 0);
    for (int i = 0; i < 5; i++)
        ZT_EQ(zc_cache_push(cache, "jobs", "\xcd\x01\x00", 3), 0);
    size_t count = 0;
    ZT_EQ(zc_cache_dump(cache, s_path, &count), 0);
    ZT_EQ(count, 3);
    FILE *file = fopen(s_path, "rb");
    uint8_t good[4096];
    size_t size = file ? fread(good, 1, sizeof good, file) : 0;
    if (file) fclose(file);
    ZT_CHECK(size > 40 && size < sizeof good);
    ZT_CHECK(memcmp(good, "ZCCACHE 1 3 ", 12) == 0);
    ZT_CHECK(memcmp(good + size - 15, "crc32 ", 6) == 0);

    //  Make Redis differ from the dump, so any write would show.
    ZT_EQ(zc_cache_save(cache, "forever", "\xa7\x63hanged", 8, 0), 0);
    ZT_EQ(zc_cache_destroy_key(cache, "jobs"), 0);
    ZT_EQ(zc_cache_save(cache, "bystander", "\x01", 1, 0), 0);
    char *before = s_state();

    int wrong = 0;
    for (size_t len = 0; len < size; len++) {
        s_write(good, len);
        wrong += !s_corrupt(cache);
    }
    ZT_EQ(wrong, 0);
    fprintf(stderr, "  %zu truncations refused\n", size);
    wrong = 0;
    uint8_t damaged[4096];
    for (size_t i = 0; i < size; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(damaged, good, size);
            damaged[i] ^= (uint8_t)(1 << bit);
            s_write(damaged, size);
            wrong += !s_corrupt(cache);
        }
    ZT_EQ(wrong, 0);
    fprintf(stderr, "  %zu single-bit flips refused\n", size * 8);
    memcpy(damaged, good, size);
    damaged[size] = '\n';
    s_write(damaged, size + 1);
    ZT_CHECK(s_refused(cache, ZC_ERR_CORRUPT, "no checksum trailer"));
    char *after = s_state();
    ZT_CHECK(strcmp(before, after) == 0);
    free(after);
    ZT_CHECK(strstr(zc_cache_errstr(cache), "nothing was restored") != NULL);

    zt_section("a dump is refused while another node holds one of its locks");
    s_write(good, size);
    zc_cache_t *other = zc_cache_new(zt_redis_url(s_redis), "t", "node-b");
    ZT_EQ(zc_cache_lock(other, "jobs", 60000), 0);
    ZT_CHECK(s_refused(cache, ZC_ERR_LOCKED, "key 'jobs' is locked by node 'node-b'"));
    ZT_EQ(zc_cache_unlock(other, "jobs"), 0);
    redisReply *reply = (redisReply *)redisCommand(s_raw, "HSET zc:{t}:lock:brief f v");
    freeReplyObject(reply);
    ZT_CHECK(s_refused(cache, ZC_ERR_TYPE, "wrong kind"));
    freeReplyObject((redisReply *)redisCommand(s_raw, "DEL zc:{t}:lock:brief"));
    zc_cache_destroy(&other);

    zt_section("the undamaged dump restores");
    ZT_EQ(zc_cache_restore(cache, s_path, &count), 0);
    ZT_EQ(count, 3);
    size_t length = 0;
    ZT_EQ(zc_cache_length(cache, "jobs", &length), 0);
    ZT_EQ(length, 5);
    void *value = NULL;
    ZT_EQ(zc_cache_load(cache, "forever", NULL, &value, &size), 0);
    ZT_CHECK(size == 4 && memcmp(value, "\xa3one", 4) == 0);
    free(value);
    free(before);
    ZT_EQ(zc_cache_clear(cache, NULL), 0);
}

static void s_test_crafted(zc_cache_t *cache)
{
    zt_section("a dump written from the format description restores");
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    s_record(&pk, "greeting", 8, "value", -1, -1, "\xa5hello", 6);
    s_record(&pk, "soon", 4, "value", 30000, -1, "\xc3", 1);
    s_record(&pk, "queue", 5, "list", -1, 3, "\x2a", 1);
    s_write_dump("ZCCACHE 1 3 1700000000000\n", &body);
    size_t count = 0;
    ZT_EQ(zc_cache_restore(cache, s_path, &count), 0);
    ZT_EQ(count, 3);
    int64_t ttl = 0;
    ZT_EQ(zc_cache_ttl(cache, "soon", &ttl), 0);
    ZT_CHECK(ttl > 20000 && ttl <= 30000);
    size_t length = 0;
    ZT_EQ(zc_cache_length(cache, "queue", &length), 0);
    ZT_EQ(length, 3);
    ZT_EQ(zc_cache_save(cache, "bystander", "\x01", 1, 0), 0);

    zt_section("well-checksummed dumps with bad contents are refused");
    struct {
        const char *header;
        const char *key;
        size_t key_len;
        const char *type;
        int64_t ttl;
        int items;
        const char *item;
        size_t item_size;
        const char *message;
    } cases[] = {
        {"ZCCACHE 1 2 0\n", "k", 1, "value", -1, -1, "\x01", 1, "malformed"},
        {"ZCCACHE 1 0 0\n", "k", 1, "value", -1, -1, "\x01", 1, "bytes after"},
        {"ZCCACHE 2 1 0\n", "k", 1, "value", -1, -1, "\x01", 1, "unsupported dump version 2"},
        {"ZCCACHE 1 1\n", "k", 1, "value", -1, -1, "\x01", 1, "header is malformed"},
        {"ZCCACHE 1 1 0 \n", "k", 1, "value", -1, -1, "\x01", 1, "header is malformed"},
        {"ZCCACHE 1 99999999999999999999999 0\n", "k", 1, "value", -1, -1, "\x01", 1,
         "header is malformed"},
        {"ZCCACHE 1 18446744073709551615 0\n", "k", 1, "value", -1, -1, "\x01", 1, "counts more"},
        {"zccache 1 1 0\n", "k", 1, "value", -1, -1, "\x01", 1, "bad magic"},
        {"ZCCACHE 1 1 0\n", "k", 1, "value", -1, -1, "\xc1", 1, "not msgpack"},
        {"ZCCACHE 1 1 0\n", "k", 1, "value", -1, -1, "\x92\x01", 2, "not msgpack"},
        {"ZCCACHE 1 1 0\n", "k", 1, "hash", -1, -1, "\x01", 1, "unknown type"},
        {"ZCCACHE 1 1 0\n", "k", 1, "value", 0, -1, "\x01", 1, "invalid TTL"},
        {"ZCCACHE 1 1 0\n", "k", 1, "value", -7, -1, "\x01", 1, "invalid TTL"},
        {"ZCCACHE 1 1 0\n", "", 0, "value", -1, -1, "\x01", 1, "invalid key"},
        {"ZCCACHE 1 1 0\n", "a\0b", 3, "value", -1, -1, "\x01", 1, "invalid key"},
        {"ZCCACHE 1 1 0\n", "k", 1, "list", -1, 0, "\x01", 1, "malformed list"},
        {"ZCCACHE 1 1 0\n", "k", 1, "list", -1, -1, "\x01", 1, "malformed list"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer_clear(&body);
        s_record(&pk, cases[i].key, cases[i].key_len, cases[i].type, cases[i].ttl, cases[i].items,
                 cases[i].item, cases[i].item_size);
        s_write_dump(cases[i].header, &body);
        ZT_CHECK(s_refused(cache, ZC_ERR_CORRUPT, cases[i].message));
    }
    //  Two records for one key; a list declaring 4 G items; a record of 3 fields.
    msgpack_sbuffer_clear(&body);
    s_record(&pk, "twice", 5, "value", -1, -1, "\x01", 1);
    s_record(&pk, "twice", 5, "value", -1, -1, "\x02", 1);
    s_write_dump("ZCCACHE 1 2 0\n", &body);
    ZT_CHECK(s_refused(cache, ZC_ERR_CORRUPT, "holds key 'twice' twice"));
    msgpack_sbuffer_clear(&body);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_str_with_body(&pk, "big", 3);
    msgpack_pack_str_with_body(&pk, "list", 4);
    msgpack_pack_int64(&pk, -1);
    msgpack_sbuffer_write(&body, "\xdd\xff\xff\xff\xff\x01", 6);
    s_write_dump("ZCCACHE 1 1 0\n", &body);
    ZT_CHECK(s_refused(cache, ZC_ERR_CORRUPT, "malformed list"));
    msgpack_sbuffer_clear(&body);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str_with_body(&pk, "k", 1);
    msgpack_pack_str_with_body(&pk, "value", 5);
    msgpack_pack_int64(&pk, -1);
    s_write_dump("ZCCACHE 1 1 0\n", &body);
    ZT_CHECK(s_refused(cache, ZC_ERR_CORRUPT, "malformed"));
    //  A good record after a bad one: nothing of either is written.
    msgpack_sbuffer_clear(&body);
    s_record(&pk, "fine", 4, "value", -1, -1, "\x01", 1);
    s_record(&pk, "bad", 3, "value", -1, -1, "\xc1", 1);
    s_write_dump("ZCCACHE 1 2 0\n", &body);
    ZT_CHECK(s_refused(cache, ZC_ERR_CORRUPT, "record 2"));
    void *value = NULL;
    size_t size = 0;
    ZT_EQ(zc_cache_load(cache, "fine", NULL, &value, &size), -1);
    ZT_EQ(zc_cache_error(cache), ZC_ERR_MISSING);
    msgpack_sbuffer_destroy(&body);
    ZT_EQ(zc_cache_clear(cache, NULL), 0);
}

int main(void)
{
    s_redis = zt_redis_start();
    ZT_CHECK(s_redis != NULL);
    if (!s_redis) return zt_done();
    s_raw = redisConnectUnix(zt_redis_socket(s_redis));
    ZT_CHECK(s_raw && !s_raw->err);
    char dir[] = "/tmp/zc-test-cache-dump-XXXXXX";
    ZT_CHECK(mkdtemp(dir) != NULL);
    snprintf(s_path, sizeof s_path, "%s/cache.dump", dir);
    zc_cache_t *cache = zc_cache_new(zt_redis_url(s_redis), "t", "node-a");
    ZT_CHECK(cache != NULL);
    if (cache) {
        s_test_damaged(cache);
        s_test_crafted(cache);
    }
    zc_cache_destroy(&cache);
    redisFree(s_raw);
    remove(s_path);
    rmdir(dir);
    zt_redis_destroy(&s_redis);
    return zt_done();
}
