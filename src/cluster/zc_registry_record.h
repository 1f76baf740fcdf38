/*  zc_registry_record — reading what the registry finds in Redis (private
    to the registry actor): a peer's record, as HGETALL returns it, and the
    announcements on the events channel.

    Both come from Redis, where any program with access may have written
    anything, so they are parsed here, apart from the actor's Redis and
    timer work, where tests/fuzz_registry.c can feed them arbitrary input.
    Neither parser trusts its input: what does not have the expected shape
    is refused, never half-read.
*/
#ifndef ZC_REGISTRY_RECORD_H_INCLUDED
#define ZC_REGISTRY_RECORD_H_INCLUDED

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "zc_wire.h"

//  The longest incarnation (a UUID's 32 hex digits in practice) that the
//  node and the announcements keep.
#define ZC_INC_MAX 39

//  Node id's record as a JSON object, from the HGETALL reply of its key:
//  "groups" becomes an array of its valid names, "headers" an object (empty
//  if the field is not one), "pid" and "started" integers, every other
//  field a string. Returns the object (caller owns it), or NULL if the
//  reply is not a record, lacks one of id, inc, pub, router, is not id's
//  (its id field differs, or id is not a valid node id), or has an
//  incarnation that is not a valid name of at most ZC_INC_MAX bytes.
json_t *zc_registry_record_parse(const redisReply *reply, const char *id);

typedef enum {
    ZC_ANNOUNCE_JOIN,   //  "join <id>": a node registered
    ZC_ANNOUNCE_UPDATE, //  "update <id>": its record changed
    ZC_ANNOUNCE_LEAVE   //  "leave <id> <reason> <inc>": it was removed
} zc_announce_verb_t;

typedef struct {
    zc_announce_verb_t verb;
    char id[ZC_NAME_MAX + 1];
    char reason[32];          //  leave: left, expired, crashed ("left" if not given)
    char inc[ZC_INC_MAX + 1]; //  leave: the incarnation removed ("" if not given)
} zc_announcement_t;

//  Parses an announcement, a message of len bytes from the events channel
//  (NUL-terminated after them), into *out: the verb and a valid node id,
//  and for leave an optional reason and incarnation, separated by white
//  space. Returns 0, or -1 if it is not one: another verb, an invalid id, a
//  word too long for its field (never cut short), or words beyond these.
int zc_registry_announcement_parse(const char *text, size_t len, zc_announcement_t *out);

#endif
