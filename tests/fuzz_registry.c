/*  fuzz_registry — libFuzzer target for what the registry reads from Redis:
    a peer's record (the HGETALL reply, zc_registry_record_parse) and the
    announcements on the events channel (zc_registry_announcement_parse).

    The first byte is a mode. Odd: the rest is an announcement's text. Even: the rest is an HGETALL
    reply, one element per line; a line starting with byte 1 is an integer
    reply, 2 a nil, 3 an empty array, any other a bulk string (NUL bytes
    included); with bit 1 of the mode set the reply itself is a string.

    Checks, beyond not crashing:
    - a record that parses has string id, inc, pub and router; its id is
      the one asked for (the seeds' "node-1"), its incarnation a valid name
      that fits the 39 bytes the node and the announcements keep of it, its
      groups valid names, its headers an object, pid and started integers;
      and its JSON text, which goes to the node, reads back the same;
    - an announcement that parses is join, update or leave of a valid node
      id given whole (not cut short); written back in the form the scripts
      publish it parses the same.

        ./fuzz_registry -dict=tests/fuzz/registry.dict -max_total_time=60 tests/fuzz/corpus/registry
*/
#include "zc_registry_record.h"
#include "fuzzkit.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Records

#define RECORD_ID "node-1" //  the id whose record is read

static redisReply *s_reply_new(int type)
{
    redisReply *reply = (redisReply *)calloc(1, sizeof(redisReply));
    reply->type = type;
    return reply;
}

static redisReply *s_string_new(const uint8_t *data, size_t size)
{
    redisReply *reply = s_reply_new(REDIS_REPLY_STRING);
    reply->str = (char *)malloc(size + 1);
    memcpy(reply->str, data, size);
    reply->str[size] = 0;
    reply->len = size;
    return reply;
}

//  One element from one line of the input.
static redisReply *s_element_new(const uint8_t *line, size_t size)
{
    if (size && line[0] == 1) {
        redisReply *reply = s_reply_new(REDIS_REPLY_INTEGER);
        reply->integer = (long long)size;
        return reply;
    }
    if (size && line[0] == 2) return s_reply_new(REDIS_REPLY_NIL);
    if (size && line[0] == 3) return s_reply_new(REDIS_REPLY_ARRAY);
    return s_string_new(line, size);
}

static void s_reply_free(redisReply *reply)
{
    for (size_t i = 0; i < reply->elements; i++)
        s_reply_free(reply->element[i]);
    free(reply->element);
    free(reply->str);
    free(reply);
}

//  The HGETALL reply the input describes.
static redisReply *s_hgetall_new(int as_string, const uint8_t *data, size_t size)
{
    if (as_string) return s_string_new(data, size);
    redisReply *reply = s_reply_new(REDIS_REPLY_ARRAY);
    reply->element = (redisReply **)calloc(size + 1, sizeof(redisReply *));
    const uint8_t *line = data, *end = data + size;
    while (line <= end && size) {
        const uint8_t *eol = (const uint8_t *)memchr(line, '\n', (size_t)(end - line));
        if (!eol) eol = end;
        reply->element[reply->elements++] = s_element_new(line, (size_t)(eol - line));
        line = eol + 1;
    }
    return reply;
}

static void s_check_record(json_t *record)
{
    CHECK(json_is_object(record));
    const char *fields[] = {"id", "inc", "pub", "router"};
    for (int i = 0; i < 4; i++)
        CHECK(json_is_string(json_object_get(record, fields[i])));
    CHECK(strcmp(json_string_value(json_object_get(record, "id")), RECORD_ID) == 0);
    const char *inc = json_string_value(json_object_get(record, "inc"));
    CHECK(zc_wire_name_valid(inc) && strlen(inc) <= 39);
    json_t *groups = json_object_get(record, "groups"), *group;
    size_t i;
    CHECK(!groups || json_is_array(groups));
    json_array_foreach(groups, i, group)
        CHECK(json_is_string(group) && zc_wire_name_valid(json_string_value(group)));
    json_t *headers = json_object_get(record, "headers");
    CHECK(!headers || json_is_object(headers));
    CHECK(!json_object_get(record, "pid") || json_is_integer(json_object_get(record, "pid")));
    json_t *started = json_object_get(record, "started");
    CHECK(!started || json_is_integer(started));
    char *text = json_dumps(record, JSON_COMPACT);
    CHECK(text);
    json_t *again = json_loads(text, 0, NULL);
    CHECK(again && json_equal(again, record));
    json_decref(again);
    free(text);
}

static void s_record(int mode, const uint8_t *data, size_t size)
{
    redisReply *reply = s_hgetall_new(mode & 2, data, size);
    json_t *record = zc_registry_record_parse(reply, RECORD_ID);
    if (record) s_check_record(record);
    json_decref(record);
    s_reply_free(reply);
}

//  --------------------------------------------------------------------------
//  Announcements

static void s_announcement(const uint8_t *data, size_t size)
{
    char *text = (char *)malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    zc_announcement_t a;
    if (zc_registry_announcement_parse(text, size, &a) == 0) {
        CHECK(a.verb == ZC_ANNOUNCE_JOIN || a.verb == ZC_ANNOUNCE_UPDATE ||
              a.verb == ZC_ANNOUNCE_LEAVE);
        CHECK(zc_wire_name_valid(a.id));
        //  The id is the text's second word, whole (not a piece of a longer one).
        const char *p = text;
        for (int word = 0; word < 2; word++) {
            while (isspace((unsigned char)*p))
                p++;
            if (word == 0)
                while (*p && !isspace((unsigned char)*p))
                    p++;
        }
        size_t len = strlen(a.id);
        CHECK(strncmp(p, a.id, len) == 0 && (!p[len] || isspace((unsigned char)p[len])));
        CHECK(memchr(a.reason, 0, sizeof a.reason) && memchr(a.inc, 0, sizeof a.inc));
        char plain[ZC_NAME_MAX + 100];
        static const char *verbs[] = {"join", "update", "leave"};
        if (a.verb == ZC_ANNOUNCE_LEAVE)
            snprintf(plain, sizeof plain, "leave %s %s %s", a.id, a.reason, a.inc);
        else
            snprintf(plain, sizeof plain, "%s %s", verbs[a.verb], a.id);
        zc_announcement_t again;
        CHECK(zc_registry_announcement_parse(plain, strlen(plain), &again) == 0);
        CHECK(again.verb == a.verb && strcmp(again.id, a.id) == 0);
        CHECK(a.verb != ZC_ANNOUNCE_LEAVE ||
              (strcmp(again.reason, a.reason) == 0 && strcmp(again.inc, a.inc) == 0));
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    if (data[0] & 1)
        s_announcement(data + 1, size - 1);
    else
        s_record(data[0], data + 1, size - 1);
    return 0;
}
